"""Run a command and sample the summed PSS of its whole process tree (Linux /proc).

PSS (proportional set size) charges a page shared by n processes 1/n to each, so summing it
over a tree counts shared libraries, torch's code and shared memory (Ray's object store) once,
where summing RSS would count them once per process. Every process ever seen below the
command stays counted while it lives, even after it is re-parented (Ray's daemons are), so a
tree that spawns helpers cannot hide them. Both sides of a comparison are sampled this way,
once a second (reading smaps_rollup of gigabyte processes four times a second took a third of
a core here, time the measured runs lost).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _pss_rss_kb(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


class TreeSampler:
    """Peaks of the summed PSS (and, for reference, summed RSS) of `root` and everything it
    starts, sampled every `every` seconds."""

    def __init__(self, root: int, every: float = 1.0):
        self.root, self.every = root, every
        self.seen: set[int] = {root}
        self.peak_kb = self.peak_rss_kb = 0
        self.peak_by_pid: dict[int, int] = {}  # each process's own peak PSS (kB)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        tree, stack = _children(), [self.root, *self.seen]
        while stack:
            pid = stack.pop()
            for child in tree.get(pid, []):
                if child not in self.seen:
                    self.seen.add(child)
                    stack.append(child)
        self.seen = {pid for pid in self.seen if os.path.exists(f"/proc/{pid}")}
        by_pid = {pid: _pss_rss_kb(pid) for pid in self.seen}
        for pid, (pss, _) in by_pid.items():
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), pss)
        sizes = list(by_pid.values())
        total = sum(pss for pss, _ in sizes)
        self.peak_kb, self.samples = max(self.peak_kb, total), self.samples + 1
        self.peak_rss_kb = max(self.peak_rss_kb, sum(rss for _, rss in sizes))
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], env: dict | None = None, log: Path | None = None, every: float = 1.0) -> dict:
    """Run `cmd` to the end: wall seconds, peak summed PSS and RSS in MB, exit code."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid, every) as sampler:
            code = proc.wait()
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_pss_mb": round(sampler.peak_kb / 1024, 1),
        "peak_rss_sum_mb": round(sampler.peak_rss_kb / 1024, 1),
        "peak_pss_by_process_mb": sorted((round(kb / 1024, 1) for kb in sampler.peak_by_pid.values()), reverse=True),
        "samples": sampler.samples,
        "returncode": code,
    }
