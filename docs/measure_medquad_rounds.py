"""What a round of the MedQuAD grid costs on this machine, per method, at the grid's settings
(README, MedQuAD; bench/grids/medquad.yaml), with the validation subset and without it:

    python docs/measure_medquad_rounds.py > results/medquad/round_times.md

Each configuration trains 2 rounds (seed 0, the middle of its lr range, two worker processes as
the study queue runs them) in a fresh folder; the table gives the second round's wall seconds
(the first includes start-up) and what every run of the grid at that pace would take at its
40-round limit. Stop other work on the machine first (the study queue: kill -STOP). Seconds only.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import yaml
from measure_common import this_code

from bench.config import ExperimentConfig
from bench.engine.server import run_experiment

GRID = Path("bench/grids/medquad.yaml")
RUNS_PER_METHOD = {"centralized": 6}  # iid only: 3 sweep points + 3 more seeds; the others twice that


def configs(grid: dict) -> list[tuple[str, ExperimentConfig]]:
    out = []
    for entry in grid["methods"]:
        settings = {k: v for k, v in entry.items() if k != "tune"}
        lr = entry["tune"]["lr"][1]
        label = " ".join(str(x) for x in (entry["method"], entry.get("layers") or "") if x)
        base = {**grid["defaults"], **settings, "task": grid["tasks"][0], "lr": lr, "rounds": 2}
        base.update(seed=0, early_stop=False, workers=2)
        cfg = ExperimentConfig.from_dict(base)
        out.append((label, cfg))
        if entry["method"] in ("fedavg", "layerskip") and entry.get("layers") in (None, "top:2"):
            out.append((label + ", whole validation", cfg.with_settings(val_subsample=None)))
    return out


def main() -> None:
    warnings.filterwarnings("ignore")
    grid = yaml.safe_load(GRID.read_text())
    rows, total = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg in configs(grid):
            folder = Path(tmp) / label.replace(" ", "_").replace(":", "-").replace(",", "")
            run_experiment(cfg, folder, progress=False)
            walls = [json.loads(line)["wall_s"] for line in (folder / "rounds.jsonl").read_text().splitlines()]
            runs = 0 if "whole" in label else RUNS_PER_METHOD.get(cfg.method, 12)
            hours = runs * 40 * walls[-1] / 3600
            total += hours
            in_grid = (str(runs), f"{hours:.1f}") if runs else ("-", "-")  # the whole-validation rows: a comparison
            rows.append(f"| {label} | {walls[0]:.1f} | {walls[-1]:.1f} | {in_grid[0]} | {in_grid[1]} |")
    print("# A round of the MedQuAD grid, per method, on this machine\n")
    print(
        f"Made by `python docs/measure_medquad_rounds.py` at {this_code()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on {platform.machine()} with 2 worker processes "
        "(the study queue paused). Grid settings (bench/grids/medquad.yaml), seed 0, the middle lr of each range.\n"
    )
    print(
        "| configuration | round 1 s | round 2 s | runs in the grid | hours at 40 rounds |\n|---|---:|---:|---:|---:|"
    )
    print("\n".join(rows))
    print(
        f"\nEvery run of the grid to its 40-round limit at these paces: {total:.1f} hours (early stopping ends most sooner)."
    )


if __name__ == "__main__":
    main()
