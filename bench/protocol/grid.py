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
    tune: {lr: [1.0e-4, 3.0e-4, 1.0e-3]}   # optional: swept on the tuning seed (bench.protocol.tuning);
                                   # a method entry may carry its own, with as many points
    tune_seed: 0                   # optional: the seed the sweep runs on (default: the first of seeds);
                                   # its runs choose, so the report uses the other seeds
    tuned: tuned/NAME.yaml         # optional: choices made by an earlier sweep, used as they are

Unknown keys and bad values are errors naming the key. Methods that pool all data
(`centralized`, `partition_free`) do not depend on the partition, so they run once, under the
first partition; any other two cells with the same identity are an error.

A grid may instead hold `studies:` (name -> a grid's keys, each over the top-level ones), each a
study with a purpose (`feeds`: the table or figure it makes); the grid's cells are their union,
a cell shared by two studies counted and run once.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.config import ExperimentConfig
from bench.data import TASKS
from bench.data.partition_spec import parse_partition
from bench.errors import BenchError
from bench.registry import METHODS

GRID_DIR = Path(__file__).parent.parent / "grids"
TOP_KEYS = {
    "name",
    "description",
    "defaults",
    "tasks",
    "methods",
    "partitions",
    "seeds",
    "dp_epsilons",
    "overrides",
    "tune",
    "tune_seed",
    "tuned",
    "studies",
}
STUDY_KEYS = {
    "description",
    "feeds",
    "defaults",
    "tasks",
    "methods",
    "partitions",
    "seeds",
    "dp_epsilons",
    "overrides",
    "tune",
    "tune_seed",
}


@dataclass(frozen=True)
class Cell:
    run_id: str
    config: ExperimentConfig
    tune: dict | None = None  # the settings to sweep for this cell (its method entry's, else the grid's)
    tune_seed: int | None = None  # the grid's `tune_seed`, else the first of its seeds as written


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


def studies(grid: dict) -> dict[str, dict]:
    """The grid's studies, each a complete grid: its own keys over the grid's (defaults merged).
    A grid without `studies` is one study, named after the grid."""
    if "studies" not in grid:
        return {grid.get("name") or Path(grid["_path"]).stem: grid}
    where = grid["_path"]
    _require(isinstance(grid["studies"], dict) and grid["studies"], where, "'studies' must map study names to grids")
    base = {k: v for k, v in grid.items() if k != "studies"}
    out = {}
    for name, study in grid["studies"].items():
        _require(isinstance(study, dict), where, f"study {name!r} must be a mapping")
        bad = sorted(set(study) - STUDY_KEYS)
        _require(
            not bad,
            where,
            f"unknown key(s) in study {name!r}: {', '.join(bad)} (valid: {', '.join(sorted(STUDY_KEYS))})",
        )
        out[name] = {
            **base,
            **study,
            "defaults": {**(base.get("defaults") or {}), **(study.get("defaults") or {})},
            "_path": f"{where} (study {name})",
        }
    return out


def expand_studies(grid: dict) -> dict[str, list[Cell]]:
    """Each study's cells; a cell two studies share is the same Cell (same identity), and must be
    tuned over the same values in both (else which sweep chose its setting would be ambiguous)."""
    found = {name: _expand_one(study) for name, study in studies(grid).items()}
    seen: dict[str, tuple[str, dict | None]] = {}
    for name, cells in found.items():
        for cell in cells:
            first, tune = seen.setdefault(cell.run_id, (name, cell.tune))
            _require(
                tune == cell.tune,
                grid["_path"],
                f"studies {first} and {name} share a cell ({cell.run_id.rsplit('__', 1)[0]}) but tune it over "
                f"different values ({tune} and {cell.tune})",
            )
    return found


def expand(grid: dict) -> list[Cell]:
    """Every distinct cell of the grid, validated (unknown tasks, methods, partitions and keys are
    errors); with studies, their union, a cell shared by studies once."""
    distinct: dict[str, Cell] = {}
    for cells in expand_studies(grid).values():
        for cell in cells:
            distinct.setdefault(cell.run_id, cell)
    return list(distinct.values())


def _expand_one(grid: dict) -> list[Cell]:
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
        bad = sorted(set(m) - fields - {"tune"})
        _require(not bad, where, f"unknown key(s) in method {m['method']!r}: {', '.join(bad)}")
        METHODS.get(m["method"])
        methods.append(m)
    overrides = grid.get("overrides") or []
    for o in overrides:
        _require(
            isinstance(o, dict) and set(o) == {"match", "set"}, where, "each override needs exactly 'match' and 'set'"
        )
        bad = sorted((set(o["match"]) | set(o["set"])) - fields)
        _require(not bad, where, f"unknown key(s) in override: {', '.join(bad)}")
    seeds, tune_seed = grid.get("seeds") or [0], grid.get("tune_seed")
    _require(tune_seed is None or tune_seed in seeds, where, f"tune_seed {tune_seed!r} is not one of seeds {seeds}")
    tune_seed = seeds[0] if tune_seed is None else tune_seed  # the first as written, not the smallest
    cells, seen = [], {}
    for task, m, partition, seed, eps in itertools.product(
        grid["tasks"], methods, grid["partitions"], seeds, grid.get("dp_epsilons") or [None]
    ):
        shared = METHODS.get(m["method"]).partition_free and partition != grid["partitions"][0]
        if shared:  # the same run as under the first partition: counted once, by design
            continue
        values = {
            **defaults,
            "task": task,
            **{k: v for k, v in m.items() if k != "tune"},
            "partition": partition,
            "seed": seed,
            "dp_epsilon": eps,
        }
        for o in overrides:
            if all(values.get(k) == v for k, v in o["match"].items()):
                values.update(o["set"])
        cfg = ExperimentConfig.from_dict(values)
        where_cell = f"{task} / {m} / {partition} / seed {seed} / epsilon {eps}"
        _require(
            cfg.run_id not in seen,
            where,
            f"two cells are the same run {cfg.run_id}: {seen.get(cfg.run_id)} and {where_cell}",
        )
        seen[cfg.run_id] = where_cell
        cells.append(Cell(cfg.run_id, cfg, m.get("tune", grid.get("tune")), tune_seed))
    return cells
