"""Bad data named before anything runs: a grid's `hf:` sources are opened and their splits and
columns checked once each, so a missing test split or a wrong column is one line and exit 2 (as
`--plan` says it) rather than a failed.json in every cell of the task. Release folders are
checked by --data-dir (bench.protocol.overrides); shipped and synthetic tasks need no check."""

from __future__ import annotations

from bench.data import load_task
from bench.data.hf import column_options
from bench.protocol.grid import Cell
from bench.synth.cache import data_dir_for


def check_sources(cells: list[Cell]) -> None:
    """Load each distinct `hf:` source of the cells as its runs will (BenchError on bad data)."""
    seen = set()
    for cell in cells:
        cfg = cell.config
        options = {**column_options(cfg), **({"label_level": cfg.label_level} if cfg.label_level else {})}
        key = (cfg.task, cfg.data_dir, tuple(sorted(options.items())))
        if cfg.task.startswith("hf:") and key not in seen:
            seen.add(key)
            load_task(cfg.task, data_dir_for(cfg.task, cfg.data_dir), **options)
