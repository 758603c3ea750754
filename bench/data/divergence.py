"""How far client label distributions are from the global one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon


def label_matrix(labels: Sequence[str], parts: list[np.ndarray]) -> tuple[list[str], np.ndarray]:
    """(label names, clients x labels count matrix)."""
    names = sorted(set(labels))
    col = {n: i for i, n in enumerate(names)}
    arr = np.asarray(labels)
    counts = np.zeros((len(parts), len(names)), dtype=np.int64)
    for c, idx in enumerate(parts):
        for label in arr[idx]:
            counts[c, col[label]] += 1
    return names, counts


def client_divergences(counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of each client from the pooled distribution."""
    total = counts.sum(axis=0) / counts.sum()
    return np.array([jensenshannon(row / row.sum(), total, base=2) ** 2 if row.sum() else 0.0 for row in counts])
