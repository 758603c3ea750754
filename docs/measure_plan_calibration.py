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
from bench.protocol.host_speed import host_tflops
from bench.protocol.plan import cell_cost, device_hours, host_key, shape_key
from bench.protocol.run_time import run_seconds

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
        wall = run_seconds(path.parent)[0]  # net of rounds that spanned a pause of the queue
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
    totals = [run_seconds(folder) for folder in sorted(RUNS.iterdir()) if (folder / "rounds.jsonl").is_file()]
    active, recorded = (sum(t[i] for t in totals) / 3600 for i in (0, 1))
    lines += [
        "",
        f"Every run in the store ({len(totals)}): {recorded:.1f} hours recorded, {active:.1f} net of pauses "
        "(a round over 3x its run's median counted at the median). A first round over its run's median: "
        f"{first_round_ratios()}.",
    ]
    print("\n".join(lines))


def first_round_ratios() -> str:
    """How a run's first round (start-up included) compares with its median round: the pause rule's margin."""
    ratios = []
    for path in sorted(RUNS.glob("*/rounds.jsonl")):
        walls = [json.loads(line).get("wall_s") or 0.0 for line in path.read_text().splitlines() if line.strip()]
        if len(walls) >= 2 and statistics.median(walls) > 0:
            ratios.append(walls[0] / statistics.median(walls))
    ratios.sort()
    return f"median {statistics.median(ratios):.2f}x, 95th percentile {ratios[int(0.95 * len(ratios))]:.2f}x over {len(ratios)} runs"


if __name__ == "__main__":
    main()
