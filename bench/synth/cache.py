"""The synthetic corpus used when no --data-dir is given: generated once, then reused."""

from __future__ import annotations

from pathlib import Path

from bench.data.registry import TASKS
from bench.store import cache_root
from bench.synth.generate import GENERATOR_VERSION, write_corpus

DEFAULT_SEED = 0
DEFAULT_SCALE = "small"


def synthetic_corpus(scale: str = DEFAULT_SCALE, seed: int = DEFAULT_SEED) -> Path:
    """The folder of the synthetic corpus for (scale, seed), generated atomically if missing."""
    target = cache_root() / "synth" / f"v{GENERATOR_VERSION}-{scale}-seed{seed}"
    if not target.is_dir():
        write_corpus(target, seed=seed, scale=scale)
    return target


def data_dir_for(task: str, data_dir: str | Path | None) -> str | Path | None:
    """What bench.data.load_task should read for `task`: the user's folder as given; else, for a
    task with a synthetic corpus and none shipped, the synthetic corpus (generated once)."""
    spec = TASKS.get(task)
    if data_dir is not None or spec.bundled is not None or spec.synth_subdir is None:
        return data_dir
    return synthetic_corpus() / spec.synth_subdir
