"""How far --plan's hours are from what the NCBI store's runs took (README, "The plan's estimate"):

    python docs/measure_plan_calibration.py > results/ncbi/plan_calibration.md

For every finished patience-5 run in results/ncbi/runs, the plan's hours for its configuration
at the rounds it ran, priced three ways: by its own shape's stored throughput (in sample), by the
neighbour a shape without stored runs gets (its own shape left out: bench.protocol.shape_neighbours),
and by the host probe alone (what the plan used for such shapes before 2026-12-05); against the
wall hours its rounds took, net of pauses (bench.protocol.run_time; before 2026-12-06 the paused
rounds counted, in the truth and in the stored throughputs alike). Ratios are summed wall over summed plan hours per shape: above 1, the
plan priced it too low. Configurations and seconds only.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
import warnings
from pathlib import Path

from measure_common import this_code

from bench.config import SETTING_DEFAULTS, ExperimentConfig
from bench.protocol import stored_cost
from bench.protocol.host_speed import host_key, host_tflops
from bench.protocol.plan import cell_cost, device_hours, shape_key
from bench.protocol.run_time import MIN_ROUNDS, PAUSE_FACTOR, round_walls, run_seconds

RUNS = Path("results/ncbi/runs")


def main() -> None:
    warnings.filterwarnings("ignore")
    measured = stored_cost.stored_throughput(RUNS)
    probe = host_tflops(host_key())[0]
    shapes: dict[str, list[tuple[float, float, float, float, str]]] = {}
    for path in sorted(RUNS.glob("*/final.json")):
        run = json.loads(path.read_text())
        config = run["config"]
        if run.get("status") != "ok" or config.get("patience") != 5:
            continue
        cfg = ExperimentConfig(**{k: v for k, v in config.items() if k in SETTING_DEFAULTS})
        cfg = dataclasses.replace(cfg, rounds=run["rounds_run"])
        cost, key = cell_cost(cfg), shape_key(cfg)
        wall = run_seconds(path.parent).net  # rounds taken as paused count at their run's median
        left_out, source = device_hours(cost, {}, {k: v for k, v in measured.items() if k != key}, lambda: probe)
        label = f"{cfg.method} {cfg.layers or ''} {'r' + str(cfg.lora_rank) if cfg.method == 'lora' else ''} ({cfg.clients} clients)"
        shapes.setdefault(" ".join(label.split()), []).append(
            (
                wall / 3600,
                device_hours(cost, {}, measured)[0],
                left_out,
                device_hours(cost, {}, {}, lambda: probe)[0],
                source,
            )
        )
    lines = [
        "# --plan against the NCBI store's runs",
        "",
        f"Made by `python docs/measure_plan_calibration.py` at {this_code()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"this machine's host probe: {probe:.3f} TFLOP/s. Wall over plan hours, summed per configuration "
        "(above 1: the plan priced it too low).",
        "",
        "| configuration | runs | wall hours | own shape stored (in sample) | own shape left out | source when left out | host probe alone |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, rows in sorted(shapes.items()):
        wall = sum(r[0] for r in rows)
        ratios = [wall / sum(r[i] for r in rows) for i in (1, 2, 3)]
        lines.append(
            f"| {name} | {len(rows)} | {wall:.2f} | {ratios[0]:.2f} | {ratios[1]:.2f} | {rows[0][4]} | {ratios[2]:.2f} |"
        )
    finished = [path.parent for path in sorted(RUNS.glob("*/final.json"))]
    totals = [run_seconds(folder) for folder in finished]
    lines += [
        "",
        f"Every finished run in the store ({len(totals)}): {sum(t.recorded for t in totals) / 3600:.1f} hours "
        f"recorded, {sum(t.net for t in totals) / 3600:.1f} net of pauses (in a run of at least {MIN_ROUNDS} "
        f"rounds, a round over {PAUSE_FACTOR:g}x the run's median counted at the median). A run's first round "
        f"over its median round: {first_round_ratios(finished)}.",
    ]
    print("\n".join(lines))


def first_round_ratios(folders: list[Path]) -> str:
    """How a run's first round (start-up included) compares with its median round: the pause rule's margin."""
    walls = [w for w in map(round_walls, folders) if len(w) >= MIN_ROUNDS]
    ratios = sorted(w[0] / statistics.median(w) for w in walls)
    over = sum(r > PAUSE_FACTOR for r in ratios)
    return (
        f"median {statistics.median(ratios):.2f}x, 95th percentile {ratios[int(0.95 * len(ratios))]:.2f}x over "
        f"{len(ratios)} runs of {MIN_ROUNDS} rounds or more; {over} over {PAUSE_FACTOR:g}x (taken as paused): "
        + ", ".join(f"{r:.1f}x" for r in ratios if r > PAUSE_FACTOR)
    )


if __name__ == "__main__":
    main()
