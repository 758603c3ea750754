"""Communication at matched accuracy (the paper's claim): rounds and bytes until a run's
validation metric first reaches a share of centralized's."""

from __future__ import annotations

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
    """Cost to MATCHED_SHARE of centralized's validation metric on the same seed (else its mean)."""
    cen_val = {r["config"]["seed"]: r for r in cen} if cen else {}
    cen_mean = float(np.mean([r["val_metric"] for r in cen])) if cen else None
    matched = []
    for r in rs:
        best = cen_val[r["config"]["seed"]]["val_metric"] if r["config"]["seed"] in cen_val else cen_mean
        matched.append(matched_cost(r, MATCHED_SHARE * best if best is not None else None))
    reached = [m for m in matched if m[0] is not None]
    return {
        "matched_seeds": len(reached),
        "matched_rounds": float(np.mean([m[0] for m in reached])) if reached else None,
        "matched_bytes": float(np.mean([m[1] for m in reached])) if reached else None,
    }
