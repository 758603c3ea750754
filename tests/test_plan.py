"""--plan's throughput: measured from the store's finished runs on this host (bench.protocol.plan)."""

from __future__ import annotations

import json
import os
import platform

import pytest

from bench.config import ExperimentConfig
from bench.protocol import corpus_size, pilot, plan, stored_cost
from bench.protocol.grid import expand, load_grid
from bench.protocol.host_speed import host_key
from tests.tiny import tiny_config


def _store(runs, name: str, cfg: ExperimentConfig, hostname: str, wall_s: list[float]) -> None:
    folder = runs / name
    folder.mkdir(parents=True)
    final = {"status": "ok", "config": cfg.to_dict(), "host": {"hostname": hostname}}
    (folder / "final.json").write_text(json.dumps(final))
    rounds = [{"wall_s": s, "compute_s": 2 * s} for s in wall_s]  # two workers at once: twice the wall seconds
    (folder / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds))


def test_stored_runs_of_this_host_give_the_throughput_and_others_are_ignored(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, rounds=3)
    runs = tmp_path / "runs"
    _store(runs, "here", cfg, platform.node(), [2.0, 3.0])
    _store(runs, "elsewhere", cfg, "another-machine", [100.0])
    measured = stored_cost.stored_throughput(runs)
    cost = plan.cell_cost(cfg)
    assert measured == {cost.shape_key: pytest.approx(cost.round_flops * 2 / 5.0 / 1e12)}
    hours, source = plan.device_hours(cost, {}, measured)
    assert source == "stored runs" and hours == pytest.approx(cost.flops / (measured[cost.shape_key] * 1e12) / 3600)
    assert plan.device_hours(cost, {}, {}, lambda: 0.5) == (cost.flops / 0.5e12 / 3600, "host probe")
    assert stored_cost.stored_throughput(tmp_path / "absent") == {}
    # a round that spanned a pause of the queue (600 s against rounds of 2-3 s) counts at its run's median
    _store(runs, "paused", cfg, platform.node(), [2.0, 600.0, 3.0, 3.0, 2.0])
    assert stored_cost.stored_throughput(runs)[cost.shape_key] == pytest.approx(
        cost.round_flops * 7 / 18.0 / 1e12
    )  # 2 + 3, then 2 + 3 + 3 + 3 + 2


def wall_lines(*seconds):
    return [{"wall_s": s} for s in seconds]


def test_a_round_over_3x_its_runs_median_counts_at_the_median_in_runs_of_5_rounds_or_more(tmp_path):
    from bench.protocol.run_time import net_seconds, run_seconds

    assert net_seconds(wall_lines(30.0, 31.0, 1827.0, 29.0, 30.0)) == pytest.approx(30.0 + 31.0 + 30.0 + 29.0 + 30.0)
    assert net_seconds(wall_lines(30.0, 80.0, 29.0, 31.0, 30.0)) == 200.0  # a slower round under 3x the median is work
    assert net_seconds(wall_lines(30.0, 1800.0, 1800.0)) == 3630.0  # too few rounds to tell: as recorded
    assert net_seconds([]) == 0.0
    (tmp_path / "rounds.jsonl").write_text(
        "".join(json.dumps(w) + "\n" for w in wall_lines(10.0, 10.0, 500.0, 10.0, 10.0))
    )
    assert run_seconds(tmp_path) == (50.0, 540.0)


def test_a_round_that_recorded_its_pause_counts_its_wall_less_the_pause_whatever_the_rule_says():
    from bench.protocol.run_time import net_seconds

    paused = [{"wall_s": 30.0, "paused_s": 0.0}] * 4 + [{"wall_s": 70.0, "paused_s": 40.0}]
    assert net_seconds(paused) == 150.0  # a pause under 3x the median, which the rule would miss
    slow = [{"wall_s": 30.0, "paused_s": 0.0}] * 4 + [{"wall_s": 200.0, "paused_s": 0.0}]
    assert net_seconds(slow) == 320.0  # slow for its own reason (it scored test): all of it is work
    resumed = wall_lines(30.0, 30.0, 900.0) + [{"wall_s": 30.0, "paused_s": 0.0}, {"wall_s": 60.0, "paused_s": 30.0}]
    assert net_seconds(resumed) == 150.0  # a run resumed on the new code: the rule for its older rounds


