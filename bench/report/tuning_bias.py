"""Is the tuning seed's run a lucky draw? The run that chose a learning rate won a sweep of noisy
runs, so its score is selected, and the protocol reports the other seeds only (issue 23). This
check measures the tuning seed's lead across a report: per cell, its test metric minus the mean
of the cell's reported seeds, with a t-interval over cells, overall and per partition. The cells
share the tuning seed (and, under a seeded partition, its draw of the clients), so they are not
independent replicates: the interval is a screen, not a test, and a lead confined to one
partition points at that partition's seeds rather than at selection. Cells whose numbers repeat
another's exactly (auto:K choosing top:K's blocks) count once."""

from __future__ import annotations

import numpy as np

from bench.report.stats import seed_paired_interval
from bench.report.tables import cell_key

MIN_CELLS = 3  # fewer differences give no interval worth a line


def optimism(runs: list[dict]) -> list[tuple[str, float]]:
    """(partition, tuning - mean of reported) for each distinct cell with a tuning run and 2 or
    more reported seeds."""
    cells: dict[tuple, dict] = {}
    for run in runs:
        if run.get("status") == "ok" and run.get("metric") is not None:
            cell = cells.setdefault(cell_key(run), {"partition": run["config"].get("partition", "iid")})
            cell.setdefault(run.get("role", "reported"), []).append(run["metric"])
    distinct = {
        (tuple(c["tuning"]), tuple(sorted(c["reported"]))): (c["partition"], c["tuning"][0] - np.mean(c["reported"]))
        for c in cells.values()
        if len(c.get("tuning", [])) == 1 and len(c.get("reported", [])) >= 2
    }
    return [(partition, float(lead)) for partition, lead in distinct.values()]


def _interval(leads: list[float], d: dict | None = None) -> str:
    """The mean lead with its t-interval (`d`, when the caller has it) and how many cells lead."""
    d = d or seed_paired_interval(leads)
    above = sum(x > 0 for x in leads)
    return f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] ({above} of {len(leads)} cells above)"


def check(runs: list[dict]) -> list[str]:
    """One Checks line: how far the tuning seed sits above the reported seeds, over cells and by partition."""
    found = optimism(runs)
    if len(found) < MIN_CELLS:
        return []
    leads = [lead for _, lead in found]
    d = seed_paired_interval(leads)
    verdict = (
        "above, as the selection that keeps it out of the table would make it (a seed or a draw of the "
        "clients favourable on its own would too)"
        if d["verdict"] and d["lo"] > 0
        else "no lead established"
    )
    partitions = sorted({p for p, _ in found})
    split = [
        f"{p} {_interval([lead for q, lead in found if q == p])}"
        for p in partitions
        if sum(q == p for q, _ in found) >= 2
    ]
    by_partition = f" By partition: {'; '.join(split)}." if len(partitions) > 1 and split else ""
    return [
        f"- The tuning seed's run (the one that chose the lr) scored, against the mean of its cell's reported "
        f"seeds, {_interval(leads, d)} points over {len(found)} distinct cells (95% t-interval; the cells share that "
        f"seed, so it is narrower than independent cells would give): {verdict}.{by_partition}"
    ]
