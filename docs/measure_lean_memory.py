"""The lean-memory figures of docs/PERFORMANCE.md that were one-off measurements, re-measured:

    python docs/measure_lean_memory.py > results/perf/lean_memory.md

1. `gc.freeze()` in the fork server (bench/engine/freeze_imports.py): a worker forked from the
   local backend's fork server, its preload as it is and without freeze_imports, reports the
   private dirty memory one `gc.collect()` copies there (3 workers per fork server, 2 fork
   servers per side, alternating).
2. What bench/engine/adopt_main.py saves: a worker forked from the fork server imports run_all.py
   (and, apart, the module `bench.run`) again as `__mp_main__`, as multiprocessing does in each
   child when the fork server has not imported the parent's main; its seconds and the private
   dirty memory it adds.
3. glibc's heap: `python -m bench.compare.step_memory` (minilm, batch 16 x 64, 6 steps) under the
   default allocator, `MALLOC_MMAP_THRESHOLD_=65536` and `MALLOC_ARENA_MAX=1`, 2 processes each,
   alternating: the peak private memory over the built model at each step, and each step's seconds.

Memory does not depend on what else the machine runs; seconds do, so the output says what ran
beside it (pass `--beside "..."`). Counts of megabytes and seconds only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]

from measure_common import this_code  # noqa: E402

from bench.compare.step_memory import private_dirty_kb  # noqa: E402

WORKERS = 3
ALLOCATORS = {
    "default": {},
    "MALLOC_MMAP_THRESHOLD_=65536": {"MALLOC_MMAP_THRESHOLD_": "65536"},
    "MALLOC_ARENA_MAX=1": {"MALLOC_ARENA_MAX": "1"},
}


def collected(queue) -> None:
    """In a forked worker: the freeze count and the private memory one full collection copies."""
    before = private_dirty_kb()
    gc.collect()
    queue.put({"frozen": gc.get_freeze_count(), "collect_kb": private_dirty_kb() - before})


def main_rerun(queue) -> None:
    """In a forked worker: what importing run_all.py again as __mp_main__ costs."""
    before, start = private_dirty_kb(), time.perf_counter()
    runpy.run_path(str(ROOT / "run_all.py"), run_name="__mp_main__")
    queue.put({"main": "run_all.py", "rerun_s": time.perf_counter() - start, "rerun_kb": private_dirty_kb() - before})


def module_rerun(queue) -> None:
    """The same for `python -m bench.run` (what the Flower comparison starts), as multiprocessing re-runs a module."""
    before, start = private_dirty_kb(), time.perf_counter()
    runpy.run_module("bench.run", run_name="__mp_main__", alter_sys=True)
    queue.put({"main": "-m bench.run", "rerun_s": time.perf_counter() - start, "rerun_kb": private_dirty_kb() - before})


def probe(frozen: bool) -> list[dict]:
    """One fork server (frozen or not), WORKERS workers forked from it, each measuring both."""
    from bench.engine import fork_server

    if not frozen:
        fork_server.PRELOAD = [m for m in fork_server.PRELOAD if m != "bench.engine.freeze_imports"]
    forking = fork_server.context()
    found = []
    for target in [collected] * WORKERS + [main_rerun] * WORKERS + [module_rerun] * WORKERS:
        queue = forking.Queue()
        worker = forking.Process(target=target, args=(queue,))
        worker.start()
        found.append(queue.get(timeout=300))
        worker.join()
    return found


def fork_server_side(frozen: bool) -> list[dict]:
    done = subprocess.run(
        [sys.executable, __file__, "--probe", "frozen" if frozen else "unfrozen"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_memory(allocator: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.compare.step_memory", "--steps", "6"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **allocator},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def span(values: list[float], fmt: str = "{:.0f}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}-{fmt.format(high)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", choices=["frozen", "unfrozen"], help=argparse.SUPPRESS)
    parser.add_argument("--beside", default="nothing else", help="what else ran on the machine (for the header)")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe == "frozen")))
        return
    sides: dict[bool, list[dict]] = {True: [], False: []}
    for _ in range(2):  # alternating fork servers
        for frozen in (False, True):
            sides[frozen] += fork_server_side(frozen)
    steps: dict[str, list[dict]] = {name: [] for name in ALLOCATORS}
    for _ in range(2):  # alternating processes
        for name, env in ALLOCATORS.items():
            steps[name].append(step_memory(env))

    print("# Lean memory: the fork server's freeze, the adopted main, and glibc's heap\n")
    print(
        f"Made by `python docs/measure_lean_memory.py` at commit {this_code()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, this machine's CPU; beside it: {args.beside} "
        "(memory does not depend on that; seconds do).\n"
    )
    print("## A full collection in a freshly forked worker\n")
    print("| fork server | objects frozen | private memory one `gc.collect()` copies, MB (each worker) |")
    print("| --- | ---: | --- |")
    for frozen, label in ((False, "without freeze_imports"), (True, "as the backend runs it (frozen)")):
        found = [r for r in sides[frozen] if "collect_kb" in r]
        copied = ", ".join(f"{r['collect_kb'] / 1024:.1f}" for r in found)
        print(f"| {label} | {span([r['frozen'] for r in found])} | {copied} |")
    print("\n## The parent's main imported again in a worker (what adopt_main spares each worker)\n")
    print("| main | fork server | seconds (each worker) | private memory added, MB (each worker) |")
    print("| --- | --- | --- | --- |")
    for main_name in ("run_all.py", "-m bench.run"):
        for frozen, label in ((False, "without freeze_imports"), (True, "frozen")):
            found = [r for r in sides[frozen] if r.get("main") == main_name]
            seconds = ", ".join(f"{r['rerun_s']:.2f}" for r in found)
            added = ", ".join(f"{r['rerun_kb'] / 1024:.1f}" for r in found)
            print(f"| `{main_name}` | {label} | {seconds} | {added} |")
    print("\n## One trainer's steps under three allocator settings\n")
    print("`python -m bench.compare.step_memory --steps 6` (minilm, AdamW, batch 16 x 64, one thread), two processes each, alternating.\n")  # fmt: skip
    print(
        "| allocator | private after build, MB | peak over build per step, MB (steps 1-6) | seconds per step, median (min) |"
    )
    print("| --- | ---: | --- | --- |")
    for name, found in steps.items():
        for r in found:
            peaks = ", ".join(str(p) for p in r["peak_over_build_per_step_mb"])
            print(
                f"| {name} | {r['private_after_build_mb']} | {peaks} | {statistics.median(r['step_s']):.2f} ({min(r['step_s']):.2f}) |"
            )


if __name__ == "__main__":
    main()
