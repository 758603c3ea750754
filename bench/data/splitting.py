"""Train / validation / test splits that leak nothing across documents or patients.

Two ways, both deterministic:
- `split_of(key)`: a stable hash of a document or patient key, three-way (20% test, 10%
  validation, the rest train). Used where a release ships no split (a flat i2b2 folder, MIMIC-III).
- `carve_validation(examples)`: where a release ships train and test but no validation set, a
  seeded 10% of the *training documents* of each site becomes validation (stratified by site, so
  a site-partitioned run keeps every hospital in both).
"""

from __future__ import annotations

import hashlib

from bench.seeding import stream

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0  # fixed: the validation set is part of the task, the same for every run


def stable_fraction(key: str) -> float:
    """A hash of `key` in [0, 1), the same on every machine and Python run."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def split_of(key: str) -> str:
    f = stable_fraction(key)
    return "test" if f < TEST_FRACTION else "validation" if f < TEST_FRACTION + VALIDATION_FRACTION else "train"


def carve_validation(
    examples: list, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED
) -> tuple[list, list]:
    """(train, validation): whole documents, `fraction` of each site's documents (at least one
    from a site with two or more), chosen by a generator seeded with (seed, site)."""
    docs_by_site: dict[str, set[str]] = {}
    for ex in examples:
        docs_by_site.setdefault(ex.site, set()).add(ex.doc_id)
    held: set[tuple[str, str]] = set()
    for site, docs in sorted(docs_by_site.items()):
        if len(docs) < 2:
            continue
        k = max(1, int(round(fraction * len(docs))))
        rng = stream("validation_carve", seed, int(hashlib.sha256(site.encode()).hexdigest()[:8], 16))
        held.update((site, d) for d in rng.choice(sorted(docs), size=k, replace=False).tolist())
    train = [ex for ex in examples if (ex.site, ex.doc_id) not in held]
    validation = [ex for ex in examples if (ex.site, ex.doc_id) in held]
    return train, validation
