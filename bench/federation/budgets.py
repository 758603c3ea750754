"""Per-client layer budgets: how many of the server's trainable blocks each client trains.

`--client-budgets by-size` gives each client a share of the blocks proportional to its data
(the largest client trains all, none fewer than one); `--client-budgets FILE` reads a JSON or
YAML mapping {client id: number of blocks}. A client trains the top blocks of its budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from bench.errors import BenchError

Budget = int | float  # int: a number of blocks; float: a share of the server's blocks


def client_budgets(spec: str | None, sizes: list[int]) -> list[Budget | None]:
    if spec is None:
        return [None] * len(sizes)
    if spec == "by-size":
        largest = max(sizes)
        return [size / largest for size in sizes]
    path = Path(spec)
    if not path.is_file():
        raise BenchError(f"--client-budgets {spec}: not 'by-size' and no such file")
    try:
        raw = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError):
        raise BenchError(f"{path}: not valid JSON/YAML") from None
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: expected a mapping of client id to number of blocks")
    budgets: list[Budget | None] = [None] * len(sizes)
    for key, value in raw.items():
        try:
            client, blocks = int(key), int(value)
        except (TypeError, ValueError):
            raise BenchError(f"{path}: entry {key!r}: {value!r} is not a client id and a number of blocks") from None
        if not 0 <= client < len(sizes) or blocks < 1:
            raise BenchError(f"{path}: entry {key!r}: client must be in [0, {len(sizes)}) and blocks >= 1")
        budgets[client] = blocks
    return budgets


def blocks_for(budget: Budget | None, blocks: list[int]) -> list[int]:
    """The top blocks a client with this budget trains, out of the server's `blocks`."""
    if budget is None:
        return blocks
    count = max(1, math.ceil(budget * len(blocks) - 1e-9)) if isinstance(budget, float) else budget
    return blocks[-min(count, len(blocks)) :]
