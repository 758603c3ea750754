"""Partition specs ('iid', 'site', 'dirichlet:0.5', 'quantity:1') -> a partitioner from the
registry (the partitioners themselves are discovered in the top-level `partitions` package)."""

from __future__ import annotations

from typing import Any

from bench.errors import BenchError
from bench.registry import PARTITIONERS


def parse_partition(spec: str) -> Any:  # a partitions.base.Partitioner
    """'iid', 'site', 'dirichlet:0.5', 'quantity:1' -> a partitioner."""
    name, _, arg = spec.partition(":")
    cls = PARTITIONERS.get(name)
    if cls.takes_alpha and not arg:
        raise BenchError(f"partition {name!r} needs a parameter, e.g. {name}:0.5")
    try:
        alpha = float(arg) if arg else None
    except ValueError:
        raise BenchError(f"partition {spec!r}: {arg!r} is not a number") from None
    return cls(alpha)
