"""What the store's finished runs say about what the rest of a grid will cost, for --plan: the
throughput they measured on this host, and how far short of their round limits early stopping
ended them (bench.protocol.plan turns both into hours)."""

from __future__ import annotations

import platform
from pathlib import Path

from bench.config import SETTING_DEFAULTS, ExperimentConfig
from bench.protocol.plan import cell_cost, shape_key
from bench.protocol.run_time import net_seconds
from bench.store import load_runs, read_json


def stored_throughput(runs: Path) -> dict[str, float]:
    """shape key -> TFLOP/s measured by the finished runs in `runs` that ran on this host: their
    rounds' FLOPs over the wall seconds their rounds.jsonl records. Whole runs on the whole
    machine, so a study that goes on is planned from what it has really cost, in the unit the
    host probe gives (the machine's hours). Not `compute_s`: it sums the seconds of workers that
    run at once (two on two cores), which priced a federated round at about twice its wall time;
    and net of pauses (bench.protocol.run_time): one paused NCBI centralized round took 1,827 s of a
    run whose median round took 33 s."""

    flops: dict[str, float] = {}
    seconds: dict[str, float] = {}
    finished = [p.parent.name for p in runs.glob("*/final.json")] if runs.is_dir() else []
    for run in load_runs(runs, finished):
        if run.get("status") != "ok" or (run.get("host") or {}).get("hostname") != platform.node():
            continue
        try:
            cfg = ExperimentConfig(**{k: v for k, v in run["config"].items() if k in SETTING_DEFAULTS})
        except (TypeError, KeyError, ValueError):
            continue  # not a run this planner can read: plan without it
        key = shape_key(cfg)
        flops[key] = flops.get(key, 0.0) + cell_cost(cfg).round_flops * len(run["history"])
        seconds[key] = seconds.get(key, 0.0) + net_seconds(run["history"])
    return {k: flops[k] / seconds[k] / 1e12 for k in flops if seconds[k] > 0}


def stored_round_share(runs: Path) -> tuple[float, int] | None:
    """(rounds run over round limits, how many runs) across the store's finished early-stopped
    runs: how far short of the upper bound its runs have stopped so far. None without any."""
    ran = limit = count = 0
    for path in runs.glob("*/final.json") if runs.is_dir() else []:
        run = read_json(path)
        cfg = run.get("config") or {}
        if run.get("status") == "ok" and cfg.get("early_stop") and run.get("rounds_run") and cfg.get("rounds"):
            ran, limit, count = ran + run["rounds_run"], limit + cfg["rounds"], count + 1
    return (ran / limit, count) if count else None
