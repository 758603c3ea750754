"""Task loaders, one module per source, and the common in-memory form."""

from __future__ import annotations

from pathlib import Path

# Importing the loader modules registers them.
from bench.data import conll, i2b2_2010, i2b2_2014, mimic3  # noqa: F401
from bench.data.registry import TASKS, TaskSpec, resolve_data_dir
from bench.data.types import ClsExample, NerExample, TaskData


def load_task(name: str, data_dir: str | Path | None = None, **options) -> TaskData:
    """Load a contract task by name from its release layout (or the synthetic corpus)."""
    spec = TASKS.get(name)
    return spec.load(resolve_data_dir(spec, data_dir), **options)


__all__ = ["TASKS", "TaskSpec", "TaskData", "NerExample", "ClsExample", "load_task"]
