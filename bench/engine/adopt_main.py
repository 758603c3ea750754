"""Preloaded by the fork server (bench.engine.fork_server, which says why): imports the parent's
main script, named in BENCH_FORK_SERVER_MAIN, as multiprocessing would in each child, so the
children forked from here find it imported and do not run it again."""

from __future__ import annotations

import os
from multiprocessing import process, spawn

from bench.engine.fork_server import MAIN_PATH

_path = os.environ.get(MAIN_PATH)
if _path:
    process.current_process()._inheriting = True  # as the fork server does for a preloaded '__main__'
    try:
        spawn.import_main_path(_path)
    except Exception:  # noqa: BLE001 - a script that fails here is left to each child, as before
        pass
    finally:
        del process.current_process()._inheriting
