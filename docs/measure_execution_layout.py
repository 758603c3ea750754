"""Why the default CPU execution is one single-thread worker process per core (README, "On CPU
the default execution"): training-step throughput of two one-thread processes side by side
against one two-thread process, on this machine's two cores:

    python docs/measure_execution_layout.py > results/perf/execution_layout.md

Each layout runs `python -m bench.compare.step_memory` (minilm, AdamW, batch 16 x 64, random
token ids: no text) for STEPS steps, alternating layouts REPEATS times; a layout's seconds per
step of throughput is the median step time of its processes divided by how many ran at once.
Run it on a quiet machine (pause other work): it measures how two cores are best shared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from measure_common import this_code

STEPS, REPEATS = 8, 3
LAYOUTS = {"two one-thread processes": (2, 1), "one two-thread process": (1, 2)}


def busy_share(seconds: float = 2.0) -> float:
    """The share of all cores' time not idle over `seconds` (/proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def run(processes: int, threads: int) -> list[float]:
    """Every step's seconds, first step left out (allocation warm-up), over `processes` run at once."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "bench.compare.step_memory", "--steps", str(STEPS), "--threads", str(threads)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return [s for out in outs for s in out["step_s"][1:]]


def main() -> None:
    busy = busy_share()  # the machine's state before: other work would show here
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for _ in range(REPEATS):
        for name, (processes, threads) in LAYOUTS.items():
            times[name].append(statistics.median(run(processes, threads)) / processes)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [
        "# Execution layout on CPU: two one-thread processes against one two-thread process",
        "",
        f"Made by `python docs/measure_execution_layout.py` at {this_code()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on {os.cpu_count()} cores ({cpu}), torch threads as named. "
        f"minilm, AdamW, batch 16 x 64, {STEPS} steps per process (the first left out), {REPEATS} alternating repeats. "
        f"CPU busy over the 2 s before the start: {busy:.0%} (other work running would show here).",
        "",
        "| layout | seconds per step of throughput, each repeat | median |",
        "| --- | --- | ---: |",
    ]
    for name, values in times.items():
        lines.append(f"| {name} | {', '.join(f'{v:.3f}' for v in values)} | {statistics.median(values):.3f} |")
    two, one = (statistics.median(times[name]) for name in LAYOUTS)
    lines += ["", f"Two one-thread processes: {one / two:.2f}x the throughput of one two-thread process."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
