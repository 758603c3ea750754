"""The fork server the local backend's workers are forked from: a clean process that has
already imported what a worker needs (forking the server process, whose torch thread pools may
be running, is unsafe), so the imported code and data are pages every worker shares.

Three things make that sharing hold, in the order the fork server loads them (PRELOAD):
- what building a Worker imports: the methods (PEFT, accelerate) and the model classes
  transformers loads lazily. Here that cut a worker's start from about 3 s to 0.2 s (tiny-bert,
  2 workers). A module that is not installed is skipped by the fork server;
- the parent's main script or module (`python run_all.py`, `python -m bench.run`; bench.engine.
  adopt_main): multiprocessing runs it again, as __mp_main__, in every child it starts, so that
  functions defined there can be unpickled; for run_all that is about 0.33 s and 31 MB of private
  memory per worker (its imports: the report, scipy, matplotlib; results/perf/lean_memory.md). Imported once here, with the
  parent's argv, sys.path and folder as a child would have them, each child finds it and skips
  it. CPython means to do this when '__main__' is preloaded, but 3.11 never hands the fork server
  the path (it keeps a key, 'main_path', that the preparation data lacks);
- `gc.freeze()` over all of it (bench.engine.freeze_imports).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from multiprocessing import forkserver, spawn

PARENT_MAIN = "BENCH_FORK_SERVER_MAIN"  # the parent's main, for adopt_main; set for the fork server's start only
# what a child is told about the parent's main (multiprocessing.spawn.prepare applies these)
MAIN_KEYS = ("sys_argv", "sys_path", "dir", "init_main_from_path", "init_main_from_name")

PRELOAD = [
    "bench.engine.worker",
    "bench.data.arrow_rows",  # pyarrow, to map the token cache
    "baselines",
    "peft",
    "accelerate",
    "transformers.models.bert.modeling_bert",
    "transformers.models.llama.modeling_llama",
    "bench.engine.adopt_main",
    "bench.engine.freeze_imports",  # last: freezes what the others imported (see its docstring)
]


def context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up() -> None:
    """Start the fork server now (once per process), so its imports overlap with the caller's
    own work; it is told about the parent's main as multiprocessing will tell each child."""
    context()
    data = spawn.get_preparation_data("fork server")
    if "init_main_from_path" in data or "init_main_from_name" in data:
        os.environ[PARENT_MAIN] = json.dumps({key: data[key] for key in MAIN_KEYS if key in data})
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(PARENT_MAIN, None)
