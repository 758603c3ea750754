"""What a partitioner is, and the checks and helpers they share.

A partitioner maps training-example indices to clients. It sees one label and one site per
example, never text, and owns a `numpy.random.default_rng(seed)`: same inputs and seed, same
partition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from bench.errors import BenchError
from bench.registry import PARTITIONERS

MIN_CLIENT_SIZE = 2  # every client needs a local training set and a held-out example
MAX_TRIES = 100  # resampling bound for draws that leave a client too small


class Partitioner(ABC):
    """`split(labels, sites, n_clients, seed)` -> one sorted index array per client."""

    takes_alpha = False

    def __init__(self, alpha: float | None = None):
        if self.takes_alpha:
            _check_alpha(alpha)
        elif alpha is not None:
            raise BenchError(f"partition {self.name!r} takes no parameter")
        self.alpha = alpha

    name = ""

    def split(self, labels: Sequence[str], sites: Sequence[str], n_clients: int, seed: int) -> list[np.ndarray]:
        _check_clients(n_clients, len(labels))
        parts = self._split(np.asarray(labels), np.asarray(sites), n_clients, np.random.default_rng(seed))
        return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]

    @abstractmethod
    def _split(
        self, labels: np.ndarray, sites: np.ndarray, n_clients: int, rng: np.random.Generator
    ) -> list[np.ndarray]: ...


register = PARTITIONERS.register_class


def _check_alpha(alpha: float | None) -> None:
    if alpha is None or not np.isfinite(alpha) or alpha <= 0:
        raise BenchError(f"alpha must be a positive number, not {alpha!r}")


def _check_clients(n_clients: int, n_examples: int) -> None:
    if n_clients < 1:
        raise BenchError(f"--clients must be at least 1, not {n_clients}")
    if n_clients * MIN_CLIENT_SIZE > n_examples:
        raise BenchError(f"{n_examples} training examples cannot give {n_clients} clients {MIN_CLIENT_SIZE} each")


def iid_split(indices: np.ndarray, n_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, then cut into sizes that differ by at most one."""
    return np.array_split(rng.permutation(indices), n_clients)


def resample(draw, n_clients: int, what: str):
    """Call draw() until every client has MIN_CLIENT_SIZE examples, at most MAX_TRIES times."""
    for _ in range(MAX_TRIES):
        parts = draw()
        if min(len(p) for p in parts) >= MIN_CLIENT_SIZE:
            return parts
    raise BenchError(
        f"{what}: no draw in {MAX_TRIES} gave all {n_clients} clients at least {MIN_CLIENT_SIZE} examples; "
        "use a larger alpha or fewer clients"
    )
