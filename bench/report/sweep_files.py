"""The sweep record's files read back for the report's checks: tuning.csv (every stored sweep
point, with the choice) and edge_probes.csv (each edge choice's probe one step beyond)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_tuning(path: Path) -> list[dict]:
    """tuning.csv's rows with numbers and booleans back (none when there is no file)."""
    if not path.is_file():
        return []
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        r["chosen"] = r["chosen"] == "True"
        r["val_metric"] = float(r["val_metric"]) if r["val_metric"] else None
        r["converged"] = {"True": True, "False": False}.get(r.get("converged") or "")  # older files lack it
        try:
            r["value"] = float(r["value"])
        except ValueError:
            pass  # a non-numeric setting (e.g. a layer spec) has no range edge
    return rows


def read_probes(path: Path) -> dict[tuple[str, str], dict]:
    """edge_probes.csv by (group, setting), validation metrics as numbers (none without a file)."""
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        r["probe_val_metric"] = float(r["probe_val_metric"]) if r["probe_val_metric"] else None
    return {(r["group"], r["setting"]): r for r in rows}
