"""Equal tuning for every method: sweep on validation, choose, reuse.

A grid's `tune: {SETTING: [values]}` is swept for every task x method x partition (x DP target)
on the grid's first seed: each point is an ordinary run (its own identity, so the point that
wins *is* that seed's run). The value with the best validation metric is chosen (ties: the
first listed); test scores are never read here. A method entry may carry its own `tune` (a
range centred where that method trains, e.g. a higher lr for adapters), but every method gets
the same settings and the same number of points: the same tuning budget.

Choices travel in a YAML file (`tuned:` in a grid) that records the sweep that made them, so a
grid can reuse validated choices without sweeping again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.config import ExperimentConfig, as_declared
from bench.errors import BenchError
from bench.protocol.grid import Cell
from bench.store import atomic_write_text


@dataclass(frozen=True)
class SweepPoint:
    group: str  # the cell's identity without seed and the tuned settings
    values: tuple[tuple[str, object], ...]  # (setting, value) pairs of this point
    cell: Cell


def group_of(cfg: ExperimentConfig, settings: list[str]) -> str:
    """What a choice is made for: every computed setting except the seed and the tuned ones."""
    keep = {k: v for k, v in cfg.identity_settings().items() if k not in {"seed", *settings}}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:10]


def check_cells(cells: list[Cell], where: str) -> list[Cell]:
    """Every cell's `tune` checked and coerced; equal budgets (settings and point counts) enforced."""
    checked = [dataclasses.replace(c, tune=check_tune(c.tune, where)) for c in cells]
    budgets = {(k, len(v)) for c in checked for k, v in c.tune.items()}
    shapes = {tuple(sorted((k, len(v)) for k, v in c.tune.items())) for c in checked}
    if len(shapes) > 1:
        raise BenchError(
            f"{where}: every method must tune the same settings with the same number of points, found {sorted(budgets)}"
        )
    return checked


def check_tune(tune, where: str) -> dict[str, list]:
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    if not isinstance(tune, dict) or not tune:
        raise BenchError(f"{where}: 'tune' must map settings to lists of values")
    for key, values in tune.items():
        if key not in fields or key == "seed":
            raise BenchError(f"{where}: tune: {key!r} is not a setting that can be tuned")
        if not isinstance(values, list) or not values:
            raise BenchError(f"{where}: tune: {key} needs a non-empty list of values")
    return {key: [as_declared(key, v) for v in values] for key, values in tune.items()}


def tuning_seed(cells: list[Cell]) -> int:
    """The seed the sweep runs on: the grid's `tune_seed`, else its first. Its runs choose the
    values, so they are not reported: the report's means and intervals use the other seeds (role
    `reported`)."""
    chosen = {c.tune_seed for c in cells if c.tune_seed is not None}
    return min(chosen) if chosen else cells[0].config.seed  # cells made by hand: the first one's


def tuning_runs(planned: list[Cell], ran_as: dict[str, Cell]) -> set[str]:
    """The run ids, as run, of the tuned cells on the tuning seed (the sweep's winning points)."""
    swept = [c for c in planned if c.tune]
    if not swept:
        return set()
    seed = tuning_seed(swept)
    return {ran_as[c.run_id].run_id for c in swept if c.config.seed == seed and c.run_id in ran_as}


def sweep_points(cells: list[Cell]) -> list[SweepPoint]:
    """Every point of the sweep: the tuning seed's cells, once per combination of their values."""
    first_seed = tuning_seed(cells)
    points = []
    for cell in (c for c in cells if c.config.seed == first_seed):
        settings = sorted(cell.tune)
        for combo in itertools.product(*(cell.tune[k] for k in settings)):
            cfg = cell.config.with_settings(**dict(zip(settings, combo)))
            points.append(
                SweepPoint(group_of(cell.config, settings), tuple(zip(settings, combo)), Cell(cfg.run_id, cfg))
            )
    return points


def choose(
    points: list[SweepPoint], finals: dict[str, dict], partial: bool = False
) -> tuple[dict[str, dict], list[dict]]:
    """(group -> chosen values, one tuning.csv row per point and setting). A point whose run
    failed or has no validation metric cannot be chosen; a group with none left is an error,
    or, with `partial` (a report on an unfinished sweep), left without a choice. A partial
    group's choice is among the points finished so far."""
    best: dict[str, tuple[float, SweepPoint]] = {}
    for p in points:
        val = (finals.get(p.cell.run_id) or {}).get("val_metric")
        if val is not None and math.isfinite(val) and (p.group not in best or val > best[p.group][0]):  # NaN never wins
            best[p.group] = (val, p)
    rows = []
    for p in points:
        if p.group not in best and partial:
            continue
        if p.group not in best:
            raise BenchError(
                f"tuning: no point of {p.cell.run_id.rsplit('__', 1)[0]} finished with a validation metric"
            )
        cfg = p.cell.config
        final = finals.get(p.cell.run_id) or {}
        for setting, value in p.values:
            rows.append(
                {
                    "task": cfg.task,
                    "method": cfg.method,
                    "layers": cfg.layers or "",
                    "lora_rank": cfg.lora_rank if cfg.method == "lora" else None,
                    "partition": cfg.partition,
                    "epsilon": cfg.dp_epsilon,
                    "setting": setting,
                    "value": value,
                    "val_metric": final.get("val_metric"),
                    "converged": final.get("converged"),
                    "rounds_run": final.get("rounds_run"),
                    "chosen": best[p.group][1] is p,
                    "group": p.group,
                    "run_id": p.cell.run_id,
                }
            )
    return {g: dict(p.values) for g, (_, p) in best.items()}, rows


