"""The cell the extension tests run (tests/engine/test_extend.py, test_resume_reuse.py): the tiny
experiment for two rounds on the serial backend, as a grid cell, and its stored final.json."""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import ExperimentConfig
from bench.protocol.grid import Cell
from tests.tiny import tiny_config


def serial_config(corpus: Path, **settings) -> ExperimentConfig:
    """tiny_config for two rounds on the serial backend, unless `settings` say otherwise."""
    return tiny_config(corpus, **{"rounds": 2, "backend": "serial", **settings})


def cell_of(cfg: ExperimentConfig) -> Cell:
    """`cfg` as a grid cell, under its own run id."""
    return Cell(cfg.run_id, cfg)


def read_final(runs: Path, cfg: ExperimentConfig) -> dict:
    """The final.json `cfg`'s run wrote under `runs`."""
    return json.loads((runs / cfg.run_id / "final.json").read_text())
