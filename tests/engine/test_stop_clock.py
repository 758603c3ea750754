"""A round records the seconds its process was stopped (a paused study queue), so a stored run's
time is its work: bench.engine.stop_clock, read by bench.engine.rounds."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.engine import server
from bench.engine.stop_clock import StopClock
from tests.tiny import tiny_config

CHILD = """
import sys, time
from bench.engine.stop_clock import StopClock
with StopClock(tick_s=0.05, gap_s=float(sys.argv[1])) as clock:
    print("ready", flush=True)
    sys.stdin.readline()  # the parent stops this process, then writes a line
    print(clock.stopped_s(), flush=True)
"""


def stopped_in_child(pause_s: float, gap_s: float) -> tuple[float, float]:
    """(the clock's reading, the pause as this process timed it) in a process the test stops
    (SIGSTOP) for about `pause_s` seconds, or not at all."""
    command = [sys.executable, "-c", CHILD, str(gap_s)]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    paused = 0.0
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        if pause_s:
            start = time.monotonic()
            os.kill(child.pid, signal.SIGSTOP)
            time.sleep(pause_s)
            os.kill(child.pid, signal.SIGCONT)
            paused = time.monotonic() - start
        time.sleep(0.3)
        out, _ = child.communicate("go\n", timeout=30)
    finally:
        child.kill()
    return float(out.strip()), paused


def test_a_stopped_process_records_its_pause_and_a_running_one_none():
    recorded, paused = stopped_in_child(3.0, gap_s=1.0)
    assert recorded == pytest.approx(paused, abs=0.5)
    assert stopped_in_child(0.0, gap_s=2.0) == (0.0, 0.0)  # a 2 s stall on a busy machine is unlikely


def test_gaps_under_the_threshold_are_work_and_an_open_gap_counts_before_the_next_tick():
    now = [0.0]
    with StopClock(tick_s=1.0, gap_s=5.0, clock=lambda: now[0]) as clock:  # its own ticks only shorten gaps
        for step in (1.0, 4.9, 1.0):  # a slow tick (the interpreter lock held for a while) is not a pause
            now[0] += step
            clock.tick()
        assert clock.stopped_s() == 0.0
        now[0] += 61.0  # stopped for a minute; resumed, the round ends before the thread ticks again
        assert clock.stopped_s() == pytest.approx(60.0)
        clock.tick()
        assert clock.stopped_s() == pytest.approx(60.0)  # the tick keeps it, once
    now[0] += 100.0
    assert clock.stopped_s() == pytest.approx(60.0)  # closed: nothing ticks, nothing is counted
    assert StopClock(clock=lambda: now[0] + 1e6).stopped_s() == 0.0  # never started: no gap


class ScriptedClock:
    """A stop clock whose readings are scripted: round 1 starts at 0 and ends at 0.001 (stopped
    1 ms), round 2 ends 100 s later, longer than the round took."""

    def __init__(self, *args, **kwargs):
        self.readings = iter([0.0, 0.001, 0.001, 100.001])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def stopped_s(self):
        return next(self.readings)


def test_every_round_line_carries_the_seconds_its_run_was_stopped_and_never_more_than_its_wall(
    tiny_corpus, tmp_path, monkeypatch
):
    monkeypatch.setattr(server, "StopClock", ScriptedClock)
    cfg = tiny_config(tiny_corpus, rounds=2, max_length=48)
    server.run_experiment(cfg, tmp_path, progress=False)
    first, second = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert first["paused_s"] == 0.001
    assert second["paused_s"] == second["wall_s"] < 100.0  # a stop cannot outlast the round it is in
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["paused_s"] == pytest.approx(0.001 + second["wall_s"], abs=2e-3)  # the run's total, rounded


def test_a_runs_total_pause_is_unknown_when_a_round_predates_the_record():
    """final.json's paused_s: a resumed run whose older rounds recorded no pause says None, not 0."""
    from bench.engine.summary import _paused

    assert _paused([{"paused_s": 1.0}, {"paused_s": 2.5}]) == 3.5
    assert _paused([{"paused_s": 1.0}, {"wall_s": 3.0}]) is None and _paused([]) is None
