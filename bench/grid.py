"""Grid files: tasks x methods x partitions x seeds (x DP levels), shared defaults, overrides.

    name: quick
    defaults: {model: minilm, clients: 4, rounds: 3}
    tasks: [i2b2-2010, mimic-mortality]
    methods: [{method: fedavg}, {method: layerskip, layers: "top:2"}]
    partitions: [iid, "dirichlet:0.5"]
    seeds: [0]
    dp_epsilons: [null]            # optional; null = no DP
    overrides:                     # optional; later entries win
      - match: {task: mimic-mortality}
        set: {max_length: 96}

Unknown keys and bad values are errors naming the key. Methods that pool all data
(`centralized`) do not depend on the partition, so they run once, under the first partition.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from baselines import METHODS
from bench.config import ExperimentConfig
from bench.data import TASKS
from bench.errors import BenchError
from partitions import parse_partition

GRID_DIR = Path(__file__).parent / "grids"
TOP_KEYS = {"name", "description", "defaults", "tasks", "methods", "partitions", "seeds", "dp_epsilons", "overrides"}
PARTITION_FREE = {"centralized"}


@dataclass(frozen=True)
class Cell:
    run_id: str
    config: ExperimentConfig


def run_id(cfg: ExperimentConfig) -> str:
    parts = [cfg.task, cfg.method + (f"-{cfg.layers}" if cfg.layers else ""), cfg.partition, f"c{cfg.clients}", f"s{cfg.seed}"]
    if cfg.dp_epsilon is not None:
        parts.append(f"eps{cfg.dp_epsilon:g}")
    return re.sub(r"[^A-Za-z0-9._-]", "-", "__".join(parts))


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise BenchError(f"{where}: {message}")


def load_grid(spec: str) -> tuple[str, dict]:
    """A grid by name (bench/grids/NAME.yaml) or path; returns (name, parsed mapping)."""
    path = Path(spec) if spec.endswith((".yaml", ".yml")) else GRID_DIR / f"{spec}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in GRID_DIR.glob("*.yaml")))
        raise BenchError(f"unknown grid {spec!r}: no file {path} (built-in grids: {known})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise BenchError(f"{path}{f':{line + 1}' if line is not None else ''}: not valid YAML") from None
    _require(isinstance(raw, dict), str(path), "a grid file is a mapping")
    unknown = sorted(set(raw) - TOP_KEYS)
    _require(not unknown, str(path), f"unknown key(s) {', '.join(unknown)} (valid: {', '.join(sorted(TOP_KEYS))})")
    return raw.get("name", path.stem), {**raw, "_path": str(path)}


def expand(grid: dict) -> list[Cell]:
    """Every cell of the grid, validated (unknown tasks, methods, partitions and keys are errors)."""
    where = grid["_path"]
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    defaults = grid.get("defaults") or {}
    for key in ("tasks", "methods", "partitions"):
        _require(isinstance(grid.get(key), list) and grid[key], where, f"'{key}' must be a non-empty list")
    bad = sorted(set(defaults) - fields)
    _require(not bad, where, f"unknown key(s) in defaults: {', '.join(bad)}")
    for task in grid["tasks"]:
        TASKS.get(task)
    for p in grid["partitions"]:
        parse_partition(p)
    methods = []
    for m in grid["methods"]:
        m = {"method": m} if isinstance(m, str) else m
        _require(isinstance(m, dict) and "method" in m, where, f"a methods entry needs 'method': {m!r}")
        bad = sorted(set(m) - fields)
        _require(not bad, where, f"unknown key(s) in method {m['method']!r}: {', '.join(bad)}")
        METHODS.get(m["method"])
        methods.append(m)
    overrides = grid.get("overrides") or []
    for o in overrides:
        _require(isinstance(o, dict) and set(o) == {"match", "set"}, where, "each override needs exactly 'match' and 'set'")
        bad = sorted((set(o["match"]) | set(o["set"])) - fields)
        _require(not bad, where, f"unknown key(s) in override: {', '.join(bad)}")
    cells, seen = [], set()
    for task, m, partition, seed, eps in itertools.product(
        grid["tasks"], methods, grid["partitions"], grid.get("seeds") or [0], grid.get("dp_epsilons") or [None]
    ):
        if m["method"] in PARTITION_FREE:
            partition = grid["partitions"][0]
        values = {**defaults, "task": task, **m, "partition": partition, "seed": seed, "dp_epsilon": eps}
        for o in overrides:
            if all(values.get(k) == v for k, v in o["match"].items()):
                values.update(o["set"])
        cfg = ExperimentConfig.from_dict(values)
        rid = run_id(cfg)
        if rid not in seen:
            seen.add(rid)
            cells.append(Cell(rid, cfg))
    return cells
