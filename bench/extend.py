"""Raising a grid's round cap without recomputing what is already known.

A run's rounds do not depend on its cap: clients, seeds and learning-rate schedules come from
(seed, client, round), and early stopping looks only at the history so far. So when a cell asks
for more rounds than a stored run of the very same cell had:
- a stored run that converged with early stopping on would stop at the same round under any
  higher cap: its result is this cell's result, taken as is;
- otherwise its checkpoint (the state after its last round) is where this cell's run would
  stand after that round: the run continues from it, as `--resume` continues an interrupted one.
Only DP calibrates to the cap (the noise for the planned number of steps), so private runs never
extend. The taken-over `final.json` names its source under `extended_from`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.config import ExperimentConfig, first_difference
from bench.store import atomic_write_json

NOTE = "extended_from.json"  # in an extended run's folder: the run it was taken over from


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def predecessor(cfg: ExperimentConfig, runs: Path) -> tuple[Path, bool] | None:
    """(folder, whether its result stands as is) of the finished run of this cell under the
    highest lower round cap that can be taken over, or None."""
    if cfg.private:
        return None
    found = []
    for stored in runs.glob("*/config.json"):
        then = _json(stored)
        rounds = (then or {}).get("rounds")
        if not isinstance(rounds, int) or rounds >= cfg.rounds or first_difference(then, cfg.with_settings(rounds=rounds)):
            continue
        final = _json(stored.parent / "final.json") or {}
        if final.get("status") != "ok":
            continue  # unfinished (perhaps running now), failed or diverged: nothing to take over
        as_is = bool(cfg.early_stop and final.get("converged"))
        if as_is or (stored.parent / "checkpoint.pt").is_file():
            found.append((rounds, stored.parent, as_is))
    if not found:
        return None
    _, folder, as_is = max(found, key=lambda f: f[0])
    return folder, as_is


def take_over(source: Path, folder: Path, cfg: ExperimentConfig, as_is: bool) -> None:
    """Fill `folder` (this cell's, empty but for its config) from `source`: the whole result when
    it stands as is, else the history and checkpoint to continue from. The source is noted in
    the folder at once, so a continuation interrupted and resumed still names it."""
    names = ["partition.json", "rounds.jsonl"] + (["final.json", "test_items.json"] if as_is else ["checkpoint.pt"])
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    note = {"run_id": source.name, "rounds": (_json(source / "config.json") or {}).get("rounds")}
    atomic_write_json(folder / NOTE, note)
    if as_is:
        final = json.loads((folder / "final.json").read_text())
        final.update(config={**final["config"], "rounds": cfg.rounds}, extended_from=note,
                     stopped_early=True)  # it converged before this cap too  # fmt: skip
        atomic_write_json(folder / "final.json", final)


def mark(folder: Path) -> None:
    """Copy the folder's note of the run it was extended from (if any) into its final.json."""
    note = _json(folder / NOTE)
    if note is not None:
        final = json.loads((folder / "final.json").read_text())
        atomic_write_json(folder / "final.json", {**final, "extended_from": note})