def test_a_shape_no_run_has_is_priced_by_the_slowest_stored_shape_alike_before_the_probe():
    """The host probe times a bare matrix product, several times what training rounds achieve
    here; another depth or rank takes the slowest stored shape of its method and layout, else of
    its layout, else of its method, else of its model."""
    from bench.protocol.shape_neighbours import nearest

    w, one = "float32|64|16|8|workers", "float32|64|16|8|one-process"
    measured = {
        f"minilm|layerskip|top:2|{w}": 0.07,
        f"minilm|layerskip|top:4|{w}": 0.03,
        f"minilm|layerskip|top:2|{one}": 0.01,  # one client, one process: slower per FLOP
        f"minilm|lora|None|{w}": 0.02,
        "minilm|fedavg|None|float32|128|16|8|workers": 0.001,  # another length: not alike
        f"tiny-bert|layerskip|top:1|{w}": 0.0001,  # another model
    }
    assert nearest(measured, f"minilm|layerskip|top:6|{w}") == (0.03, "the slowest stored minilm layerskip shapes")
    assert nearest(measured, f"minilm|lora|None|{w}".replace("|8|", "|32|")) == (
        0.02,
        "the slowest stored minilm lora shapes",
    )
    assert nearest(measured, f"minilm|centralized|None|{one}") == (0.01, "the slowest stored minilm one-process shapes")
    assert nearest(measured, f"minilm|fedprox|None|{w}") == (0.02, "the slowest stored minilm workers shapes")
    assert nearest({f"minilm|lora|None|{one}": 0.005}, f"minilm|lora|None|{w}")[1] == (
        "the slowest stored minilm lora shapes of another layout"
    )
    assert nearest(measured, f"smollm2|lora|None|{w}") is None
    cost = plan.Cost(3.6e15, 1.0, 1.0, "CPU", f"minilm|layerskip|top:6|{w}", "")
    assert plan.device_hours(cost, {}, measured, lambda: 0.5) == (
        pytest.approx(1 / 0.03),
        "the slowest stored minilm layerskip shapes",
    )
    assert plan.device_hours(cost, {cost.shape_key: 0.1}, measured)[1] == "pilot"  # its own pilot first


def test_one_process_and_workers_are_separate_shapes():
    base = ExperimentConfig(task="i2b2-2010", method="layerskip", layers="top:2", clients=4)
    assert plan.shape_key(base).endswith("|workers")
    assert plan.shape_key(base.with_settings(clients=1)).endswith("|one-process")
    assert plan.shape_key(base.with_settings(method="centralized", layers=None)).endswith("|one-process")


def test_the_expected_cost_scales_the_upper_bound_by_the_rounds_stored_runs_ran(tmp_path):
    runs = tmp_path / "runs"
    for name, ran, limit, early in (("a", 20, 60, True), ("b", 10, 60, True), ("c", 5, 5, False)):
        (runs / name).mkdir(parents=True)
        config = {"rounds": limit, "early_stop": early}
        (runs / name / "final.json").write_text(json.dumps({"status": "ok", "config": config, "rounds_run": ran}))
    assert stored_cost.stored_round_share(runs) == (
        pytest.approx(30 / 120),
        2,
    )  # the run without early stopping says nothing
    assert stored_cost.stored_round_share(tmp_path / "absent") is None


def test_the_host_probe_measures_once_and_is_cached(tmp_path, monkeypatch):
    from bench.protocol import host_speed

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(host_speed, "measure_thread_tflops", lambda: calls.append(1) or 0.02)
    tflops, said = host_speed.host_tflops("h")
    assert tflops == pytest.approx(0.02 * (os.cpu_count() or 1)) and "measured here" in said
    assert host_speed.host_tflops("h")[0] == tflops and calls == [1]  # the second plan reads the cache
    assert host_speed.host_tflops("other")[0] == tflops and calls == [1, 1]  # another host measures its own


def test_the_probe_measures_a_plausible_cpu_figure():
    from bench.protocol import host_speed

    # one thread of any CPU this suite runs on: well above 1 GFLOP/s, far below 1 TFLOP/s
    assert 0.001 < host_speed.measure_thread_tflops(seconds=0.3) < 1.0


