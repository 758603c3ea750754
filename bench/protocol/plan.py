"""`run_all.py --plan`: a grid's cells per study, the distinct total, what is done, and what the rest will
cost, printed before anything trains.

Compute is a FLOP count (bench.model.shapes, and each method's `train_flops_per_token`) over the tokens a
cell will process, at most `rounds` rounds of training (a run continued from a lower cap, only its new
rounds) plus validation every round and test at the end: an upper bound in rounds, since early stopping
ends runs sooner (under --dp-fixed-shape a step's tokens are the padded ones it runs on). It is turned into
hours of the machine with a measured throughput (an estimate, not a bound: docs/measure_plan_calibration.py
compares it with stored runs): the grid's own finished runs on this host (a study that goes on is planned
from what it has cost so far), else a pilot for that shape (`--pilot`, bench.protocol.pilot: one timed
round each, cached), else the slowest stored shape alike (bench.protocol.shape_neighbours), else this
host's speed measured once in a few seconds (bench.protocol.host_speed; a GPU's is stated). A DP-SGD cell
takes stored and pilot throughputs of its own kind of step only; the host probe and the stated GPU figure
time plain steps. Memory per worker: the weights, the trained parameters' gradients and AdamW state,
activations for one step (and DP-SGD's per-sample gradients: worker_memory_gb)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.config import ExperimentConfig
from bench.data import TASKS
from bench.data.hf import column_options
from bench.federation.fixed_shape import cap_rows
from bench.federation.privacy import sample_rate, steps_per_round
from bench.model.shapes import model_shape
from bench.protocol import host_speed, shape_neighbours, tuning
from bench.protocol.corpus_size import corpus_tokens
from bench.protocol.host_speed import host_key
from bench.registry import METHODS

GPU_TFLOPS = 250.0  # stated: an H100-class GPU in bf16 at about a quarter of its 989 TFLOP/s dense peak
GPU_MEMORY_GB = 80.0  # stated, when no GPU is visible to the planner
SHIPPED = "the synthetic (or shipped) corpus"
CPU_HOURS = "  CPU-h here: wall hours of this whole machine (all its cores at once), not core-hours"
ACTIVATION_BYTES = 34  # per token, hidden unit and block for a training step (Korthikanti et al. 2022, fp16)
# (once per step, per block kept) bytes per token and hidden unit at a 2-byte dtype, by architecture.
# LLaMA's: fitted to eight peaks measured on an H200 (LLaMA-1B's shape, bf16, batch 8 and 16 x 256;
# top:8, bottom:8, FedAvg, LoRA: results/perf/gpu_plan_memory.json): 82 + 41 per block kept, where
# the batch's difference gave 409 for 8 blocks and 722-744 for 16. Others: Korthikanti's, unmeasured.
ACTIVATION_FIT = {"llama": (82, 41)}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def activation_bytes(family: str, blocks: int) -> float:
    """One batch's activations per token and hidden unit, at a 2-byte dtype, with `blocks` kept."""
    fixed, per_block = ACTIVATION_FIT.get(family, (0, ACTIVATION_BYTES))
    return fixed + per_block * blocks


@dataclass(frozen=True)
class Cost:
    flops: float
    round_flops: float  # one round's training and validation, what a pilot times
    memory_gb: float
    device: str  # "GPU" or "CPU"
    shape_key: str  # model x method shape, what a pilot is keyed by
    note: str
    step_rows: int = 0  # rows a training step holds, which the memory is for (the batch, or a fixed shape's cap)


