"""The quick grid's re-run against the runs it replaced, from git (README, "Why the other cells
were re-run"):

    python docs/measure_quick_rerun.py [OLD_COMMIT] > results/quick/rerun_drift.md

OLD_COMMIT (default 834cf65^, the commit before the re-run) holds the stored runs of the same
run ids; the working tree's results/quick/runs holds today's. For every run id in both: its
first round's training loss then and now, and whether its validation and test scores moved.
LoRA runs are counted apart: seeding their adapters (#31) changed what they compute. Scores and
losses only.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from measure_common import EQUAL, code_label, layout, shared_digits, side

RUNS = "results/quick/runs"


def stored(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout


def old_run_ids(commit: str) -> list[str]:
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, "--", RUNS], capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({Path(p).parent.name for p in listing if p.endswith("/final.json")})


def first_loss(rounds_text: str) -> float:
    return json.loads(rounds_text.splitlines()[0])["train_loss"]


def compare(commit: str, run_id: str) -> dict:
    old = json.loads(stored(commit, f"{RUNS}/{run_id}/final.json"))
    new = json.loads((Path(RUNS) / run_id / "final.json").read_text())
    old_loss = first_loss(stored(commit, f"{RUNS}/{run_id}/rounds.jsonl"))
    new_loss = first_loss((Path(RUNS) / run_id / "rounds.jsonl").read_text())
    return {
        "run_id": run_id,
        "sides": [side(old), side(new)],
        "made": " / ".join(f"{code_label(f.get('git'))} {layout(f)}" for f in (old, new)),
        "lora": new["config"]["method"] == "lora",
        "loss": (old_loss, new_loss),
        "test": (old["metric"], new["metric"]),
        "val": (old["val_metric"], new["val_metric"]),
    }


def probe_ids() -> set[str]:
    with open("results/quick/edge_probes.csv") as f:
        return {r["run_id"] for r in csv.DictReader(f)}


def summarise(name: str, rows: list[dict]) -> str:
    digits = Counter(shared_digits(*r["loss"]) for r in rows)
    spread = ", ".join(f"{n} at {d}" if d < EQUAL else f"{n} equal" for d, n in sorted(digits.items(), reverse=True))
    kept = [r for r in rows if r["test"][0] == r["test"][1] and r["val"][0] == r["val"][1]]
    moved = [r for r in rows if r not in kept]
    most = {k: max((abs(r[k][1] - r[k][0]) for r in moved), default=0.0) for k in ("test", "val")}
    return (
        f"- {name}: {len(rows)} runs. First-round training loss, significant digits shared then and now: {spread}. "
        f"Validation and test scores unchanged in {len(kept)}; {len(moved)} moved, by up to "
        f"{100 * most['test']:.1f} points of test and {100 * most['val']:.1f} of validation."
    )


def main() -> None:
    commit = sys.argv[1] if len(sys.argv) > 1 else "834cf65^"
    here = {p.name for p in Path(RUNS).iterdir() if (p / "final.json").is_file()}
    rows = [compare(commit, r) for r in old_run_ids(commit) if r in here]
    probes = probe_ids()
    groups = {
        "sweep points and cells, not LoRA": [r for r in rows if not r["lora"] and r["run_id"] not in probes],
        "LoRA sweep points and cells (adapters seeded since #31: a different computation)": [
            r for r in rows if r["lora"] and r["run_id"] not in probes
        ],
        "edge probes": [r for r in rows if r["run_id"] in probes],
    }
    print(f"# The quick grid re-run against {commit}'s stored runs\n")
    print(f"Made by `python docs/measure_quick_rerun.py {commit}`: {len(rows)} run ids stored then and now.\n")
    for name, group in groups.items():
        print(summarise(name, group))
    print("\nWhat made them (every run of each side alike unless listed):")
    for i, label in enumerate(("then", "now")):
        print(f"- {label}: " + "; ".join(sorted({r["sides"][i] for r in rows})))
    print(
        "\n| run id | LoRA | probe | made then / now | first-round loss then / now | shared digits | test then / now | validation then / now |"
    )
    print("| --- | :---: | :---: | --- | --- | ---: | --- | --- |")
    for r in rows:
        loss = " / ".join(f"{x:.8f}" for x in r["loss"])
        test, val = (" / ".join(f"{x:.4f}" for x in r[k]) for k in ("test", "val"))
        flags = f"{'yes' if r['lora'] else ''} | {'yes' if r['run_id'] in probes else ''}"
        print(f"| {r['run_id']} | {flags} | {r['made']} | {loss} | {shared_digits(*r['loss'])} | {test} | {val} |")


if __name__ == "__main__":
    main()
