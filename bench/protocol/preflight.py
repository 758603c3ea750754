"""Bad data named before anything runs: the `hf:` sources of the cells about to run are loaded
as their runs will load them, once each per process, so a missing test split or a wrong column
is one line and exit 2 (as `--plan` says it) rather than a failed.json in every cell of the task.
Every path that runs cells (sweeps, seeds, edge probes, the patience check) goes through
bench.protocol.runner.run_cells, which calls this for the cells it will run (stored ones are
skipped). Release folders are checked by --data-dir (bench.protocol.overrides); shipped and
synthetic tasks need no check."""

from __future__ import annotations

from bench.data.hf import column_options
from bench.engine.prepare import load_splits
from bench.protocol.grid import Cell

_checked: set[tuple] = set()  # (source, data_dir, load options) already loaded in this process


def check_sources(cells: list[Cell]) -> None:
    """Load each distinct `hf:` source of the cells (BenchError on bad data)."""
    for cell in cells:
        cfg = cell.config
        key = (cfg.task, cfg.data_dir, cfg.label_level, tuple(sorted(column_options(cfg).items())))
        if cfg.task.startswith("hf:") and key not in _checked:
            load_splits(cfg)
            _checked.add(key)
