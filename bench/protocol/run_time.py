"""How long a stored run took, net of pauses. A round's `wall_s` is the clock between its start
and end, so a round that was running when the study queue was stopped (SIGSTOP, for a timing or
CI on the same cores) records the pause: in the NCBI store, about a quarter of the recorded hours
(results/ncbi/plan_calibration.md). Rounds run since 2026-12-06 record it (`paused_s`, from
bench.engine.stop_clock) and count `wall_s - paused_s`. Older rounds have only a rule: in a run
of at least MIN_ROUNDS rounds, a round over PAUSE_FACTOR x the run's median round is taken as
paused and counts at that median. It misses shorter pauses and runs paused for most of their
rounds, and would also cut a round slow for a reason of its own (a client-sampled round, a
round that scores test): none of those occur in the NCBI store, whose rounds all train every
client and score validation only. Shorter runs count as recorded."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import NamedTuple

from bench.store import read_json_lines

PAUSE_FACTOR = 3.0
MIN_ROUNDS = 5  # with fewer, a median cannot tell a paused round from the others


class RunSeconds(NamedTuple):
    net: float  # recorded pauses left out; older rounds taken as paused counted at the run's median
    recorded: float


def _net(line: dict) -> float:
    return line["wall_s"] - (line.get("paused_s") or 0.0)


def net_seconds(lines: list[dict]) -> float:
    """A run's round seconds: a round that recorded its pause counts `wall_s - paused_s`; one
    from before the record, over PAUSE_FACTOR x the run's median, counts at the median."""
    timed = [line for line in lines if line.get("wall_s") is not None]
    if len(timed) < MIN_ROUNDS:
        return sum(map(_net, timed))
    typical = statistics.median(map(_net, timed))
    return sum(
        _net(t) if t.get("paused_s") is not None or t["wall_s"] <= PAUSE_FACTOR * typical else typical for t in timed
    )


def round_lines(folder: Path) -> list[dict]:
    """The rounds stored in `folder`'s rounds.jsonl."""
    path = folder / "rounds.jsonl"
    return read_json_lines(path) if path.is_file() else []


def _walls(lines: list[dict]) -> list[float]:
    return [w for line in lines if (w := line.get("wall_s")) is not None]


def round_walls(folder: Path) -> list[float]:
    """The wall seconds of each round stored in `folder` (rounds without one left out)."""
    return _walls(round_lines(folder))


def run_seconds(folder: Path) -> RunSeconds:
    lines = round_lines(folder)
    return RunSeconds(net_seconds(lines), sum(_walls(lines)))
