"""The synthetic corpus used when no --data-dir is given: generated once, then reused."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SEED = 0
DEFAULT_SCALE = "small"


def cache_root() -> Path:
    """$BENCH_CACHE, else .cache/ in the working directory."""
    return Path(os.environ.get("BENCH_CACHE", ".cache"))


def synthetic_corpus(scale: str = DEFAULT_SCALE, seed: int = DEFAULT_SEED) -> Path:
    """The folder of the synthetic corpus for (scale, seed), generated atomically if missing."""
    from bench.synth.generate import GENERATOR_VERSION, write_corpus

    target = cache_root() / "synth" / f"v{GENERATOR_VERSION}-{scale}-seed{seed}"
    if not target.is_dir():
        write_corpus(target, seed=seed, scale=scale)
    return target