def test_planned_optimizer_state_is_what_adamw_holds_in_the_parameters_dtype():
    """The plan counts a gradient and AdamW's two moments per trained parameter, each in the
    parameters' dtype (torch keeps AdamW's state in it): 6 bytes in bfloat16, not 2 + 8. The
    whole peak against a measured step of LLaMA-1B's shape is bench.compare.plan_memory (about
    90 s of bf16 arithmetic on this CPU, so a benchmark, not a test; docs/PERFORMANCE.md)."""
    import torch

    import baselines  # noqa: F401
    from bench.model.build import build_model
    from bench.model.layers import discover_layers
    from bench.model.shapes import model_shape
    from bench.registry import METHODS

    cfg = ExperimentConfig(task="i2b2-2010", method="layerskip", layers="top:1", model="tiny-llama", dtype="bfloat16")
    model, _ = build_model(cfg.model, "ner", 3, 0, cfg.dtype)
    method = METHODS.get(cfg.method)(cfg)
    model = method.configure(model, discover_layers(model))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4, weight_decay=0.0)
    ids = torch.ones((2, 8), dtype=torch.long)
    model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros_like(ids)).loss.backward()
    optimizer.step()
    held = sum(p.grad.nbytes for p in trained) + sum(
        state[k].nbytes for state in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")
    )
    shape = model_shape(cfg.model, "ner", 3)
    planned = plan.worker_memory_gb(cfg, shape, method) * 1e9 - shape.total_params * 2
    activations = (
        plan.activation_bytes(shape.family, method.activation_blocks(shape))
        * cfg.batch_size
        * cfg.max_length
        * shape.hidden
    )
    assert planned - activations == pytest.approx(held, rel=0.02)


@pytest.mark.parametrize(
    ("method", "layers", "kept"),
    [
        ("layerskip", "top:8", 8),
        ("layerskip", "bottom:2", 16),
        ("layerskip", "list:3,12", 13),
        ("layerskip", "auto:2", 16),  # the probe may pick any blocks
        ("fedavg", None, 16),
        ("lora", None, 16),
    ],
)
def test_activations_are_planned_from_the_lowest_trained_block_up(method, layers, kept):
    """Below the lowest trained block nothing needs a gradient, so a step keeps no activations
    there: top:8 of LLaMA-1B's 16 blocks plans half of FedAvg's activations (measured on an H200,
    docs/PERFORMANCE.md), bottom:k all of them."""
    import baselines  # noqa: F401
    from bench.model.shapes import model_shape
    from bench.registry import METHODS

    cfg = ExperimentConfig(task="i2b2-2010", method=method, layers=layers, model="llama16-random", dtype="bfloat16")
    shape = model_shape(cfg.model, "ner", 3)
    chosen = METHODS.get(method)(cfg)
    assert chosen.activation_blocks(shape) == kept
    assert shape.family == "llama"
    fixed, per_block = plan.ACTIVATION_FIT["llama"]
    tokens_hidden = cfg.batch_size * cfg.max_length * shape.hidden / 1e9
    state = (shape.total_params + 3 * chosen.trainable_params(shape)) * 2 / 1e9
    assert plan.worker_memory_gb(cfg, shape, chosen) == pytest.approx(
        state + (fixed + kept * per_block) * tokens_hidden
    )


