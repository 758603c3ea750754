"""Partitioners, one per file, registered by name: iid, dirichlet, quantity, site."""

from partitions import dirichlet, iid, quantity, site  # noqa: F401  (registers them)
from partitions.base import PARTITIONERS, Partitioner, parse_partition

__all__ = ["PARTITIONERS", "Partitioner", "parse_partition"]
