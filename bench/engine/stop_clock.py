"""Seconds this process did not run while its clock went on: a SIGSTOP of the study queue (for a
timing or a CI run on the same cores; the queue is stopped as a process group, `kill -STOP
-PGID`, so the server's process stops with its workers) stops every thread of the server, so a
daemon thread that ticks every TICK_S sees a gap between two ticks; a gap over GAP_S counts as
stopped, less the one tick it would have waited anyway. A round's `paused_s` is what this clock
gained during the round, so `wall_s - paused_s` is its run time (bench.protocol.run_time), a
record where the older runs have only a rule. A stop of the workers alone is not seen. GAP_S
sits far below a pause (minutes), and is assumed above the longest the interpreter lock is held
in a round: a slower tick would count work as stopped (the README gives the evidence: of the
store's rounds since the clock came, none read a pause but the one stopped by hand)."""

from __future__ import annotations

import threading
import time

TICK_S = 0.25
GAP_S = 5.0


class StopClock:
    """Use it as a context manager (the thread ticks inside it); read `stopped_s()` before and
    after what it times."""

    def __init__(self, tick_s: float = TICK_S, gap_s: float = GAP_S, clock=time.monotonic):
        self.tick_s, self.gap_s, self._clock = tick_s, gap_s, clock
        self._lock = threading.Lock()
        self._last = clock()
        self._stopped = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stop-clock", daemon=True)

    def __enter__(self) -> StopClock:
        self._last = self._clock()  # gaps count from here, not from construction
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.tick_s):
            self.tick()

    def _excess(self, gap: float) -> float:
        return gap - self.tick_s if gap > self.gap_s else 0.0

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            self._stopped += self._excess(now - self._last)
            self._last = now

    def stopped_s(self) -> float:
        """Seconds stopped so far, the gap still open included (a round that ends just after a
        resume, before the next tick, is charged its pause)."""
        with self._lock:
            ticking = self._thread.is_alive()  # not started or closed: no gap to read
            return self._stopped + (self._excess(self._clock() - self._last) if ticking else 0.0)