def test_the_paper_grids_plan_is_what_the_readme_says(tmp_path):
    """README ("Running the paper grid") and docs/PERFORMANCE.md quote this plan: six studies of
    99, 81, 63, 135, 108 and 36 cells, 468 distinct, 312 sweep runs beyond them, and 28.9 GB a
    worker for LLaMA-3.2-1B's shape at the worst (FedAvg under DP-SGD, its per-sample gradients
    counted since 2026-12-07: 11.7 GB before), more than a quarter of an 80 GB GPU, so those cells
    hold half a GPU a worker and every cell fits. A change to the grid or the memory model fails
    here first."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "run_all.py", "--grid", "paper", "--plan", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=root, env={**os.environ, "BENCH_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines() if line[:1].isalpha()
              and len(line.split()) > 2 and line.split()[1].isdigit()}  # fmt: skip
    assert counts == {
        "main": 99, "noniid": 81, "layers": 63, "privacy-sample": 135, "privacy-client": 108, "budgets": 36,
    }  # fmt: skip
    assert "distinct cells: 468" in proc.stdout
    assert "312 runs beyond the cells" in proc.stdout
    assert "peak memory per worker: 28.9 GB (meta-llama/Llama-3.2-1B, fedavg" in proc.stdout
    assert "cannot fit" not in proc.stdout


def test_todays_memory_plan_fits_the_gpu_measurements_as_the_readme_says():
    """README and PERFORMANCE: the planner's per-worker memory lies within 0.99-1.13x of what
    eight LLaMA-3.2-1B-shaped configurations measured on an H200 (results/perf/gpu_plan_memory.json,
    `measured_gb`). Planned here, from today's code (no GPU: the model is built on the meta
    device), so a change to the memory model that breaks the fit, or leaves the file's
    `planned_gb_now` stale, fails here."""
    from pathlib import Path

    from bench.compare.gpu_check import _memory_config
    from bench.compare.plan_memory import planned_gb

    stored = Path(__file__).resolve().parents[1] / "results/perf/gpu_plan_memory.json"
    rows = json.loads(stored.read_text())["plan_memory"]
    assert len(rows) == 8
    for row in rows:
        cfg = _memory_config(row["method"], row["layers"], row["batch"], row["model"], row["dtype"], row["tokens"])
        now = planned_gb(cfg)
        assert now == pytest.approx(row["planned_gb_now"], abs=0.01), row
        assert 0.99 <= now / row["measured_gb"] <= 1.135, row  # README: within 0.99-1.13x


def test_a_pilot_times_the_machine_s_wall_seconds_and_older_worker_second_entries_are_not_read(
    tiny_corpus, tmp_path, monkeypatch
):
    """A pilot round of two workers records compute_s twice its wall_s; the pilot, like stored
    runs, prices the machine's seconds, and the cache's entries in the old unit are left unread."""
    from types import SimpleNamespace

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(tiny_corpus, rounds=3)

    def timed_round(config, out, progress=False):
        out.mkdir(parents=True)
        (out / "rounds.jsonl").write_text(json.dumps({"round": 1, "wall_s": 2.0, "compute_s": 4.0}) + "\n")

    monkeypatch.setattr(pilot, "run_experiment", timed_round)
    pilot.pilot_path().parent.mkdir(parents=True, exist_ok=True)
    pilot.pilot_path().write_text(json.dumps({host_key(): {plan.shape_key(cfg): 99.0}}))  # the old unit
    assert pilot.load_pilots() == {}
    pilots = pilot.run_pilots([SimpleNamespace(config=cfg)], tmp_path / "runs")
    one_round = plan.cell_cost(cfg.with_settings(rounds=1, test_every=0, early_stop=False, train_subsample=64))
    assert pilots == {plan.shape_key(cfg): pytest.approx(one_round.round_flops / 2.0 / 1e12)}
    assert pilot.load_pilots() == pilots


def test_a_studys_cost_line_counts_paused_rounds_at_their_median_and_says_so(tmp_path):
    from types import SimpleNamespace

    from bench.protocol.study import completeness_notes

    cells = [SimpleNamespace(run_id=name, tune=None) for name in ("a", "b")]
    for name, walls in (("a", [1800.0] * 2), ("b", [1800.0] * 4 + [36000.0])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "final.json").write_text("{}")
        (tmp_path / name / "rounds.jsonl").write_text("".join(json.dumps({"wall_s": w}) + "\n" for w in walls))
    cost = completeness_notes(cells, {c.run_id: c for c in cells}, tmp_path)[-1]
    assert "2 stored runs (sweep points and cells) took 3.5 hours of run time (13.0 recorded: rounds over 3x" in cost
    (tmp_path / "b" / "rounds.jsonl").write_text(json.dumps({"wall_s": 1800.0}) + "\n")
    cost = completeness_notes(cells, {c.run_id: c for c in cells}, tmp_path)[-1]
    assert "took 1.5 hours of run time, summed" in cost  # nothing taken as paused: no second figure


def test_the_grids_own_stored_runs_come_before_a_pilot_and_the_stated_gpu_figure_comes_last():
    """README: the plan's throughput is the grid's own finished runs here, else what --pilot measured,
    else the slowest stored shape alike, else (a GPU) a stated 250 TFLOP/s. A shape with both stored
    runs (0.5 TFLOP/s) and a pilot (2.0) is priced by its runs; with no runs, by its pilot; with
    neither nor any shape alike, at the stated figure, and this host's CPU is never probed for it."""
    key = "llama-1b|layerskip|top:2|bfloat16|512|8|8|workers"
    cost = plan.Cost(9e17, 1.0, 1.0, "GPU", key, "")  # 9e17 FLOPs: 1 GPU-hour at 250 TFLOP/s

    def no_probe():
        raise AssertionError("a GPU cell probed the host's CPU")

    assert plan.device_hours(cost, {key: 2.0}, {key: 0.5}, no_probe) == (pytest.approx(500.0), "stored runs")
    assert plan.device_hours(cost, {key: 2.0}, {}, no_probe) == (pytest.approx(125.0), "pilot")
    other = {"minilm|fedavg|None|float32|64|16|8|workers": 0.001}  # another model: nothing alike
    assert plan.GPU_TFLOPS == 250.0
    assert plan.device_hours(cost, {}, other, no_probe) == (pytest.approx(1.0), "stated")