def worker_memory_gb(cfg: ExperimentConfig, shape, method, step_rows: int | None = None) -> float:
    """A training worker's peak: the weights; each trained parameter's gradient and AdamW's two
    moments, all three in the parameters' dtype (torch's AdamW keeps its state in the dtype of
    the parameter); activations for one step's rows (`step_rows`: a fixed shape's cap, else the
    batch) in the blocks the backward pass goes through (method.activation_blocks); under DP-SGD
    a gradient per row for each trained parameter (Opacus's; by document or patient their per-unit
    sums too; the clipping's copy of the largest is uncounted: PERFORMANCE.md)."""
    width = DTYPE_BYTES[cfg.dtype]
    rows = step_rows or cfg.batch_size
    trained = method.trainable_params(shape)
    blocks = method.activation_blocks(shape)
    activations = activation_bytes(shape.family, blocks) * width / 2 * rows * cfg.max_length * shape.hidden
    per_sample = rows * trained * width * (1 + (cfg.dp_unit != "row")) if dp_sgd(cfg) else 0
    return (shape.total_params * width + trained * 3 * width + activations + per_sample) / 1e9


def shape_key(cfg: ExperimentConfig) -> str:
    """What a throughput is for: the shape; whether one process trains (a method that pools the
    clients' data, or one client) or workers do (the one-client top:2 took 2.35x its twin's
    seconds per FLOP here); and, last, whether clients run DP-SGD (per-sample gradients, unlike a
    plain step), padded to a fixed shape or not (a padded step did about 7x the counted work of an
    unpadded one in 4.5x its time: results/privacy/fixed_shape_timing.md), so that no kind of
    step is priced by another's stored throughput."""
    layout = "one-process" if METHODS.get(cfg.method).partition_free or cfg.clients == 1 else "workers"
    key = (
        f"{cfg.model}|{cfg.method}|{cfg.layers}|{cfg.dtype}|{cfg.max_length}|{cfg.batch_size}|{cfg.lora_rank}|{layout}"
    )
    return key + ("|dp-sgd-fixed" if cfg.dp_fixed_shape else "|dp-sgd" if dp_sgd(cfg) else "")


def dp_sgd(cfg: ExperimentConfig) -> bool:
    """Clients run DP-SGD (per-sample gradients), not DP-FedAvg at the server or no DP."""
    return cfg.private and cfg.dp_level == "sample"


def step_rows(cfg: ExperimentConfig, rows: float) -> int:
    """The rows every step runs on under --dp-fixed-shape (the cap, bench.federation.fixed_shape)
    for a client of the mean size, from the kept training rows; else the batch size. By document
    or patient, times --dp-unit-max-rows (the cap is the rows': bench.federation.fixed_shape)."""
    if not cfg.dp_fixed_shape:  # refused without DP-SGD (bench.config_checks)
        return cfg.batch_size
    client_rows = max(1, round(rows / cfg.clients))
    return cap_rows(client_rows, sample_rate(client_rows, cfg.batch_size)) * (cfg.dp_unit_max_rows or 1)


def trained_tokens(cfg: ExperimentConfig, rows: float, tokens: float) -> float:
    """One round's trained tokens over its clients, from the kept training rows and their tokens:
    the rows' own, or under --dp-fixed-shape what every step runs on, an empty draw's included
    (step_rows x max_length), for a client of the mean size."""
    if not cfg.dp_fixed_shape:
        return tokens * cfg.per_round / cfg.clients * cfg.local_epochs
    steps = steps_per_round(max(1, round(rows / cfg.clients)), cfg.batch_size, cfg.local_epochs)
    return cfg.per_round * steps * step_rows(cfg, rows) * cfg.max_length


