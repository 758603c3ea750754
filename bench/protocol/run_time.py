"""How long a stored run took, net of pauses. A round's `wall_s` is the clock between its start
and end, so a round that was running when the study queue was stopped (SIGSTOP, for a timing or
CI on the same cores) records the pause: in the NCBI store, 12.5 of 47.5 recorded hours
(results/ncbi/plan_calibration.md, 2026-12-06). A round over PAUSE_FACTOR x its run's median
round counts at that median (rounds of one run do the same work; there a first round, start-up
included, took 0.99x its run's median, 1.72x at the 95th percentile)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

PAUSE_FACTOR = 3.0


def active_seconds(walls: list[float | None]) -> float:
    """A run's round seconds, each round over PAUSE_FACTOR x the run's median counted at the median."""
    walls = [w or 0.0 for w in walls]
    if not walls:
        return 0.0
    typical = statistics.median(walls)
    return sum(typical if w > PAUSE_FACTOR * typical else w for w in walls)


def run_seconds(folder: Path) -> tuple[float, float]:
    """(active, recorded) seconds of the run stored in `folder`, from its rounds.jsonl."""
    path = folder / "rounds.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    walls = [json.loads(line).get("wall_s") for line in lines if line.strip()]
    return active_seconds(walls), sum(w or 0.0 for w in walls)
