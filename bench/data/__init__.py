"""Task loaders, one module per source, and the common in-memory form."""

from __future__ import annotations

import inspect
from pathlib import Path

# Importing the loader modules registers them.
from bench.data import conll, hf, i2b2_2010, i2b2_2014, medquad, mimic3, ncbi_disease  # noqa: F401
from bench.data.registry import TASKS, TaskSpec, resolve_data_dir
from bench.data.splitting import carve_validation
from bench.data.types import ClsExample, NerExample, TaskData
from bench.errors import BenchError

SPLITS = ("train", "validation", "test")


def load_task(name: str, data_dir: str | Path | None = None, **options) -> TaskData:
    """Load a contract task by name from its release layout (or the shipped or synthetic corpus).

    Every task has the three splits: a loader whose release ships no validation set gets one
    carved from its training documents here, the same for every run."""
    spec = TASKS.get(name)
    taken = inspect.signature(spec.load).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in taken.values())
    if foreign := [] if open_ended else ["--" + k.replace("_", "-") for k in options if k not in taken]:
        raise BenchError(f"{', '.join(foreign)} does not apply to task {name} (its loader takes no such option)")
    data = spec.load(resolve_data_dir(spec, data_dir), **options)
    if "validation" not in data.splits:
        data.splits["train"], data.splits["validation"] = carve_validation(data.splits["train"])
        data.carved_validation = True
    data.splits = {s: data.splits[s] for s in SPLITS}
    return data


__all__ = ["TASKS", "TaskSpec", "TaskData", "NerExample", "ClsExample", "load_task"]
