"""`run_all.py --pilot`: one timed round per distinct shape (bench.protocol.plan.shape_key), its
throughput cached per host in `.cache/pilot.json` for --plan."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.engine.server import run_experiment
from bench.protocol.host_speed import host_key
from bench.protocol.plan import cell_cost, dp_sgd, shape_key
from bench.protocol.run_time import net_seconds
from bench.store import atomic_write_json, cache_root


def pilot_path() -> Path:
    return cache_root() / "pilot.json"


def load_pilots() -> dict[str, float]:
    """shape key -> measured TFLOP/s on this host."""
    path = pilot_path()
    stored = json.loads(path.read_text()) if path.is_file() else {}
    return stored.get(_pilot_host(), {})


def _pilot_host() -> str:
    """This host, and the unit: wall seconds (older entries timed worker-seconds: not read)."""
    return f"{host_key()}|wall"


def run_pilots(cells: list, folder: Path) -> dict[str, float]:
    """One timed round per distinct model x method shape: measured TFLOP/s, cached for this host."""
    pilots = load_pilots()
    for cell in cells:
        key = shape_key(cell.config)
        if key in pilots:
            continue
        cfg = cell.config.with_settings(
            rounds=1,
            test_every=0,
            early_stop=False,
            train_subsample=max(64, 4 * cell.config.clients),
            dp_epsilon=None,
            # DP-SGD's steps are timed as such (any sigma costs the same); DP-FedAvg's are plain steps
            noise_multiplier=(cell.config.noise_multiplier or 1.0) if dp_sgd(cell.config) else None,
            secure_rng=cell.config.secure_rng and dp_sgd(cell.config),  # refused without DP noise
            seed=0,
        )
        start = time.perf_counter()
        run_experiment(cfg, folder / cfg.run_id, progress=False)
        line = json.loads((folder / cfg.run_id / "rounds.jsonl").read_text().splitlines()[0])
        seconds = net_seconds([line]) or (time.perf_counter() - start)  # the machine's seconds, as stored runs
        pilots[key] = cell_cost(cfg).round_flops / max(seconds, 1e-6) / 1e12
        print(f"pilot {key}: {pilots[key]:.3f} TFLOP/s ({seconds:.1f} s for one round)")
    path = pilot_path()
    stored = json.loads(path.read_text()) if path.is_file() else {}
    atomic_write_json(path, {**stored, _pilot_host(): pilots})
    return pilots
