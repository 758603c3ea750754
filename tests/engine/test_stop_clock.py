"""A round records the seconds its process was stopped (a paused study queue), so a stored run's
time is its work: bench.engine.stop_clock, read by bench.engine.rounds."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.config import ExperimentConfig
from bench.engine import server
from bench.engine.stop_clock import StopClock

CHILD = """
import sys, time
from bench.engine.stop_clock import StopClock
with StopClock(tick_s=0.05, gap_s=1.0) as clock:
    print("ready", flush=True)
    sys.stdin.readline()  # the parent stops this process, then writes a line
    print(clock.stopped_s(), flush=True)
"""


def stopped_in_child(pause_s: float) -> tuple[float, float]:
    """(the clock's reading, the pause as this process timed it) in a process the test stops
    (SIGSTOP) for about `pause_s` seconds, or not at all."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    recorded, paused = stopped_in_child(3.0)
    assert recorded == pytest.approx(paused, abs=0.3)
    assert stopped_in_child(0.0) == (0.0, 0.0)


def test_gaps_under_the_threshold_are_work_and_an_open_gap_counts_before_the_next_tick():
    now = [0.0]
    clock = StopClock(tick_s=1.0, gap_s=5.0, clock=lambda: now[0])
    for step in (1.0, 4.9, 1.0):  # a slow tick (the interpreter lock held for a while) is not a pause
        now[0] += step
        clock.tick()
    assert clock.stopped_s() == 0.0
    now[0] += 61.0  # stopped for a minute; resumed, the round ends before the thread ticks again
    assert clock.stopped_s() == pytest.approx(60.0)
    clock.tick()
    assert clock.stopped_s() == pytest.approx(60.0)  # the tick keeps it, once


class SteppingClock:
    """A stop clock that reads 7 s more at every look: each round was stopped 7 s."""

    def __init__(self, *args, **kwargs):
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def stopped_s(self):
        self.reads += 1
        return 7.0 * self.reads


def test_every_round_line_carries_the_seconds_its_run_was_stopped(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "StopClock", SteppingClock)
    cfg = ExperimentConfig(
        task="i2b2-2010",
        method="fedavg",
        model="tiny-bert",
        clients=2,
        rounds=2,
        max_length=48,
        data_dir=str(tiny_corpus / "i2b2-2010"),
    )
    server.run_experiment(cfg, tmp_path, progress=False)
    rounds = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert [r["paused_s"] for r in rounds] == [7.0, 7.0]
