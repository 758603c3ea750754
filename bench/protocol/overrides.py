"""The command line's changes to a grid's cells: --model and --data-dir (new identities where
they change what is computed) and, for cells run one at a time on this machine, the machine's
default execution (bench.engine.execution) wherever the grid chose none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.data import TASKS
from bench.data.registry import release_folder
from bench.engine import execution
from bench.errors import BenchError
from bench.protocol.grid import Cell


def with_settings(cells: list[Cell], changes) -> list[Cell]:
    """Cells with `changes(config)` applied (new identities where they change what is computed)."""
    out = []
    for cell in cells:
        cfg = cell.config.with_settings(**changes(cell.config))
        out.append(dataclasses.replace(cell, run_id=cfg.run_id, config=cfg))
    return out


def task_folder(root: str, task: str) -> Path:
    """ROOT/<the task's release folder>: i2b2-2010/, i2b2-2014/, mimic-iii/, ..."""

    folder = Path(root) / release_folder(TASKS.get(task))
    if not folder.is_dir():
        raise BenchError(f"--data-dir {root}: no folder {folder.name}/ for task {task} (expected {folder})")
    return folder


def overridden(cells: list[Cell], args) -> list[Cell]:
    """The cells with the command line's --model and --data-dir applied, and, when they run one
    at a time on this machine, the machine's default execution (bench.engine.execution) for
    every cell whose grid chose none. Execution never changes a cell's identity."""
    if args.model:
        cells = with_settings(cells, lambda cfg: {"model": args.model})
    if args.data_dir:
        cells = with_settings(cells, lambda cfg: {"data_dir": str(task_folder(args.data_dir, cfg.task))})
    if args.parallel == 1 and not args.ray_address:
        cells = [
            dataclasses.replace(c, config=execution.choose(c.config)) if execution.unchosen(c.config) else c
            for c in cells
        ]
    return cells
