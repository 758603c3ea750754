"""Generate the three synthetic corpora in their release layouts, atomically."""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.synth import i2b2_2010, i2b2_2014, mimic3

CORPORA = ("i2b2-2010", "i2b2-2014", "mimic-iii")


@dataclass(frozen=True)
class Scale:
    i2b2_2010_docs_per_site: int
    i2b2_2014_train_docs: int
    mimic_admissions: int


SCALES = {
    "tiny": Scale(4, 8, 160),
    "small": Scale(24, 40, 500),  # sized so the quick grid fits 15 minutes on 2 CPU cores
    "medium": Scale(160, 160, 6000),
}
GENERATOR_VERSION = 3  # bump when the output changes, so cached corpora are regenerated


def corpus_stream(seed: int, corpus: str) -> random.Random:
    """One corpus's generator: changing one corpus leaves the others' bytes unchanged."""
    return random.Random(f"{seed}:{corpus}")


def write_corpus(out: str | Path, seed: int = 0, scale: str = "small") -> Path:
    """Write DIR/i2b2-2010, DIR/i2b2-2014 and DIR/mimic-iii; same seed and scale, same bytes.

    Everything is written to a temporary folder beside `out` and renamed into place, so an
    interrupted run leaves nothing half-written.
    """
    if scale not in SCALES:
        raise BenchError(f"unknown scale {scale!r} (valid: {', '.join(SCALES)})")
    size = SCALES[scale]
    out = Path(out)
    existing = [name for name in CORPORA if (out / name).exists()]
    if existing:
        raise BenchError(f"{out / existing[0]} exists; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        i2b2_2010.write(tmp / "i2b2-2010", corpus_stream(seed, "i2b2-2010"), size.i2b2_2010_docs_per_site)
        i2b2_2014.write(tmp / "i2b2-2014", corpus_stream(seed, "i2b2-2014"), size.i2b2_2014_train_docs)
        mimic3.write(tmp / "mimic-iii", corpus_stream(seed, "mimic-iii"), size.mimic_admissions)
        for name in CORPORA:
            (tmp / name).rename(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
