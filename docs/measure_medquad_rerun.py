"""MedQuAD's runs rerun from round 1 when the round cap rose from 40 to 60, against the 40-round
runs they replace (README, "Reproducibility"; bench/grids/medquad.yaml, `rounds`):

    python docs/measure_medquad_rerun.py > results/medquad/rerun_agreement.md

A stored run whose checkpoint was gone (checkpoints are not committed; these ran on a machine
since replaced) could not be continued, so its cell reran from round 1 with the same seed, on
another CPU kind and a later commit. For each pair, over the rounds both ran: the significant
digits their training losses share (fewest and median over rounds; in round 1, and in the round
before the validation scores part), the first round whose
validation score differs, the largest validation difference, and the best validation round
within the old cap then and now (which round a 40-round run would have reported), and each run's
reported test score (then under the 40-round cap, now under 60). Scores only.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from measure_common import EQUAL, code_label, layout, shared_digits, side

from bench.config import ExperimentConfig
from bench.store import read_json_lines

RUNS = Path("results/medquad/runs")
OLD_CAP = 40


def best_round(rounds: list[dict]) -> tuple[int, float]:
    """The first round of the highest validation score, as the run reports its best round."""
    best = max(rounds, key=lambda r: (r["val_metric"], -r["round"]))
    return best["round"], best["val_metric"]


def pairs() -> list[tuple[Path, Path]]:
    """(old 40-round run without a checkpoint, the finished run of its cell under the higher cap
    that started from round 1), by run identity."""
    found = []
    for config in sorted(RUNS.glob("*/config.json")):
        new = config.parent
        cfg = ExperimentConfig.from_dict(json.loads(config.read_text()))
        if cfg.rounds <= OLD_CAP or (new / "extended_from.json").exists() or not (new / "final.json").is_file():
            continue
        old = RUNS / cfg.with_settings(rounds=OLD_CAP).run_id
        if (old / "final.json").is_file() and not (old / "checkpoint.pt").exists():
            found.append((old, new))
    return found


def compare(old: Path, new: Path) -> dict:
    then, now = (read_json_lines(f / "rounds.jsonl") for f in (old, new))
    both = min(len(then), len(now))
    digits = [shared_digits(a["train_loss"], b["train_loss"]) for a, b in zip(then, now)]
    moved = [a["round"] for a, b in zip(then, now) if a["val_metric"] != b["val_metric"]]
    finals = [json.loads((f / "final.json").read_text()) for f in (old, new)]
    cfg = finals[1]["config"]
    return {
        "cell": f"{cfg['method']} {cfg['partition']} seed {cfg['seed']} lr {cfg['lr']:g}",
        "rounds": both,
        "digits": (min(digits), statistics.median(digits)),
        # how the rounding grew: the digits at the start, and just before the scores parted
        "digits_then": (digits[0], digits[moved[0] - 2] if moved and moved[0] > 1 else None),
        "first_moved": moved[0] if moved else None,
        "largest": max(abs(a["val_metric"] - b["val_metric"]) for a, b in zip(then, now)),
        "best": (best_round(then[:OLD_CAP]), best_round(now[:OLD_CAP])),
        "made": " / ".join(f"{layout(f)} at {code_label(f.get('git'))}" for f in finals),
        "reported": [(f["metric"], f["best_round"], f["rounds_run"]) for f in finals],
        "sides": [side(f) for f in finals],
    }


def digits_text(d: float) -> str:
    return "equal" if d >= EQUAL else f"{d:g}"


def main() -> None:
    rows = [compare(*pair) for pair in pairs()]
    if not rows:
        sys.exit(f"no rerun pairs in {RUNS}: nothing to compare")
    same = sum(r["first_moved"] is None for r in rows)
    same_best = sum(r["best"][0] == r["best"][1] for r in rows)
    print("# MedQuAD's reruns from round 1 against the 40-round runs they replace\n")
    print(
        f"Made by `python docs/measure_medquad_rerun.py`: {len(rows)} pairs. Validation scores identical "
        f"in every round both ran in {same}; the best round within {OLD_CAP} and its validation score "
        f"the same in {same_best}.\n"
    )
    print("What made them (every run of each side alike unless listed):")
    for i, label in enumerate(("then", "now")):
        print(f"- {label}: " + "; ".join(sorted({r["sides"][i] for r in rows})))
    print(
        "\n| cell | rounds compared | made then / now (workers x threads at commit) | loss digits shared (fewest, median; round 1, the "
        "round before validation differs) "
        f"| first round validation differs | largest validation difference | best round within {OLD_CAP} "
        "(validation) then / now | reported test (best round of rounds run) then / now |"
    )
    print("| --- | ---: | --- | --- | ---: | ---: | --- | --- |")
    for r in rows:
        fewest, median = (digits_text(d) for d in r["digits"])
        start, before = (digits_text(d) if d is not None else "-" for d in r["digits_then"])
        best = " / ".join(f"{b} ({v:.4f})" for b, v in r["best"])
        reported = " / ".join(f"{m:.4f} ({b} of {n})" for m, b, n in r["reported"])
        print(
            f"| {r['cell']} | {r['rounds']} | {r['made']} | {fewest}, {median}; {start}, {before} | {r['first_moved'] or 'none'} "
            f"| {r['largest']:.4f} | {best} | {reported} |"
        )


if __name__ == "__main__":
    main()
