"""How many local steps a round trains, and over how many of them the learning rate warms up, in
stored runs (README, "Training choices a reader needs"):

    python docs/measure_round_steps.py results/ncbi/runs/<run> results/medquad/runs/<run> ...

Each run's stored config is prepared as its run prepared it (the task loaded, its clients' 10%
held out, long sentences split into rows), and one round's jobs are counted: rows, steps of
batch_size per local epoch, and the warm-up W: the steps until the training loop's own scheduler
(bench.engine.training._optimizer) reaches the full lr. Counts only; nothing is trained.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import torch

import bench.data  # noqa: F401  (registers the tasks)
from bench.config import ExperimentConfig
from bench.engine.prepare import prepare_task
from bench.engine.sampling import planned_work
from bench.engine.training import _optimizer
from bench.registry import METHODS


def warm_up_steps(steps: int, warmup_ratio: float) -> int:
    """The steps the training loop's scheduler takes to reach the full learning rate."""
    _, scheduler = _optimizer([torch.nn.Parameter(torch.zeros(1))], 1.0, warmup_ratio, steps)
    return next(s + 1 for s in range(steps) if scheduler.lr_lambdas[0](s) >= 1.0)


def round_steps(run: Path) -> dict[int, tuple[int, int, int]]:
    """client -> (rows, steps, warm-up steps) of one round of the stored run's config."""
    stored = json.loads((run / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    cfg = ExperimentConfig(**{k: v for k, v in stored.items() if k in fields})
    one_round = dataclasses.replace(cfg, rounds=1)
    rows, _, _ = planned_work(one_round, METHODS.get(cfg.method)(cfg), prepare_task(cfg))
    out = {}
    for client, n in sorted(rows.items()):
        steps = cfg.local_epochs * math.ceil(n / cfg.batch_size)
        out[client] = (n, steps, warm_up_steps(steps, cfg.warmup_ratio))
    return out


def main() -> None:
    print("| run | client: rows, steps, warm-up steps |\n| --- | --- |")
    for arg in sys.argv[1:]:
        found = round_steps(Path(arg))
        cells = "; ".join(f"{c}: {n}, {s}, {w}" for c, (n, s, w) in found.items())
        print(f"| {Path(arg).name} | {cells} |")


if __name__ == "__main__":
    main()
