"""What a sampler thread left running costs the torch work after it (README, "Testing"):

    python docs/measure_leaked_sampler.py > results/perf/leaked_sampler.md

Until 2026-12-08 `bench.compare.step_memory` never stopped its peak sampler (a thread reading
/proc/self/smaps_rollup every 10 ms), and a test ran it in the test process, so every later test
shared the CPU with it. This times a fixed probe (40 AdamW steps of tiny-bert, batch 16 x 32, this
process's torch threads) alone, with that sampler running as the old code left it, and after
stopping it: wall and CPU seconds of each repeat. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import platform
import resource
import time

import torch
from measure_common import this_code

from bench.compare.step_memory import Peak
from bench.model.build import build_model

REPEATS, STEPS = 3, 40


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def probe() -> tuple[float, float]:
    """Wall and CPU seconds of STEPS training steps on one fixed batch."""
    torch.manual_seed(0)
    model, _ = build_model("tiny-bert", "ner", 7, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, labels = torch.randint(1000, 20000, (16, 32)), torch.randint(0, 7, (16, 32))
    wall, cpu = time.perf_counter(), cpu_s()
    for _ in range(STEPS):
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - wall, cpu_s() - cpu


def line(label: str) -> str:
    times = [probe() for _ in range(REPEATS)]
    walls, cpus = (", ".join(f"{t[i]:.2f}" for t in times) for i in (0, 1))
    return f"| {label} | {walls} | {cpus} |"


def main() -> None:
    probe()  # warm-up: first-call allocations and lazy imports
    rows = [line("alone")]
    sampler = Peak()
    sampler.start()
    rows.append(line("a peak sampler running (as the old code left it)"))
    sampler.stop()
    rows.append(line("after stopping it"))
    load = os.getloadavg()[0]
    print("# A sampler thread left running, and the torch work after it\n")
    print(
        f"Made by `python docs/measure_leaked_sampler.py` at {this_code()} on {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"1-minute load average {load:.2f} at the end. Each cell: {REPEATS} repeats of {STEPS} "
        "AdamW steps of tiny-bert (batch 16 x 32), seconds.\n"
    )
    print("| the process | wall s | CPU s |\n| --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
