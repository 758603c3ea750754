"""The small experiment most tests run: the tiny synthetic corpus's i2b2-2010 task (the
`tiny_corpus` fixture), the tiny BERT, two clients, one round, 32 tokens. A test names only what
it changes, so what it is about stands out."""

from __future__ import annotations

from pathlib import Path

from bench.config import ExperimentConfig


def tiny_config(corpus: Path, **settings) -> ExperimentConfig:
    """An ExperimentConfig on `corpus` (another task passes its own `data_dir`)."""
    base = dict(
        task="i2b2-2010",
        method="fedavg",
        model="tiny-bert",
        clients=2,
        rounds=1,
        max_length=32,
        data_dir=str(corpus / "i2b2-2010"),
    )
    return ExperimentConfig(**{**base, **settings})