def cell_cost(cfg: ExperimentConfig, stored_rounds: int = 0) -> Cost:
    """What a run costs from round `stored_rounds` (a continued one's) to its round limit."""
    kind = TASKS.get(cfg.task).kind
    shape = model_shape(cfg.model, kind)
    method = METHODS.get(cfg.method)(cfg)
    columns = tuple(sorted(column_options(cfg).items()))
    splits = corpus_tokens(cfg.task, cfg.data_dir, cfg.max_length, cfg.label_level, columns)
    train, n_val = splits["train"], splits["validation"].examples
    train_tokens = train.tokens
    kept = min(1.0, (cfg.train_subsample or train.examples) / max(train.examples, 1)) * (1 - cfg.holdout_fraction)
    per_round = trained_tokens(cfg, train.rows * kept, train_tokens * kept)
    forward = 2.0 * shape.compute_params
    val_tokens = splits["validation"].tokens * min(1.0, (cfg.val_subsample or n_val) / max(n_val, 1))
    test_tokens = splits["test"].tokens
    tested = test_tokens if cfg.test_every else 0
    round_flops = per_round * method.train_flops_per_token(shape) + forward * val_tokens
    flops = (cfg.rounds - stored_rounds) * (round_flops + forward * tested) + forward * (
        test_tokens + train_tokens * kept * cfg.holdout_fraction
    )
    rows = step_rows(cfg, train.rows * kept)
    memory = worker_memory_gb(cfg, shape, method, rows)
    device = "GPU" if cfg.gpus_per_worker > 0 else "CPU"
    return Cost(flops, round_flops, memory, device, shape_key(cfg), shape.note, rows)


def device_memory_gb(cfg: ExperimentConfig) -> float:
    if cfg.gpus_per_worker > 0:
        try:
            import torch

            total = (
                torch.cuda.get_device_properties(0).total_memory / 1e9 if torch.cuda.is_available() else GPU_MEMORY_GB
            )
        except Exception:  # noqa: BLE001
            total = GPU_MEMORY_GB
        return total * cfg.gpus_per_worker
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9 / cfg.workers


def device_hours(
    cost: Cost, pilots: dict[str, float], measured: dict[str, float] | None = None, cpu_tflops=None
) -> tuple[float, str]:
    """Device-hours (GPU-hours, or hours of this CPU) of a cell's FLOPs at one device's
    throughput, and where that throughput comes from: this store's finished runs, a pilot, the
    slowest stored shape alike, this host's measured speed (`cpu_tflops`, called only when needed), or the stated GPU figure."""
    if cost.shape_key in (measured or {}):
        tflops, source = measured[cost.shape_key], "stored runs"
    elif cost.shape_key in pilots:
        tflops, source = pilots[cost.shape_key], "pilot"
    elif near := shape_neighbours.nearest(measured or {}, cost.shape_key):
        tflops, source = near
    else:
        tflops, source = (
            (GPU_TFLOPS, "stated") if cost.device == "GPU" else ((cpu_tflops or HostProbe())(), "host probe")
        )
    return cost.flops / (tflops * 1e12) / 3600, source


class HostProbe:
    """This host's CPU figure: measured at most once, and only if a CPU cell needs it."""

    def __init__(self):
        self.tflops: float | None = None
        self.said = ""

    def __call__(self) -> float:
        if self.tflops is None:
            self.tflops, self.said = host_speed.host_tflops(host_key())
        return self.tflops


def _expected(total: float, unit: str, round_share: tuple[float, int] | None) -> list[str]:
    """The bound scaled by the share of their round limits the store's early-stopped runs ran; on a CPU, what its hours are."""
    legend = [CPU_HOURS] * (unit == "CPU-h")
    if not round_share or total <= 0:
        return legend
    share, count = round_share
    said = f"if the runs left stop as this store's {count} early-stopped runs did (they ran {share:.0%} of their round limits)"
    return [f"  expected about {total * share:.1f} {unit} {said}"] + legend


