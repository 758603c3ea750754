"""How far a 600-answer validation subset's macro-F1 falls from the whole split's (README,
MedQuAD; bench.engine.subsample):

    python docs/measure_val_subsample.py > results/medquad/val_subsample.md

A model's predictions, fixed: the committed MedQuAD pilot's on test (3,025 answers, [gold,
predicted] type per answer in its test_items.json). Each repeat draws a pseudo-validation of
1,595 answers from them (each type in proportion, as the real validation split), scores it
whole, then scores three 600-answer subsets of it: proportional (each type in proportion),
capped (rare types whole, large ones capped, unweighted), and capped with the weights the suite
uses (class size over kept count); both capped subsets are bench.engine.subsample.capped_draw's.
Bias and sd of subset minus whole, over repeats. Label ids and counts only.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from measure_common import this_code

from bench.engine.subsample import capped_draw
from bench.metrics import cls_scores

PILOT = Path("results/medquad/runs/medquad__fedavg__iid__c4__s0__b3df83e232/test_items.json")
CLASSES, WHOLE, SUBSET, REPEATS, SEED = 15, 1595, 600, 2000, 0


def macro_f1(gold: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> float:
    return cls_scores(gold, np.eye(CLASSES)[pred], weights)["metric"]


def by_class(gold: np.ndarray, idx: np.ndarray) -> dict[int, np.ndarray]:
    return {c: idx[gold[idx] == c] for c in np.unique(gold[idx])}


def proportional(gold: np.ndarray, idx: np.ndarray, n: int, rng) -> np.ndarray:
    """n of idx, each class in proportion (systematic over the classes laid end to end)."""
    laid = np.concatenate([rng.permutation(v) for v in by_class(gold, idx).values()])
    return laid[((np.arange(n) + rng.random()) * len(idx) / n).astype(int)]


def capped(gold: np.ndarray, idx: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n of idx by the suite's own draw (rare types whole, large ones capped) and its weights."""
    kept, weights = capped_draw(gold[idx].tolist(), n, rng)
    return idx[kept], weights


def main() -> None:
    warnings.filterwarnings("ignore")
    items = np.array(json.loads(PILOT.read_text())[0])
    gold, pred = items[:, 0], items[:, 1]
    rng = np.random.default_rng(SEED)
    errors: dict[str, list[float]] = {
        "proportional": [],
        "capped, unweighted": [],
        "capped, weighted (the suite's)": [],
    }
    for _ in range(REPEATS):
        val = proportional(gold, np.arange(len(gold)), WHOLE, rng)
        whole = macro_f1(gold[val], pred[val])
        sub = proportional(gold, val, SUBSET, rng)
        errors["proportional"].append(macro_f1(gold[sub], pred[sub]) - whole)
        sub, weights = capped(gold, val, SUBSET, rng)
        errors["capped, unweighted"].append(macro_f1(gold[sub], pred[sub]) - whole)
        errors["capped, weighted (the suite's)"].append(macro_f1(gold[sub], pred[sub], weights) - whole)
    print("# A 600-answer validation subset against the whole split (MedQuAD)\n")
    print(
        f"Made by `python docs/measure_val_subsample.py` at {this_code()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; predictions of the committed FedAvg pilot "
        f"(test macro-F1 {macro_f1(gold, pred):.3f}), {REPEATS} repeats, seed {SEED}.\n"
    )
    print("| subset of 600 | bias (subset - whole) | sd | rmse |\n|---|---|---|---|")
    for name, found in errors.items():
        e = np.array(found)
        print(f"| {name} | {e.mean():+.4f} | {e.std(ddof=1):.4f} | {np.sqrt((e**2).mean()):.4f} |")
    print(
        "\nOne model's predictions: what the subset's noise is for a fixed model, not how often it "
        "picks another round or learning rate than the whole split would "
        "(results/medquad/val_selection.md, docs/measure_val_selection.py, measures that)."
    )


if __name__ == "__main__":
    main()
