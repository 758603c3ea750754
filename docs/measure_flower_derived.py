"""Every ratio the README and docs/PERFORMANCE.md derive from a Flower sitting, printed from its
stored file, and the compute floor the hardware allows (README, "Speed and memory against Flower"):

    python docs/measure_flower_derived.py [results/perf/flower.json] > results/perf/flower_derived.md

`python -m bench.compare` prints each side's figures and their ratios to the suite's medians;
this prints what the text says beyond that: ratios between other sides, each repeat's pairing,
the spread between repeats, and sides run once (`--once`) against the suite's run of the same
repeat (not the median of all repeats, which mixes a slow repeat with a fast one).

The compute floor is each workload's FLOPs (bench.protocol.plan.cell_cost: its training,
validation every round and test, the planner's count) at the CPU's measured rate for a
minilm-width block training on every core at once (bench.protocol.host_speed: one thread's rate
times the cores, so an upper bound on the rate and a lower bound on the time). It bounds only
arithmetic: memory traffic, tokenizing, process start and model loading come on top, so no side
can reach it. The sitting's file records the rate from 2026-12-07 on (`machine.host_tflops`);
for an older file it is measured now, on this machine, whose CPU may be another kind (printed).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

from bench.compare.workloads import WORKLOADS
from bench.engine.cells import cpu_kind
from bench.protocol.host_speed import all_cores_tflops
from bench.protocol.plan import cell_cost

TIME_PAIRS = [  # (numerator side, denominator side): the ratios the text quotes
    ("suite", "floor"),
    ("flower_equal", "suite"),
    ("flower_equal", "floor"),
    ("flower", "suite"),
    ("flower", "suite_w1"),
    ("suite_w1", "suite"),
]
SMALL_PROCESS_MB = 100  # a helper process (Ray's daemons, a driver's idle parts), not a trainer
MEMORY_PAIRS = [
    ("suite", "flower_equal"),
    ("floor", "flower_equal"),
    ("suite", "floor"),
    ("suite_w1", "flower"),
]


def repeat_walls(side: dict) -> list[float]:
    """The side's wall seconds in repeat order (a `--once` side has one, the first repeat's)."""
    return [r["wall_s"] for r in side.get("repeats") or [{"wall_s": side["wall_s"]}]]


def time_ratio(sides: dict, top: str, bottom: str) -> str:
    """Median over median where both ran every repeat; else each repeat both ran, paired."""
    a, b = repeat_walls(sides[top]), repeat_walls(sides[bottom])
    both = min(len(a), len(b))
    pairs = ", ".join(f"{x / y:.3f}" for x, y in zip(a, b))
    if len(a) == len(b):
        return f"{statistics.median(a) / statistics.median(b):.3f} (medians; by repeat {pairs})"
    mixed = f"{statistics.median(a) / statistics.median(b):.3f}"
    return f"{pairs} (the {both} repeat(s) both ran; over the medians of unequal repeats it would read {mixed})"


def spread(side: dict) -> str:
    walls = repeat_walls(side)
    return f"{max(walls) / min(walls) - 1:.1%}" if len(walls) > 1 else "one run"


def compute_rate(stored: dict) -> tuple[float, str]:
    """TFLOP/s for every core at once, and where it comes from."""
    machine = stored.get("machine", {})
    if machine.get("host_tflops"):
        return machine["host_tflops"], "recorded by the sitting"
    now = cpu_kind()
    rate = all_cores_tflops()
    same = "the same kind" if now["cpu_flags_sha"] == machine.get("cpu_flags_sha") else "ANOTHER kind"
    return rate, (
        f"measured now by this script on {os.cpu_count()} cores (CPU flags {now['cpu_flags_sha']}; the sitting's "
        f"{machine.get('cpu_flags_sha')}: {same}), since the sitting did not record it"
    )


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "results/perf/flower.json")
    stored = json.loads(path.read_text())
    rate, source = compute_rate(stored)
    print(f"# Ratios and the compute floor derived from `{path}`\n")
    print(
        f"Made by `python docs/measure_flower_derived.py {path}`; the sitting: {stored.get('started')} to "
        f"{stored.get('finished')}, {stored.get('repeats')} repeat(s), run once: {', '.join(stored.get('once') or []) or 'none'}.\n"
    )
    print(f"Compute rate: {rate:.3f} TFLOP/s, {source}.\n")
    for name, sides in stored["workloads"].items():
        sides = {k: v for k, v in sides.items() if isinstance(v, dict) and "wall_s" in v}
        print(f"## {name}: {WORKLOADS[name].title}\n")
        flops = cell_cost(WORKLOADS[name].config(None)).flops
        floor_s = flops / (rate * 1e12)
        print(f"- compute floor: {flops / 1e12:.1f} TFLOP, {floor_s:.0f} s at that rate")
        for side, got in sides.items():
            print(
                f"- {side}: {got['wall_s']} s ({got['wall_s'] / floor_s:.2f}x the compute floor), spread {spread(got)}"
            )
        for side, got in sides.items():  # whose processes hold the peak: trainers, or small helpers (Ray's)
            peaks = got.get("peak_pss_by_process_mb", [])
            small = [mb for mb in peaks if mb < SMALL_PROCESS_MB]
            print(
                f"- {side}: {len(peaks)} processes; {len(small)} under {SMALL_PROCESS_MB} MB peak at "
                f"{sum(small):.0f} MB in all (each at its own moment)"
            )
        for top, bottom in TIME_PAIRS:
            if top in sides and bottom in sides:
                print(f"- time {top} / {bottom}: {time_ratio(sides, top, bottom)}")
        for top, bottom in MEMORY_PAIRS:
            if top in sides and bottom in sides:
                ratio = sides[top]["peak_pss_mb"] / sides[bottom]["peak_pss_mb"]
                print(
                    f"- peak memory {top} / {bottom}: {ratio:.3f} ({sides[top]['peak_pss_mb']:.0f} / {sides[bottom]['peak_pss_mb']:.0f} MB)"
                )
        print()


if __name__ == "__main__":
    main()
