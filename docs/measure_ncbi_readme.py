"""The README's NCBI numbers that no report table carries, measured from the stored runs:

    python docs/measure_ncbi_readme.py > results/ncbi/readme_measurements.md

(auto:2 against top:2 round by round; compute per round of bottom:2 and top:2; a two-block
round's wall time; each reported seed against its cell's mean under label skew; the sign test of
the tuning seed's lead). Reads results/ncbi/summary.csv and the runs' rounds.jsonl; counts only."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
from scipy import stats

OUT = Path("results/ncbi")


def rounds(run_id: str) -> list[dict]:
    return [json.loads(line) for line in (OUT / "runs" / run_id / "rounds.jsonl").read_text().splitlines()]


def main() -> None:
    rows = [r for r in csv.DictReader((OUT / "summary.csv").open()) if r["status"] == "ok"]
    reported = [r for r in rows if r["role"] == "reported"]
    lines = ["# NCBI measurements quoted in the README", "", "Made by `python docs/measure_ncbi_readme.py`.", ""]

    same = []
    for a in (r for r in reported if r["layers"] == "auto:2"):
        b = next(
            r for r in reported if r["layers"] == "top:2" and (r["partition"], r["seed"]) == (a["partition"], a["seed"])
        )
        ra, rb = rounds(a["run_id"]), rounds(b["run_id"])
        keys = ("val_metric", "train_loss")
        same.append(len(ra) == len(rb) and all(x[k] == y[k] for x, y in zip(ra, rb) for k in keys))
    lines.append(
        f"- auto:2 repeats top:2 round for round (validation F1 and training loss, exactly): {sum(same)} of {len(same)} seed x partition pairs"
    )

    for layers in ("top:2", "bottom:2"):
        compute = [line["compute_s"] for r in reported if r["layers"] == layers for line in rounds(r["run_id"])]
        lines.append(
            f"- {layers}: median compute per round {statistics.median(compute):.1f} s over {len(compute)} rounds (4 clients and validation)"
        )
    walls = [
        line["wall_s"] for r in rows if r["layers"] in ("top:2", "bottom:2", "auto:2") for line in rounds(r["run_id"])
    ]
    lo, hi = np.percentile(walls, [5, 95])
    lines.append(
        f"- a two-block round's wall time, 5th to 95th percentile: {lo:.0f} to {hi:.0f} s over {len(walls)} rounds (sweeps included)"
    )

    cells: dict[tuple, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        if r["layers"] != "auto:2":  # repeats top:2
            key = (r["method"], r["layers"], r["partition"], r["lora_rank"])
            cells.setdefault(key, {}).setdefault(r["role"], []).append((int(r["seed"]), float(r["metric"])))
    skew = {k: v for k, v in cells.items() if k[2] == "dirichlet:0.5" and len(v.get("reported", [])) == 3}
    for seed in (1, 2, 3):
        gaps = [100 * (dict(v["reported"])[seed] - np.mean([m for _, m in v["reported"]])) for v in skew.values()]
        lines.append(
            f"- label skew, seed {seed} against its cell's reported mean: {min(gaps):+.1f} to {max(gaps):+.1f} points over {len(gaps)} cells"
        )
    leads = [
        v["tuning"][0][1] - np.mean([m for _, m in v["reported"]])
        for v in cells.values()
        if "tuning" in v and len(v.get("reported", [])) == 3
    ]
    above = sum(x > 0 for x in leads)
    p = stats.binomtest(above, len(leads), 0.5, alternative="greater").pvalue
    lines.append(
        f"- the tuning seed above its cell's reported mean in {above} of {len(leads)} cells: one-sided sign test p = {p:.2f}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
