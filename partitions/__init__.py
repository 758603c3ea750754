"""Partitioners, one file each, registered by name (iid, dirichlet, quantity, site). Every module in
this folder is imported (and so registered) here, when bench's registry first looks one up:
adding a partitioner is adding a file."""

import importlib
import pkgutil

from bench.data.partition_spec import parse_partition
from bench.registry import PARTITIONERS
from partitions.base import Partitioner

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "__main__"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PARTITIONERS", "Partitioner", "parse_partition"]
