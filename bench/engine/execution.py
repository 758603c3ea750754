"""The default execution: how many worker processes, threads and GPUs a run uses when the user
does not say. Execution settings never change a run's identity (bench.config.EXECUTION_ONLY).

- CPU: one single-thread worker process per core, but no more than the clients that train in a
  round (centralized training is one job: one process with every core). On this project's
  2-core machine two one-thread processes ran full fine-tuning rounds faster than one
  two-thread process (docs/PERFORMANCE.md).
- GPU: one worker per visible GPU (Ray places them), the model on the GPU.
`BENCH_WORKERS=N` overrides the choice (tests use 1: one in-process worker starts fastest).
"""

from __future__ import annotations

import os

from bench.config import ExperimentConfig
from bench.registry import METHODS


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def jobs_per_round(cfg: ExperimentConfig) -> int:
    """How many clients train at once in a round: one for a method that pools all data."""
    return 1 if METHODS.get(cfg.method).partition_free else cfg.per_round


def unchosen(cfg: ExperimentConfig) -> bool:
    """True when `cfg` names no execution of its own (every execution setting at its default),
    so the machine's default may be filled in."""
    return (cfg.workers, cfg.cpus_per_worker, cfg.gpus_per_worker, cfg.backend, cfg.ray_address) == (
        1,
        None,
        0.0,
        "auto",
        None,
    )


def choose(cfg: ExperimentConfig) -> ExperimentConfig:
    """`cfg` with the default execution filled in (its identity is unchanged)."""
    if os.environ.get("BENCH_WORKERS"):
        return cfg.with_settings(workers=int(os.environ["BENCH_WORKERS"]))
    import torch

    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        return cfg.with_settings(workers=max(1, min(gpus, jobs_per_round(cfg))), gpus_per_worker=1.0)
    workers = max(1, min(usable_cores(), jobs_per_round(cfg)))
    threads = 1 if workers > 1 else usable_cores()
    return cfg.with_settings(workers=workers, cpus_per_worker=threads)


def describe(cfg: ExperimentConfig) -> str:
    """One line saying what runs where, for the run's output."""
    if cfg.resolved_backend == "ray" and cfg.ray_address:
        return f"execution: Ray cluster at {cfg.ray_address}, {cfg.workers} worker actor(s)"
    device = (
        f"{cfg.gpus_per_worker:g} GPU each" if cfg.gpus_per_worker else f"{cfg.threads_per_worker} torch thread(s) each"
    )
    kind = {"serial": "in this process", "local": "local processes", "ray": "Ray actors"}[cfg.resolved_backend]
    return f"execution: {cfg.workers} worker(s), {kind}, {device} ({usable_cores()} cores; --workers sets it)"