def plan(
    studies: dict[str, list],
    distinct: list,
    sweep_points: list,
    done: set[str],
    pilots: dict[str, float],
    measured: dict[str, float] | None = None,
    round_share: tuple[float, int] | None = None,
    carried: dict[str, int] | None = None,
) -> str:
    """The plan as text: per study, the distinct total, the sweep, what is done, hours and memory;
    `round_share` (stored_round_share) adds what the upper bound comes to if the runs left stop
    as the store's have; `carried` (run id -> rounds) are rounds a continued run does not run again."""
    every, carried = distinct + [p.cell for p in sweep_points], carried or {}
    costs = {c.run_id: (c.config, cell_cost(c.config, carried.get(c.run_id, 0))) for c in every}
    probe = HostProbe()
    hours = {rid: device_hours(cost, pilots, measured, probe) for rid, (_, cost) in costs.items()}
    # the contract's unit; on a CPU the whole machine's wall hours, as _expected's legend says
    unit = "GPU-h" if distinct and costs[distinct[0].run_id][1].device == "GPU" else "CPU-h"
    lines = [f"{'study':<16} {'cells':>6} {'done':>6} {'estimate':>14}"]
    for name, cells in studies.items():
        left = [c.run_id for c in cells if c.run_id not in done]
        lines.append(
            f"{name:<16} {len(cells):>6} {len(cells) - len(left):>6} {sum(hours[r][0] for r in left):>10.1f} {unit}"
        )
    left = [c.run_id for c in distinct if c.run_id not in done]
    # the sweep runs every point on the tuning seed; the winning point is that seed's cell
    first = tuning.tuning_seed(distinct) if distinct else 0
    swept = {c.run_id for c in distinct if c.tune} if sweep_points else set()
    later = [r for r in left if r not in swept or costs[r][0].seed != first]
    points = list(dict.fromkeys(p.cell.run_id for p in sweep_points))
    points_left = [r for r in points if r not in done]
    total = sum(hours[r][0] for r in later) + sum(hours[r][0] for r in points_left)
    sources = sorted({hours[r][1] for r in later + points_left})
    extra = len(points) - len({r for r in swept if costs[r][0].seed == first})
    lines += [
        "",
        f"distinct cells: {len(distinct)} (a cell shared by studies counted once), {len(distinct) - len(left)} done",
        f"tuning sweep: {len(points)} points on seed {first}, {extra} runs beyond the cells, {len(points) - len(points_left)} done",
        f"estimate for what is left: {total:.1f} {unit} (every run to its round limit, a continued one from where "
        f"it stopped: an upper bound in rounds; throughput from {' and '.join(sources) or 'nothing left'}"
        + (f"; {probe.said}" if probe.said else "")
        + (f"; stated {GPU_TFLOPS:g} TFLOP/s per GPU" if "stated" in sources else "")
        + "; --pilot times each shape here)",
    ]
    return "\n".join(lines + _expected(total, unit, round_share) + _memory_and_data(costs))


def _memory_and_data(costs: dict) -> list[str]:
    """The plan's closing lines: the worst worker's memory, where data sizes come from, notes, what cannot fit."""
    cfg, worst = max(costs.values(), key=lambda vc: vc[1].memory_gb)
    method = (cfg.method + " " + (cfg.layers or "")).strip()
    sized = {
        f"{c.task}: " + ("the dataset itself" if c.task.startswith("hf:") else c.data_dir or SHIPPED)
        for c, _ in costs.values()
    }
    step = f"a fixed step of {worst.step_rows} rows" if cfg.dp_fixed_shape else f"batch {cfg.batch_size}"
    lines = [
        f"peak memory per worker: {worst.memory_gb:.1f} GB ({cfg.model}, {method}, {step} x {cfg.max_length}, {cfg.dtype})",
        f"data sized from {'; '.join(sorted(sized))} (plan with --data-dir for the real releases' sizes)",
    ]
    lines += [f"note: {n}" for n in sorted({cost.note for _, cost in costs.values() if cost.note})]
    big = [(rid, c, cost) for rid, (c, cost) in costs.items() if cost.memory_gb > device_memory_gb(c)]
    lines += [
        f"cannot fit: {r} needs {k.memory_gb:.1f} GB per worker, has {device_memory_gb(c):.1f} GB"
        for r, c, k in big[:10]
    ]
    return lines + [f"cannot fit: {len(big) - 10} more cells"] * (len(big) > 10)