def apply_choices(
    cells: list[Cell], settings: list[str], choices: dict[str, dict], source: str, partial: bool = False
) -> list[Cell | None]:
    """Each cell with its group's chosen values; a group without a choice is an error naming it
    (with `partial`, its cells come back as None, so the list stays aligned with `cells`). A cell
    that sweeps nothing and whose grid sets every tuned setting itself (`lr: 3e-4` in a method
    entry) keeps its own values: they are the grid's word, not the choices file's."""
    out = []
    for cell in cells:
        if fixed_by_grid(cell, settings):
            out.append(cell)
            continue
        group = group_of(cell.config, settings)
        if group not in choices and partial:
            out.append(None)
            continue
        if group not in choices:  # a cell that sweeps nothing is not swept by --tune either
            fix = (
                "run with --tune"
                if cell.tune
                else f"give its grid entry a 'tune' range or a value for {', '.join(settings)}"
            )
            raise BenchError(f"{source}: no tuned choice for {cell.run_id.rsplit('__', 2)[0]} (group {group}); {fix}")
        cfg = cell.config.with_settings(**choices[group])
        out.append(Cell(cfg.run_id, cfg))
    return out


def fixed_by_grid(cell: Cell, settings: list[str]) -> bool:
    """No `tune` of its own, and every setting in `settings` away from its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
    return not cell.tune and all(getattr(cell.config, k) != defaults[k] for k in settings)


def write_choices(
    path: Path, grid_name: str, tune: dict, choices: dict[str, dict], rows: list[dict], kept: dict | None = None
) -> None:
    """The choices and the sweep that made them (its grid, values, and every point's run id).
    `tune`: the sweep's values, as {method label: {setting: values}}; `kept`: a choices file's
    document whose choices stay (those of methods this sweep did not run), merged in."""
    kept_sweep = (kept or {}).get("sweep") or {}
    chosen = [r for r in rows if r["chosen"]]
    labelled = {
        r["group"]: {
            k: r.get(k)
            for k in ("task", "method", "layers", "lora_rank", "partition", "epsilon", "val_metric")
            if k != "lora_rank" or r.get(k) is not None
        }
        for r in chosen
    }
    entries = {c["group"]: c for c in (kept or {}).get("choices") or []}
    entries.update({g: {"group": g, **labelled[g], "values": v} for g, v in choices.items()})
    doc = {
        "sweep": {
            "grid": grid_name,
            "tune": {**(kept_sweep.get("tune") or {}), **tune},
            "points": sorted({*(kept_sweep.get("points") or []), *(r["run_id"] for r in rows)}),
            "selected_on": "validation metric of the tuning seed",
        },
        "choices": [entries[g] for g in sorted(entries)],
    }
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))


def sweep_label(cfg: ExperimentConfig) -> str:
    """A method entry's name in a choices file: 'layerskip top:2', 'lora r8', 'fedavg'."""
    rank = f" r{cfg.lora_rank}" if cfg.method == "lora" else ""
    return f"{cfg.method} {cfg.layers or ''}".strip() + rank


def swept_values(cells: list[Cell]) -> dict:
    """What a sweep over these cells tries, by method label: recorded with its choices."""
    return {sweep_label(c.config): c.tune for c in cells if c.tune}


def read_choices(path: Path, expected_sweep: dict | None = None) -> tuple[list[str], dict[str, dict]]:
    """(the tuned settings, group -> chosen values) from a choices file. Where the grid still
    lists the values to sweep, every method the file has swept must have tried the grid's values;
    a method the file has never swept (a study added to the grid) has no choices in it yet."""
    return _choices_of(path, read_doc(path), expected_sweep)


def vouched_choices(path: Path, cells: list[Cell], settings: list[str]) -> tuple[dict[str, dict], dict]:
    """(group -> chosen values, the file's document) for the cells whose method the file's sweep
    recorded over the cells' own values: a choice filed under another label (a file from before
    LoRA was named by rank) is left out, to be swept again rather than applied unchecked; a label
    swept over other values is an error (read_choices)."""
    doc = read_doc(path)
    _, choices = _choices_of(path, doc, swept_values(cells))
    recorded = doc["sweep"]["tune"]
    vouched = {group_of(c.config, settings) for c in cells if recorded.get(sweep_label(c.config)) == c.tune}
    return {g: v for g, v in choices.items() if g in vouched}, doc


def _choices_of(path: Path, doc: dict, expected_sweep: dict | None) -> tuple[list[str], dict[str, dict]]:
    try:
        choices = {c["group"]: dict(c["values"]) for c in doc["choices"]}
        recorded = doc["sweep"]["tune"]
        stale = sorted(k for k, v in (expected_sweep or {}).items() if k in recorded and recorded[k] != v)
        if stale:
            raise BenchError(
                f"tuned: {path} was made by a sweep over other values than the grid's tune "
                f"({', '.join(stale)}); run with --tune"
            )
        return sorted({k for v in choices.values() for k in v}), choices
    except (KeyError, TypeError):
        raise BenchError(f"tuned: {path}: not a choices file (expected 'choices' with 'group' and 'values')") from None


def read_doc(path: Path) -> dict:
    if not path.is_file():
        raise BenchError(f"tuned: {path}: no such file (run the grid with --tune to make it)")
    return yaml.safe_load(path.read_text()) or {}
