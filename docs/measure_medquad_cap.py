"""Why MedQuAD's round cap rose from 40 to 60 (README, "Data"; bench/grids/medquad.yaml, `rounds`),
recounted from the 40-round runs still stored:

    python docs/measure_medquad_cap.py > results/medquad/cap_check.md

Issue 23's rule: a cap that ends runs still improving cuts them short by protocol. For every
stored run made under the 40-round cap: whether it ran to the cap without early stopping, and
its convergence label as the report gives it (bench/engine/convergence.py: `capped` = the cap
ended it while validation was still gaining under the grid's patience). Scores only.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bench.engine.convergence import convergence
from bench.store import read_json, read_json_lines

RUNS = Path("results/medquad/runs")
OLD_CAP = 40
TUNE_SEED = 0  # chooses the lr; seeds 1-3 are the reported ones


def old_runs() -> list[dict]:
    found = []
    for config in sorted(RUNS.glob("*/config.json")):
        cfg = read_json(config)
        if cfg["rounds"] != OLD_CAP or not (config.parent / "final.json").is_file():
            continue
        final = read_json(config.parent / "final.json")
        val = [r["val_metric"] for r in read_json_lines(config.parent / "rounds.jsonl")]
        found.append(
            {
                "cell": " ".join(filter(None, (cfg["method"], cfg.get("layers"), cfg["partition"]))),
                "seed": cfg["seed"],
                "lr": cfg["lr"],
                "to_cap": len(val) == OLD_CAP and not final.get("stopped_early"),
                "label": convergence(val, final.get("untrained_val_metric"), cfg["patience"], cfg["min_delta"]),
                "early_stop": (cfg["patience"], cfg["min_delta"]),
                "best_round": final.get("best_round"),
            }
        )
    return found


def main() -> None:
    runs = old_runs()
    if not runs:
        sys.exit(f"no {OLD_CAP}-round runs in {RUNS}")
    to_cap = [r for r in runs if r["to_cap"]]
    capped = [r for r in to_cap if r["label"] == "capped"]
    reported = [r for r in capped if r["seed"] != TUNE_SEED]
    print(f"# MedQuAD's {OLD_CAP}-round runs: did the cap end runs still improving?\n")
    early_stop = "; ".join(f"patience {p}, min_delta {d:g}" for p, d in sorted({r["early_stop"] for r in runs}))
    print(
        f"Made by `python docs/measure_medquad_cap.py` from the {len(runs)} stored runs made under "
        f"the {OLD_CAP}-round cap (early stopping, each run's own: {early_stop}): "
        f"{len(to_cap)} ran to the cap without stopping, {len(capped)} of them still gaining "
        f"(`capped`), {len(reported)} of those reported seeds (not the tuning seed {TUNE_SEED}).\n"
    )
    labels = Counter((r["to_cap"], r["label"]) for r in runs)
    print("| ran to the cap | label | runs |\n| --- | --- | ---: |")
    for (to, label), n in sorted(labels.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        print(f"| {'yes' if to else 'no'} | {label} | {n} |")
    print("\nReported seeds the cap ended while still gaining:\n")
    print("| cell | seed | lr | best round of 40 |\n| --- | ---: | ---: | ---: |")
    for r in sorted(reported, key=lambda r: (r["cell"], r["seed"])):
        print(f"| {r['cell']} | {r['seed']} | {r['lr']:g} | {r['best_round']} |")


if __name__ == "__main__":
    main()
