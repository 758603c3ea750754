"""Communication at matched accuracy (the paper's claim): rounds and bytes until a run's
validation metric first reaches a share of centralized's."""

from __future__ import annotations

import math

import numpy as np

MATCHED_SHARE = 0.98  # of centralized's best validation metric


def matched_cost(run: dict, target: float | None) -> tuple[int | None, int | None]:
    """(rounds, bytes up + down) until the validation metric first reaches `target`; None: never."""
    if target is None:
        return None, None
    moved = 0
    for line in run.get("history", []):
        moved += line["bytes_up"] + line["bytes_down"]
        if line.get("val_metric") is not None and line["val_metric"] >= target:
            return line["round"], moved
    return None, None


def matched_columns(rs: list[dict], cen: list[dict] | None) -> dict:
    """Cost to one target per task: MATCHED_SHARE of the mean over centralized's seeds of its best
    validation metric. Rounds and bytes are medians over seeds, a seed that never reached the
    target counting as infinite (so None, shown `never`, when at least half never did); all None
    without a centralized cell (no target: shown `-`, never as a count of seeds that missed it)."""
    target = MATCHED_SHARE * float(np.mean([r["val_metric"] for r in cen])) if cen else None
    if target is None:  # no centralized cell to set a target (a study without one): nothing to count
        return {"target": None, "matched_seeds": None, "matched_rounds": None, "matched_bytes": None}
    matched = [matched_cost(r, target) for r in rs]
    reached = sum(m[0] is not None for m in matched)
    rounds = np.median([math.inf if m[0] is None else m[0] for m in matched])
    moved = np.median([math.inf if m[1] is None else m[1] for m in matched])
    return {
        "target": target,
        "matched_seeds": f"{reached}/{len(rs)}",
        "matched_rounds": float(rounds) if math.isfinite(rounds) else None,
        "matched_bytes": float(moved) if math.isfinite(moved) else None,
    }
