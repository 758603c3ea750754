"""The small experiment most tests run: a task of the tiny synthetic corpus (the `tiny_corpus`
fixture; i2b2-2010 unless named), the tiny BERT, two clients, one round, 32 tokens. A test names
only what it changes, so what it is about stands out."""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import ExperimentConfig
from bench.data.registry import TASKS, release_folder


def tiny_config(corpus: Path, **settings) -> ExperimentConfig:
    """An ExperimentConfig on `corpus`, reading the named task's folder of it."""
    task = settings.get("task", "i2b2-2010")
    base = dict(
        task=task,
        method="fedavg",
        model="tiny-bert",
        clients=2,
        rounds=1,
        max_length=32,
        data_dir=str(corpus / release_folder(TASKS.get(task))),
    )
    return ExperimentConfig(**{**base, **settings})


def rounds(out: Path) -> list[dict]:
    """A run folder's rounds.jsonl, one dict per round."""
    return [json.loads(line) for line in (Path(out) / "rounds.jsonl").read_text().splitlines() if line.strip()]
