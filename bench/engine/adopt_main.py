"""Preloaded by the fork server (bench.engine.fork_server, which says why): imports the parent's
main script or module, described in BENCH_FORK_SERVER_MAIN, as multiprocessing would in each
child (the parent's argv, sys.path and folder first), so the children forked from here find it
imported and do not run it again."""

from __future__ import annotations

import json
import os
from multiprocessing import process, spawn

from bench.engine.fork_server import PARENT_MAIN

_parent_main = os.environ.pop(PARENT_MAIN, None)  # popped: the workers forked from here do not inherit it
if _parent_main:
    process.current_process()._inheriting = True  # as the fork server does for a preloaded '__main__'
    try:
        spawn.prepare(json.loads(_parent_main))  # what each child would do; it then finds main imported
    except BaseException:  # noqa: BLE001 - a main that fails or exits here is left to each child, as before
        pass
    finally:
        del process.current_process()._inheriting
