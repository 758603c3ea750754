"""How long a stored run took, net of pauses. A round's `wall_s` is the clock between its start
and end, so a round that was running when the study queue was stopped (SIGSTOP, for a timing or
CI on the same cores) records the pause: in the NCBI store, about a quarter of the recorded hours
(results/ncbi/plan_calibration.md). Nothing records the stop itself, so this is a rule: in a run
of at least MIN_ROUNDS rounds, a round over PAUSE_FACTOR x the run's median round is taken as
paused and counts at that median. It misses shorter pauses and runs paused for most of their
rounds, and would also cut a round slow for a reason of its own (a client-sampled round, a
round that scores test): none of those occur in the NCBI store, whose rounds all train every
client and score validation only. Shorter runs count as recorded."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import NamedTuple

PAUSE_FACTOR = 3.0
MIN_ROUNDS = 5  # with fewer, a median cannot tell a paused round from the others


class RunSeconds(NamedTuple):
    net: float  # rounds taken as paused counted at the run's median
    recorded: float


def net_seconds(walls: list[float]) -> float:
    """A run's round seconds with each round over PAUSE_FACTOR x the run's median counted at the median."""
    if len(walls) < MIN_ROUNDS:
        return sum(walls)
    typical = statistics.median(walls)
    return sum(typical if w > PAUSE_FACTOR * typical else w for w in walls)


def round_walls(folder: Path) -> list[float]:
    """The wall seconds of each round stored in `folder`'s rounds.jsonl (rounds without one left out)."""
    path = folder / "rounds.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [w for line in lines if line.strip() and (w := json.loads(line).get("wall_s")) is not None]


def run_seconds(folder: Path) -> RunSeconds:
    walls = round_walls(folder)
    return RunSeconds(net_seconds(walls), sum(walls))
