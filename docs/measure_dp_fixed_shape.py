"""What a DP-SGD client's step times tell an observer, with and without --dp-fixed-shape:

    python docs/measure_dp_fixed_shape.py > results/privacy/fixed_shape_timing.md

One NCBI-disease client (the first of an iid split of 4: the shipped training set), minilm with
its top 2 blocks trained (layer-skipping, no prefix cache: every step computes the whole model),
max length 64, batch 16, sigma 1, the suite's own training loop (bench.engine.training.train_local)
from seed 0, padded and not, each after a few warm-up steps. Each step's time is what an observer
who times the client sees (here from one forward's start to the next, the last to the loop's
end); its Poisson draw, the number of rows it sampled, is what the accountant does not count.

Two experiments. Natural draws: two epochs of Poisson draws, and the correlation of time with
the draw (Pearson's r; Kendall's tau: of two steps with different draws, how much more often the
slower drew more), each with its p-value against no relation, and with the tokens the step's
attention mask holds (the padded steps' only part that moves with the draw). Scripted draws: the
same loop with every step's draw set to 5 or to 30 random rows, in random order (the observer's
easiest case, and no drift of the machine can line up with it): the difference of the mean step
times, with its 95% interval (Welch). Timings move with the machine's load: run on an idle machine.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from measure_common import this_code
from scipy import stats

from bench.compare.perf import machine
from bench.config import ExperimentConfig
from bench.engine.prepare import prepare_task
from bench.engine.training import train_local
from bench.federation import privacy
from bench.federation.dp_calibration import plan as dp_plan
from bench.federation.fixed_shape import cap_rows
from bench.model.build import build_model
from bench.model.layers import discover_layers
from bench.registry import METHODS

SEED, CLIENT, NATURAL_EPOCHS, SCRIPTED_STEPS, WARM_UP_ROWS = 0, 0, 2, 170, 64
SMALL, LARGE = 5, 30


def config(fixed: bool) -> ExperimentConfig:
    return ExperimentConfig(
        task="ncbi-disease",
        method="layerskip",
        layers="top:2",
        model="minilm",
        max_length=64,
        noise_multiplier=1.0,
        prefix_cache="off",
        dp_fixed_shape=fixed,
        seed=SEED,
    )


def scripted(rows: np.ndarray, steps: int) -> list[np.ndarray]:
    """`steps` draws of SMALL or LARGE random rows, in a random order (seeded)."""
    rng = np.random.default_rng(SEED)
    return [rng.choice(rows, size=rng.choice([SMALL, LARGE]), replace=False) for _ in range(steps)]


def timed(cfg: ExperimentConfig, task, model, epochs: int, rows: np.ndarray, script=None) -> dict:
    """Per step of the client's DP-SGD on `rows` (its Poisson draws, or `script`'s): the rows
    drawn, the tokens its attention mask holds, and its seconds."""
    plan = dp_plan(cfg, {CLIENT: len(rows)}, {CLIENT: 1})  # sigma is given: the plan only carries it
    draws, tokens, starts = [], [], []
    poisson = privacy.PrivateTraining.batches

    def recorded(self, rows, steps, generator):
        for drawn in script[:steps] if script is not None else poisson(self, rows, steps, generator):
            draws.append(len(drawn))
            yield drawn

    def seen(module, args, kwargs):
        starts.append(time.perf_counter())
        tokens.append(int(kwargs["attention_mask"].sum()))

    privacy.PrivateTraining.batches = recorded
    hook = model.register_forward_pre_hook(seen, with_kwargs=True)
    try:
        train_local(
            model,
            task.train.encoded,
            rows,
            kind=task.kind,
            pad_id=task.pad_id,
            epochs=epochs,
            batch_size=cfg.batch_size,
            lr=1e-4,
            warmup_ratio=cfg.warmup_ratio,
            seed=SEED,
            dp=plan,
        )
        starts.append(time.perf_counter())
    finally:
        hook.remove()
        privacy.PrivateTraining.batches = poisson
    if len(starts) != len(draws) + 1:  # an empty draw unpadded runs no forward: its time is not seen here
        raise SystemExit(f"{len(draws)} draws but {len(starts) - 1} forwards timed: an empty draw; use another seed")
    return {"draws": np.array(draws), "tokens": np.array(tokens), "seconds": np.diff(starts)}


def correlation(x: np.ndarray, y: np.ndarray) -> str:
    r = stats.pearsonr(x, y)
    return f"{r.statistic:+.2f} ({r.pvalue:.2g})"


def main() -> None:
    torch.set_num_threads(2)
    host = machine()
    natural, script = {}, {}
    for fixed in (False, True):
        cfg = config(fixed)
        task = prepare_task(cfg)
        model, _ = build_model(cfg.model, task.kind, len(task.output_labels), cfg.seed, cfg.dtype)
        model = METHODS.get(cfg.method)(cfg).configure(model, discover_layers(model))
        rows = task.train.rows(task.clients[CLIENT])
        timed(cfg, task, model, 1, rows[:WARM_UP_ROWS])  # warms the allocator and the kernels
        natural[fixed] = timed(cfg, task, model, NATURAL_EPOCHS, rows)
        steps = -(-len(rows) // cfg.batch_size)
        script[fixed] = timed(cfg, task, model, -(-SCRIPTED_STEPS // steps), rows, scripted(rows, SCRIPTED_STEPS))
        cap = cap_rows(len(rows), privacy.sample_rate(len(rows), cfg.batch_size))
    shape = {False: "the rows drawn", True: f"{cap} rows x 64 tokens (fixed)"}
    print("# DP-SGD step times with and without --dp-fixed-shape\n")
    print(
        f"Made by `python docs/measure_dp_fixed_shape.py` at commit {this_code()} ({host['measured']}); "
        f"{host['processor']}, {host['cpus']} CPUs, torch {host['torch']} on {torch.get_num_threads()} threads. "
        f"One NCBI-disease client (iid, 1 of 4: {len(rows):,} rows), minilm top:2 trained, no prefix cache, "
        "max length 64, batch 16, sigma 1, seed 0.\n"
    )
    print(f"## Natural draws ({NATURAL_EPOCHS} epochs, the same draws both ways; an empty draw is a step too)\n")
    print(
        "| steps run on | steps | rows drawn | s/step (mean, sd) | time ~ draw: r (p) | Kendall tau (p) | time ~ attended tokens: r (p) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fixed, m in natural.items():
        tau = stats.kendalltau(m["draws"], m["seconds"])
        print(
            f"| {shape[fixed]} | {len(m['draws'])} | {m['draws'].min()}-{m['draws'].max()} "
            f"| {m['seconds'].mean():.3f}, {m['seconds'].std(ddof=1):.3f} | {correlation(m['draws'], m['seconds'])} "
            f"| {tau.statistic:+.2f} ({tau.pvalue:.2g}) | {correlation(m['tokens'], m['seconds'])} |"
        )
    print(f"\n## Scripted draws ({SCRIPTED_STEPS} steps, {SMALL} or {LARGE} rows each, in random order)\n")
    print(
        f"| steps run on | s/step at {SMALL} rows (n, mean, sd) | at {LARGE} rows | difference (95% interval) | Welch p |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for fixed, m in script.items():
        small, large = m["seconds"][m["draws"] == SMALL], m["seconds"][m["draws"] == LARGE]
        welch = stats.ttest_ind(large, small, equal_var=False)
        low, high = welch.confidence_interval()
        print(
            f"| {shape[fixed]} | {len(small)}, {small.mean():.3f}, {small.std(ddof=1):.3f} "
            f"| {len(large)}, {large.mean():.3f}, {large.std(ddof=1):.3f} "
            f"| {large.mean() - small.mean():+.3f} ({low:+.3f}, {high:+.3f}) | {welch.pvalue:.2g} |"
        )


if __name__ == "__main__":
    main()