def test_a_gpu_plan_with_nothing_measured_names_the_stated_figure(monkeypatch):
    """README: the plan names the figure it used: a GPU cell with no stored run and no pilot is
    planned at the stated 250 TFLOP/s per GPU (9e17 FLOPs: 1 GPU-hour), and the plan says so."""
    from bench.protocol.grid import Cell

    cfg = ExperimentConfig(task="i2b2-2010", method="fedavg", gpus_per_worker=0.25)
    monkeypatch.setattr(plan, "cell_cost", lambda c, *_: plan.Cost(9e17, 1.0, 1.0, "GPU", plan.shape_key(c), ""))
    cell = Cell(cfg.run_id, cfg)
    text = plan.plan({"main": [cell]}, [cell], [], set(), {}, {})
    assert "estimate for what is left: 1.0 GPU-h" in text
    assert "throughput from stated; stated 250 TFLOP/s per GPU" in text
    pilot = plan.plan({"main": [cell]}, [cell], [], set(), {plan.shape_key(cfg): 125.0}, {})
    assert "estimate for what is left: 2.0 GPU-h" in pilot and "throughput from pilot;" in pilot


def test_a_cell_over_its_workers_share_of_memory_is_listed_as_cannot_fit(monkeypatch):
    """README: the plan lists a cell that does not fit its share under "cannot fit" (a GPU
    worker's share is its fraction of the GPU; a CPU worker's, the machine's memory over the workers)."""
    from bench.protocol.grid import Cell

    cfg = ExperimentConfig(task="i2b2-2010", method="fedavg", gpus_per_worker=0.25)
    share = plan.device_memory_gb(cfg)
    assert share == pytest.approx(plan.device_memory_gb(cfg.with_settings(gpus_per_worker=1.0)) / 4)
    for need, listed in ((share * 1.01, True), (share * 0.99, False)):
        monkeypatch.setattr(
            plan, "cell_cost", lambda c, *_, need=need: plan.Cost(9e17, 1.0, need, "GPU", plan.shape_key(c), "")
        )
        cell = Cell(cfg.run_id, cfg)
        text = plan.plan({"main": [cell]}, [cell], [], set(), {}, {})
        line = f"cannot fit: {cfg.run_id} needs {need:.1f} GB per worker, has {share:.1f} GB"
        assert (line in text) is listed


def test_a_cpu_plan_is_in_the_contracts_cpu_h_and_says_what_they_are(monkeypatch):
    """CONTRACT: --plan estimates in GPU-h or CPU-h. On a CPU they are the whole machine's wall
    hours (the plan's throughput is wall-based), which the plan's legend says, since 'CPU-h'
    alone reads as core-hours."""
    from bench.protocol.grid import Cell

    cfg = ExperimentConfig(task="i2b2-2010", method="fedavg")
    monkeypatch.setattr(plan, "cell_cost", lambda c, *_: plan.Cost(9e17, 1.0, 1.0, "CPU", plan.shape_key(c), ""))
    cell = Cell(cfg.run_id, cfg)
    text = plan.plan({"main": [cell]}, [cell], [], set(), {plan.shape_key(cfg): 125.0}, {})
    assert "estimate for what is left: 2.0 CPU-h" in text
    assert "CPU-h here: wall hours of this whole machine" in text and "GPU-h" not in text


