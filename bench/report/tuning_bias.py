"""Is the tuning seed's run a lucky draw? The run that chose a learning rate won a sweep of noisy
runs, so its score is selected, and the protocol reports the other seeds only (issue 23). This
check measures that selection across a report: per cell, the tuning seed's test metric minus the
mean of the cell's reported seeds, and a t-interval of that difference over cells. The cells
share the tuning seed, so they are not independent replicates: the interval is a screen, not a
test. Cells whose numbers repeat another's exactly (auto:K choosing top:K's blocks) count once."""

from __future__ import annotations

import numpy as np

from bench.report.stats import seed_paired_interval
from bench.report.tables import cell_key

MIN_CELLS = 3  # fewer differences give no interval worth a line


def optimism(runs: list[dict]) -> tuple[list[float], int] | None:
    """(tuning - mean of reported, one per distinct cell; how many cells had a tuning run), or
    None where no cell has both a tuning run and 2 or more reported seeds."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for run in runs:
        if run.get("status") == "ok" and run.get("metric") is not None:
            cells.setdefault(cell_key(run), {}).setdefault(run.get("role", "reported"), []).append(run["metric"])
    distinct = {
        (tuple(c["tuning"]), tuple(sorted(c["reported"]))): c["tuning"][0] - float(np.mean(c["reported"]))
        for c in cells.values()
        if len(c.get("tuning", [])) == 1 and len(c.get("reported", [])) >= 2
    }
    return (list(distinct.values()), len(distinct)) if distinct else None


def check(runs: list[dict]) -> list[str]:
    """One Checks line: how far the tuning seed sits above the reported seeds, over cells."""
    found = optimism(runs)
    if not found or found[1] < MIN_CELLS:
        return []
    diffs, n = found
    d = seed_paired_interval(diffs)
    above = sum(x > 0 for x in diffs)
    verdict = (
        "above, as the selection that keeps it out of the table would make it (a seed favourable on its own would too)"
        if d["verdict"] and d["lo"] > 0
        else "no lead established"
    )
    return [
        f"- The tuning seed's run (the one that chose the lr) scored {100 * d['diff']:+.1f} points against the "
        f"mean of its cell's reported seeds, 95% interval over {n} distinct cells [{100 * d['lo']:+.1f}, "
        f"{100 * d['hi']:+.1f}] ({above} of {n} above; the cells share that seed, so the interval is narrower "
        f"than independent cells would give): {verdict}."
    ]
