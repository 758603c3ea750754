"""Raising a grid's round cap or early-stopping patience without recomputing what is known.

A run's rounds do not depend on its cap: clients, seeds and learning-rate schedules come from
(seed, client, round), and early stopping looks only at the history so far. Nor do they depend
on the patience until it fires, and a longer patience fires at the same round or later, never
earlier. So when a cell asks for more rounds or more patience than a stored run of the very
same cell had:
- a stored run whose history has stalled under this cell's patience (with early stopping on)
  would stop at the same round: its result is this cell's result, taken as is;
- otherwise its checkpoint (the state after its last round) is where this cell's run would
  stand after that round: the run continues from it, as `--resume` continues an interrupted one.
Only DP calibrates to the cap (the noise for the planned number of steps), so private runs never
extend. The taken-over `final.json` names its source under `extended_from`; a result taken as
is keeps its source's checkpoint, so a later, longer patience can still continue it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.config import ExperimentConfig, first_difference
from bench.engine.convergence import stalled
from bench.store import atomic_write_json, read_json

NOTE = "extended_from.json"  # in an extended run's folder: the run it was taken over from


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stalled_history(folder: Path, cfg: ExperimentConfig) -> bool:

    lines = (folder / "rounds.jsonl").read_text().splitlines() if (folder / "rounds.jsonl").is_file() else []
    start = (_json(folder / "final.json") or {}).get("untrained_val_metric")
    return stalled([json.loads(line)["val_metric"] for line in lines], cfg.patience, cfg.min_delta, start)


def predecessor(cfg: ExperimentConfig, runs: Path) -> tuple[Path, bool] | None:
    """(folder, whether its result stands as is) of the finished run of this cell under the
    highest lower round cap and patience (neither above this cell's) that can be taken over, or None."""
    if cfg.private:
        return None
    found = []
    for stored in runs.glob("*/config.json"):
        then = _json(stored) or {}
        rounds, patience = then.get("rounds"), then.get("patience")
        if (
            not isinstance(rounds, int)
            or not isinstance(patience, int)
            or rounds > cfg.rounds
            or patience > cfg.patience
        ):
            continue
        if (rounds, patience) == (cfg.rounds, cfg.patience) or first_difference(
            then, cfg.with_settings(rounds=rounds, patience=patience)
        ):
            continue
        final = _json(stored.parent / "final.json") or {}
        if final.get("status") != "ok":
            continue  # unfinished (perhaps running now), failed or diverged: nothing to take over
        as_is = bool(cfg.early_stop and _stalled_history(stored.parent, cfg))
        if as_is or (stored.parent / "checkpoint.pt").is_file():
            found.append((rounds, patience, stored.parent, as_is))
    if not found:
        return None
    *_, folder, as_is = max(found, key=lambda f: f[:2])
    return folder, as_is


def stored_progress(cfg: ExperimentConfig, runs: Path) -> tuple[dict | None, int]:
    """What a stored run under a lower cap or patience already settles for this cell: its
    final.json where it stands as is (else None), and the rounds a continuation starts from (else 0)."""
    found = predecessor(cfg, runs)
    if found is None:
        return None, 0
    folder, as_is = found
    final = _json(folder / "final.json") or {}
    return (final, 0) if as_is else (None, int(final.get("rounds_run", 0)))


def take_over(source: Path, folder: Path, cfg: ExperimentConfig, as_is: bool) -> None:
    """Fill `folder` (this cell's, empty but for its config) from `source`: the whole result when
    it stands as is, else the history and checkpoint to continue from. The source is noted in
    the folder at once, so a continuation interrupted and resumed still names it."""
    result = ["final.json", "test_items.json", "test_groups.json"]  # test_groups: what the report's bootstrap resamples
    names = ["partition.json", "rounds.jsonl", "checkpoint.pt"] + (result if as_is else [])
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    then = _json(source / "config.json") or {}
    note = {"run_id": source.name, "rounds": then.get("rounds")}
    if then.get("patience") != cfg.patience:
        note["patience"] = then.get("patience")
    atomic_write_json(folder / NOTE, note)
    if as_is:
        final = read_json(folder / "final.json")
        final.update(
            config={**final["config"], "rounds": cfg.rounds, "patience": cfg.patience},
            extended_from=note,
            stopped_early=True,
            converged=True,
        )  # it stalls under this cap and patience too
        atomic_write_json(folder / "final.json", final)


def mark(folder: Path) -> None:
    """Copy the folder's note of the run it was extended from (if any) into its final.json."""
    note = _json(folder / NOTE)
    if note is not None:
        final = read_json(folder / "final.json")
        atomic_write_json(folder / "final.json", {**final, "extended_from": note})