def test_dp_sgd_cells_are_their_own_shape_and_fixed_shape_cells_are_priced_by_their_padded_steps(tiny_corpus):
    """A DP-SGD step (per-sample gradients) and a padded one are kinds of their own, so neither is
    priced by another kind's stored throughput (a padded step did about 7x an unpadded one's
    counted work in 4.5x its time: results/privacy/fixed_shape_timing.md); under --dp-fixed-shape
    every step runs on the cap's rows x max_length, an empty draw's included, which the plan once
    left out."""
    from bench.protocol.shape_neighbours import nearest

    base = tiny_config(tiny_corpus, method="layerskip", layers="top:1", rounds=3)
    dp_sgd = base.with_settings(noise_multiplier=1.0)
    dp_fedavg = base.with_settings(noise_multiplier=1.0, dp_level="client")
    fixed = dp_sgd.with_settings(dp_fixed_shape=True)
    assert plan.shape_key(dp_sgd) == plan.shape_key(base) + "|dp-sgd"
    assert plan.shape_key(fixed) == plan.shape_key(base) + "|dp-sgd-fixed"
    assert plan.shape_key(dp_fedavg) == plan.shape_key(base)
    for kind in (base, dp_sgd, fixed):  # each takes its own kind's throughput, whatever the others'
        others = {
            plan.shape_key(k.with_settings(layers="top:2")): v for k, v in ((base, 0.1), (dp_sgd, 0.01), (fixed, 0.001))
        }
        own = plan.shape_key(kind.with_settings(layers="top:2"))
        assert nearest(others, plan.shape_key(kind))[0] == others[own]
        assert nearest({k: v for k, v in others.items() if k != own}, plan.shape_key(kind)) is None
    assert plan.cell_cost(dp_sgd).flops == plan.cell_cost(base).flops
    assert plan.cell_cost(fixed).flops > plan.cell_cost(dp_sgd).flops
    # memory: DP-SGD adds a gradient per row of the step for each trained parameter; a fixed
    # shape's step holds the cap's rows (activations and those gradients alike)
    from bench.model.shapes import model_shape
    from bench.registry import METHODS

    trained = METHODS.get("layerskip")(base).trainable_params(model_shape(base.model, "ner"))
    per_row = trained * 4 / 1e9  # float32
    assert plan.cell_cost(dp_sgd).memory_gb - plan.cell_cost(base).memory_gb == pytest.approx(16 * per_row)
    assert plan.cell_cost(dp_fedavg).memory_gb == plan.cell_cost(base).memory_gb
    assert plan.cell_cost(fixed).memory_gb > plan.cell_cost(dp_sgd).memory_gb + 16 * per_row
    by_document = dp_sgd.with_settings(dp_unit="document")  # the per-unit sums: as many again
    assert plan.cell_cost(by_document).memory_gb - plan.cell_cost(base).memory_gb == pytest.approx(2 * 16 * per_row)
    # the README's client: 1,286 rows at batch 16 run 81 steps an epoch on 61 rows of 64 tokens
    ncbi = ExperimentConfig(
        task="ncbi-disease", method="fedavg", clients=4, batch_size=16, max_length=64, noise_multiplier=1.0
    )
    assert plan.trained_tokens(ncbi, 4 * 1286, 9e5) == pytest.approx(9e5)
    assert plan.trained_tokens(ncbi.with_settings(dp_fixed_shape=True), 4 * 1286, 9e5) == 4 * 81 * 61 * 64
    assert plan.trained_tokens(
        ncbi.with_settings(dp_fixed_shape=True, local_epochs=2, clients_per_round=2), 4 * 1286, 9e5
    ) == (2 * 2 * 81 * 61 * 64)
    # README: the NCBI grid's top:2 IID cell (800 sentences, 60 rounds) under DP-SGD padded 4.3x
    # the FLOPs the plan once counted unpadded, 6.7x with the whole training set
    cell = next(c.config for c in expand(load_grid("ncbi")[1]) if c.config.layers == "top:2" and c.config.clients == 4)
    private = cell.with_settings(noise_multiplier=1.0, partition="iid")
    for sentences, ratio in ((800, 4.3), (None, 6.7)):
        unpadded = private.with_settings(train_subsample=sentences)
        padded = unpadded.with_settings(dp_fixed_shape=True)
        assert plan.cell_cost(padded).flops / plan.cell_cost(unpadded).flops == pytest.approx(ratio, abs=0.05)


