"""A study re-run at a longer early-stopping patience against its stored shorter-patience
twins (`python -m bench.compare.patience_check --from-patience P`): which stored run is each
reported run's twin, and whether the re-run repeated the twin's rounds bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import SETTING_DEFAULTS
from bench.errors import BenchError
from bench.report.tables import cell_key

# what may differ between a run and its shorter-patience twin: the stopping rule, and what the
# re-run study may have changed (its sweep's lr; layerskip's frozen_mode, adopted with it)
RETUNED = {"patience", "rounds", "lr", "frozen_mode"}
ALSO_CHANGED = ("lr", "frozen_mode")


def also_changed(short: dict, long: dict) -> dict[str, tuple]:
    """What the re-run changed besides the stopping rule: setting -> (twin's, re-run's); a stored
    config that predates a setting (frozen_mode) has its default."""
    before, after = ({**SETTING_DEFAULTS, **run["config"]} for run in (short, long))
    return {k: (before[k], after[k]) for k in ALSO_CHANGED if before[k] != after[k]}


def _twin_key(final: dict) -> tuple:
    cfg = {k: v for k, v in final["config"].items() if k not in RETUNED}
    return cell_key({"config": cfg}), cfg.get("seed")


def shorter_twins(reported: list[dict], stored: list[dict], patience: int) -> list[tuple[dict, dict]]:
    """(shorter, reported) pairs: each reported final with the stored final of its cell and seed
    at `patience` (any round cap; the same lr where one was stored, else the only one there is)."""
    by_key: dict[tuple, list[dict]] = {}
    for final in stored:
        if final["config"].get("patience") == patience:
            by_key.setdefault(_twin_key(final), []).append(final)
    pairs = []
    for long in reported:
        found = by_key.get(_twin_key(long), [])
        same_lr = [f for f in found if f["config"].get("lr") == long["config"].get("lr")]
        if len(same_lr) == 1 or len(found) == 1:
            pairs.append(((same_lr or found)[0], long))
        elif found:
            ids = ", ".join(sorted(f["run_id"] for f in found))
            raise BenchError(
                f"{long['run_id']}: {len(found)} stored runs at patience {patience} could be its twin ({ids})"
            )
    return pairs


def same_start(short: Path, long: Path) -> bool:
    """Whether the longer run's first rounds are the shorter run's, bit for bit (validation metric
    and training loss): a run is a function of its seed, whenever and wherever it ran."""

    def rounds(folder: Path) -> list[tuple]:
        lines = (folder / "rounds.jsonl").read_text().splitlines()
        return [(r["round"], r["val_metric"], r["train_loss"]) for r in map(json.loads, lines)]

    before = rounds(short)
    return bool(before) and rounds(long)[: len(before)] == before


def reproduced_note(pairs: list[tuple[dict, dict]], runs: Path) -> str:
    """How many re-runs repeat their twin's rounds up to the shorter run's last round: those with
    the twin's settings (they must), and those the re-run changed (lr, frozen_mode), which may
    too (a cached layerskip run's frozen part ran in eval mode under either frozen_mode). A run
    continued from its twin's checkpoint (bench.protocol.extend) copies those rounds: counted apart."""

    continued = [b["run_id"] for a, b in pairs if (b.get("extended_from") or {}).get("run_id") == a["run_id"]]
    pairs = [(a, b) for a, b in pairs if b["run_id"] not in continued]
    alike = [(a, b) for a, b in pairs if not also_changed(a, b)]
    other = [(a, b) for a, b in pairs if also_changed(a, b)]
    same = {b["run_id"] for a, b in pairs if same_start(runs / a["run_id"], runs / b["run_id"])}
    differ = sorted({b["run_id"] for _, b in alike} - same)
    parts = [
        f"Reproduced: {sum(b['run_id'] in same for _, b in alike)} of {len(alike)} re-runs with their twin's lr and"
        " frozen_mode repeat its rounds bit for bit (validation F1, training loss) up to its last round"
        + (f" (not: {', '.join(differ)})" if differ else "")
    ]
    if other:
        parts.append(f"of {len(other)} with other settings, {sum(b['run_id'] in same for _, b in other)} do too")
    if continued:
        parts.append(f"{len(continued)} continued from their twin's checkpoint (not recomputed)")
    return "; ".join(parts) + "."
