"""One step beyond a range edge: does a tuned choice at the edge of its sweep hold?

Equal tuning gives every method the same number of points, so a method whose best value lies
outside its range is under-tuned against its peers, and its chosen value sits at an edge
(bench.report.audit flags it). The probe runs the grid's tuning seed once more with that setting one
step further out (the range's own ratio, snapped to the range's ladder: 1-3-10 stays 1-3-10) and
compares the two on validation. It never changes a choice: the budget stays equal and the
headline numbers stay those of the declared sweep; the report says whether each edge choice held.
"""

from __future__ import annotations

import math

from bench.protocol.grid import Cell
from bench.protocol.tuning import SweepPoint

PROBE_COLUMNS = [
    "task",
    "method",
    "layers",
    "partition",
    "epsilon",
    "setting",
    "chosen",
    "chosen_val_metric",
    "probe",
    "probe_val_metric",
    "verdict",
    "group",
    "run_id",
]


def _mantissa(value: float) -> float:
    return float(f"{value:.0e}".split("e")[0])


def _snapped(raw: float, ladder: set[float]) -> float:
    """The value of the form m x 10^k (m from the range's own mantissas) nearest to `raw` in log."""
    exponent = math.floor(math.log10(raw))
    candidates = [m * 10.0**e for m in ladder for e in (exponent - 1, exponent, exponent + 1)]
    return float(f"{min(candidates, key=lambda c: abs(math.log(c / raw))):.0e}")


def beyond(tried: list, chosen) -> int | float | None:
    """The next value past `chosen` when it is the smallest or largest of `tried` (None when it
    is inside the range, or nothing lies past it: fewer than 3 values, non-numbers, or a step that
    would cross zero). Positive ranges step by their geometric ratio, others arithmetically."""
    values = sorted(tried)
    if len(values) < 3 or chosen not in (values[0], values[-1]) or not all(isinstance(v, int | float) for v in values):
        return None
    lower = chosen == values[0]
    if values[0] > 0:
        ratio = (values[-1] / values[0]) ** (1 / (len(values) - 1))
        raw = chosen / ratio if lower else chosen * ratio
        if all(isinstance(v, int) for v in values):
            step = max(1, round(raw))
            return step if step not in values else None
        return _snapped(raw, {_mantissa(v) for v in values})
    step = (values[-1] - values[0]) / (len(values) - 1)
    raw = chosen - step if lower else chosen + step
    return None if values[0] >= 0 > raw else type(values[0])(raw)


def probes(points: list[SweepPoint], rows: list[dict]) -> list[tuple[dict, Cell]]:
    """(the chosen tuning.csv row, the probe's cell) for every group and setting whose choice sits
    at an edge of points that did not all tie: the chosen point's config with that one setting
    moved one step out."""
    chosen_point = {p.cell.run_id: p for p in points}
    found = []
    for row in (r for r in rows if r["chosen"]):
        mine = [r for r in rows if r["group"] == row["group"] and r["setting"] == row["setting"]]
        if len({r["val_metric"] for r in mine}) == 1:
            continue  # every point tied: a tie, reported as such, not an edge
        value = beyond(list(dict.fromkeys(r["value"] for r in mine)), row["value"])
        if value is None:
            continue
        cfg = chosen_point[row["run_id"]].cell.config.with_settings(**{row["setting"]: value})
        found.append((row, Cell(cfg.run_id, cfg)))
    return found


def verdict(chosen_val: float | None, probe_val: float | None) -> str:
    if probe_val is None or chosen_val is None:
        return "not run"
    return "beyond wins" if probe_val > chosen_val else "choice holds"


def probe_rows(found: list[tuple[dict, Cell]], finals: dict[str, dict]) -> list[dict]:
    """edge_probes.csv: one row per probe, with its validation metric where it has run."""
    rows = []
    for row, cell in found:
        probe_val = (finals.get(cell.run_id) or {}).get("val_metric")
        rows.append(
            {
                **{k: row[k] for k in ("task", "method", "layers", "partition", "epsilon", "setting", "group")},
                "chosen": row["value"],
                "chosen_val_metric": row["val_metric"],
                "probe": getattr(cell.config, row["setting"]),
                "probe_val_metric": probe_val,
                "verdict": verdict(row["val_metric"], probe_val),
                "run_id": cell.run_id,
            }
        )
    return rows