def test_the_memory_line_names_the_rows_a_step_holds(tiny_corpus):
    """Under --dp-fixed-shape the peak is for the cap's rows, not the batch: the line said "batch B"
    for a step that held far more."""
    base = tiny_config(tiny_corpus, method="layerskip", layers="top:1", noise_multiplier=1.0, batch_size=2)
    fixed = base.with_settings(dp_fixed_shape=True)
    rows = plan.cell_cost(fixed).step_rows
    assert rows > 2 and plan.cell_cost(base).step_rows == 2
    line = plan._memory_and_data({"r": (fixed, plan.cell_cost(fixed))})[0]
    assert f"a fixed step of {rows} rows x {fixed.max_length}," in line and "batch" not in line
    assert f"batch 2 x {base.max_length}," in plan._memory_and_data({"r": (base, plan.cell_cost(base))})[0]


def test_the_plan_counts_the_rows_a_long_sentence_is_cut_into(tiny_corpus):
    """NER sentences longer than the window are encoded as several rows (bench.data.tokenize),
    which set a fixed shape's steps and cap; classification documents are truncated to one."""
    from bench.engine.prepare import prepare_task

    assert corpus_size.encoded_size(100, 64, chunked=True) == (3, 130 + 3 * 2)  # 130 sub-words in windows of 62
    assert corpus_size.encoded_size(100, 64, chunked=False) == (1, 64)
    assert corpus_size.encoded_size(10, 64, chunked=True) == (1, 13 + 2)
    cfg = tiny_config(tiny_corpus, max_length=8, prefix_cache="off")
    estimated = corpus_size.corpus_tokens(cfg.task, cfg.data_dir, cfg.max_length, None)["train"]
    encoded = len(prepare_task(cfg).train.encoded.input_ids)
    assert estimated.rows > 1.2 * estimated.examples and encoded > 1.2 * estimated.examples  # cut at this width
    assert 0.8 < estimated.rows / encoded < 1.25, (estimated, encoded)


@pytest.mark.parametrize(("level", "sigma"), [("sample", 1.5), ("client", None)])
def test_a_dp_sgd_pilot_times_dp_sgd_steps_and_a_dp_fedavg_pilot_plain_ones(
    tiny_corpus, tmp_path, monkeypatch, level, sigma
):
    from types import SimpleNamespace

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(tiny_corpus, rounds=3, noise_multiplier=1.5, dp_level=level, secure_rng=True)
    timed = []

    def timed_round(config, out, progress=False):
        timed.append(config)
        out.mkdir(parents=True)
        (out / "rounds.jsonl").write_text(json.dumps({"round": 1, "wall_s": 2.0}) + "\n")

    monkeypatch.setattr(pilot, "run_experiment", timed_round)
    pilots = pilot.run_pilots([SimpleNamespace(config=cfg)], tmp_path / "runs")
    assert [c.noise_multiplier for c in timed] == [sigma] and list(pilots) == [plan.shape_key(cfg)]
    assert plan.shape_key(timed[0]) == plan.shape_key(cfg)
    assert timed[0].secure_rng == (level == "sample")  # without DP noise --secure-rng is refused


def test_plan_memory_runs_a_dp_sgd_step_through_the_training_loops_wrapping(monkeypatch):
    """docs/PERFORMANCE.md's DP-SGD memory table comes from `plan_memory --dp`: its steps go
    through PrivateTraining (per-sample gradients, clipped and noised), and its plan counts them."""
    from argparse import Namespace

    from bench.compare import plan_memory
    from bench.federation.privacy import PrivateTraining

    stepped = []
    real_step = PrivateTraining.step

    def step(self, *args, **kwargs):
        stepped.append({n: p.grad_sample.shape[0] for n, p in self.module.named_parameters() if p.requires_grad})
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(PrivateTraining, "step", step)
    settings = dict(model="tiny-bert", layers="", dtype="float32", batch=4, tokens=8)
    plain, private = (plan_memory._config(Namespace(**settings, dp=dp)) for dp in (False, True))
    assert plan_memory.measured_gb(plain, steps=1) > 0 and stepped == []
    assert plan_memory.measured_gb(private, steps=2) > 0
    assert len(stepped) == 2 and set(stepped[0].values()) == {4}  # a gradient per row, for every parameter
    assert plan_memory.planned_gb(private) > plan_memory.planned_gb(plain)
