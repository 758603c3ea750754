"""Deterministic document- and patient-level splits that need no seed and no stored list."""

from __future__ import annotations

import hashlib

TEST_FRACTION = 0.2


def stable_fraction(key: str) -> float:
    """A hash of `key` in [0, 1), the same on every machine and Python run."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def split_of(key: str) -> str:
    return "test" if stable_fraction(key) < TEST_FRACTION else "train"
