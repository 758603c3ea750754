"""Whether the MedQuAD grid's validation subset (600 of 1,595 answers, bench.engine.subsample)
chooses other rounds and learning rates than the whole split would (README, MedQuAD):

    python docs/measure_val_selection.py > results/medquad/val_selection.md

The grid's layer-skipping top:2 sweep on seed 0 (its three learning rates, its settings) is
trained to the 40-round limit with the whole validation split scored every round, and every
answer's predicted probabilities kept (in $BENCH_CACHE/val_selection/, not committed). Training
never reads validation, so these are the trajectories the grid's own runs follow until they stop.
Then the grid's selection is replayed on each criterion's curves: early stopping (patience 5,
min_delta 0.005, bench.engine.convergence.stalled), the best round of each run, the best lr (ties
to the first, as bench.protocol.tuning). Criteria: the whole split, the grid's fixed subset
(weighted), and 1,000 further subsets drawn the same way. A different choice is priced on the
whole split's macro-F1, which favours the whole split's own choice (chosen on those answers):
it measures disagreement, not what test would say (test is not scored per round here). Scope:
one method, the IID partition, the tuning seed; the reported seeds also stop and choose rounds
on the subset. Where the grid's own seed-0 top:2 runs are stored, their recorded validation
curves are checked against the subset's replayed ones. Last, the same replay at several
patiences: what early stopping itself changes. Scores and counts only.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import yaml
from measure_common import this_code

from bench.config import SETTING_DEFAULTS, ExperimentConfig
from bench.data import load_task
from bench.engine import scoring
from bench.engine.convergence import stalled
from bench.engine.server import run_experiment
from bench.engine.subsample import capped_draw, validation_subsample
from bench.metrics import cls_scores
from bench.protocol.run_time import round_lines
from bench.store import cache_root

GRID = Path("bench/grids/medquad.yaml")
LAYERS, SEED, DRAWS = "top:2", 0, 1000
PATIENCES = (5, 8, 10, 15)


def sweep_configs() -> list[ExperimentConfig]:
    grid = yaml.safe_load(GRID.read_text())
    entry = next(m for m in grid["methods"] if m.get("layers") == LAYERS)
    settings = {k: v for k, v in entry.items() if k != "tune"}
    # the study queue's layout on this 2-core machine (execution.choose): thread counts change the numbers
    base = {**grid["defaults"], **settings, "task": grid["tasks"][0], "seed": SEED, "workers": 2, "cpus_per_worker": 1}
    grid_cells = [ExperimentConfig.from_dict({**base, "lr": lr}) for lr in entry["tune"]["lr"]]
    # every round to the limit, the whole split scored: the grid's stopping and subset are replayed
    return [cfg.with_settings(early_stop=False, val_subsample=None) for cfg in grid_cells]


def trajectory_id(cfg: ExperimentConfig) -> str:
    """What the kept predictions depend on: the run's identity less the stopping rule, which a
    run trained to its limit does not apply (the replay does)."""
    return cfg.with_settings(patience=SETTING_DEFAULTS["patience"], min_delta=SETTING_DEFAULTS["min_delta"]).run_id


def validation_probs(cfg: ExperimentConfig, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(gold type per answer, (rounds + 1, answers, types): the untrained model's predicted
    probabilities, then each round's), as the server scored them."""
    if (folder / "probs.npy").is_file():
        if (folder / "run_id").read_text() != trajectory_id(cfg):
            raise SystemExit(f"{folder}: kept for another configuration; delete it to measure this one")
        return np.load(folder / "gold.npy"), np.load(folder / "probs.npy")
    shutil.rmtree(folder / "run", ignore_errors=True)  # an interrupted run would resume without its earlier scores
    seen, gold, real = [], [], scoring.score_predictions

    def keep(task, split, examples, preds):  # the server scores what the workers predicted: keep it
        if split == "validation":
            seen.append(np.stack([preds[task.validation.chunks[e][0]] for e in examples]))
            gold[:] = [task.validation.gold[e] for e in examples]
        return real(task, split, examples, preds)

    scoring.score_predictions = keep
    try:
        run_experiment(cfg, folder / "run", progress=True)
    finally:
        scoring.score_predictions = real
    probs = np.stack(seen)
    assert len(probs) == cfg.rounds + 1, f"{len(probs)} validation scorings for {cfg.rounds} rounds"
    assert np.isfinite(probs).all(), "non-finite predictions: the replay assumes none (the server skips them)"
    (folder / "run_id").write_text(trajectory_id(cfg))
    np.save(folder / "gold.npy", np.array(gold))
    np.save(folder / "probs.npy", probs)
    return np.array(gold), probs


def stopped(curve: np.ndarray, patience: int, min_delta: float) -> int:
    """Rounds a run plays on this curve (the untrained score, then each round's): the server
    checks `stalled` before each round."""
    last = len(curve) - 1
    return next((k for k in range(last) if stalled(list(curve[1 : k + 1]), patience, min_delta, curve[0])), last)


def replay(curves: list[np.ndarray], patience: int, min_delta: float) -> tuple[int, int]:
    """The grid's choice on these curves (one per lr): (lr index, best round), early stopping
    as the server applies it, the first strict maximum as the server and the tuning keep it."""
    best = []
    for curve in curves:
        rounds = curve[1 : stopped(curve, patience, min_delta) + 1]
        best.append((float(rounds.max()), int(rounds.argmax()) + 1))
    lr = max(range(len(best)), key=lambda i: (best[i][0], -i))  # a strict gain wins: ties to the first
    return lr, best[lr][1]


def weighted_curves(probs: list[np.ndarray], gold: np.ndarray, keep: np.ndarray, weights: np.ndarray | None):
    return [np.array([cls_scores(gold[keep], p[keep], weights)["metric"] for p in run]) for run in probs]


def random_subset(gold: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """A subset drawn as the grid's is (bench.engine.subsample.capped_draw), from another stream."""
    return capped_draw(gold.tolist(), n, rng)


def main() -> None:
    warnings.filterwarnings("ignore")
    configs = sweep_configs()
    folder = cache_root() / "val_selection"
    runs = [validation_probs(cfg, folder / f"lr{cfg.lr:g}") for cfg in configs]
    gold, probs = runs[0][0], [p for _, p in runs]
    whole = weighted_curves(probs, gold, np.arange(len(gold)), None)
    for cfg, curve in zip(configs, whole):  # the replay reads what the runs recorded
        recorded = [line["val_metric"] for line in round_lines(folder / f"lr{cfg.lr:g}" / "run")]
        assert np.allclose(curve[1:], recorded), f"lr {cfg.lr}: recomputed whole-split scores differ from the run's"
    examples = load_task(configs[0].task).splits["validation"]
    kept_examples, grid_weights = validation_subsample(examples, 600)
    position = {id(ex): i for i, ex in enumerate(examples)}
    grid_keep = np.array([position[id(ex)] for ex in kept_examples])
    report(configs, whole, gold, grid_keep, grid_weights, probs)


def grid_run_check(configs, subset_curves) -> str:
    """The decisive check, once the grid has run: its seed-0 top:2 runs' recorded validation
    curves against the subset curves replayed here."""
    said = []
    for cfg, curve in zip(configs, subset_curves):
        grid_cfg = cfg.with_settings(val_subsample=600, early_stop=True)
        recorded = [line["val_metric"] for line in round_lines(Path("results/medquad/runs") / grid_cfg.run_id)]
        if not recorded:
            said.append(f"lr {cfg.lr:g}: not run yet")
            continue
        same = np.allclose(curve[1 : len(recorded) + 1], recorded, rtol=0, atol=1e-9)
        said.append(f"lr {cfg.lr:g}: {'equal' if same else 'DIFFERENT'} over its {len(recorded)} rounds")
    return "; ".join(said)


def report(configs, whole, gold, grid_keep, grid_weights, probs) -> None:
    stop = (configs[0].patience, configs[0].min_delta)
    subset = weighted_curves(probs, gold, grid_keep, grid_weights)
    chosen, grid = replay(whole, *stop), replay(subset, *stop)
    rng = np.random.default_rng(SEED)
    draws = [
        replay(weighted_curves(probs, gold, *random_subset(gold, len(grid_keep), rng)), *stop) for _ in range(DRAWS)
    ]
    cost = np.array([whole[chosen[0]][chosen[1]] - whole[lr][r] for lr, r in draws])
    other_lr = np.array([lr != chosen[0] for lr, _ in draws])
    lrs = [f"{c.lr:g}" for c in configs]
    print("# Does MedQuAD's validation subset choose what the whole split would?\n")
    print(
        f"Made by `python docs/measure_val_selection.py` at {this_code()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"on {platform.machine()}, 2 worker processes of 1 thread. The grid's layerskip {LAYERS} sweep on the tuning "
        f"seed ({SEED}; lrs {', '.join(lrs)}; IID), trained to its {configs[0].rounds}-round limit with the whole validation "
        f"split ({len(gold):,} answers) scored every round; the grid's selection replayed on each criterion. Scope: one "
        "method, one partition, the tuning seed. Whole-split macro-F1 favours the whole split's own choice (made on "
        "the same answers): the figures below measure disagreement, not what test would say.\n"
    )
    print(
        "| criterion | lr | best round | rounds played at that lr | whole-split macro-F1 there |\n|---|---|---:|---:|---:|"
    )
    for name, curves, (lr, r) in (
        ("whole split", whole, chosen),
        (f"the grid's {len(grid_keep)} (weighted)", subset, grid),
    ):
        print(f"| {name} | {lrs[lr]} | {r} | {stopped(curves[lr], *stop)} | {whole[lr][r]:.4f} |")
    grid_cost = whole[chosen[0]][chosen[1]] - whole[grid[0]][grid[1]]
    print(
        f"\nOver {DRAWS} further subsets of {len(grid_keep)} drawn the same way: the whole split's lr in "
        f"{DRAWS - other_lr.sum()}, its lr and round in {sum(d == chosen for d in draws)}. Whole-split macro-F1 at the "
        f"whole split's choice minus at the subset's: below 0 in {(cost < 0).sum()}, 0 in {(cost == 0).sum()}, above 0 in "
        f"{(cost > 0).sum()}; mean {cost.mean():+.4f}, 95th percentile {np.quantile(cost, 0.95):+.4f}, most {cost.max():+.4f}; "
        f"where the subset chose another lr, mean {cost[other_lr].mean() if other_lr.any() else float('nan'):+.4f} "
        f"({other_lr.sum()} draws). The grid's own subset: {grid_cost:+.4f}, at or above {(cost <= grid_cost).mean():.0%} "
        "of the draws."
    )
    print(
        "\nWhole-split best per lr (round, macro-F1; rounds played): "
        + "; ".join(
            f"{lrs[i]}: {int(c[1:].argmax()) + 1}, {c[1:].max():.4f}; {stopped(c, *stop)}" for i, c in enumerate(whole)
        )
    )
    print(
        f"\nThe grid's own seed-0 {LAYERS} runs against the subset curves replayed here: {grid_run_check(configs, subset)}."
    )
    print(patience_table(configs, whole, subset, len(grid_keep)))


def patience_table(configs, whole, subset, kept: int) -> str:
    """Early stopping's own effect: the choice, and where each lr stops, at several patiences."""
    lines = [
        f"\n## Early stopping's own effect (min_delta {configs[0].min_delta:g}; the grid's patience: {configs[0].patience})\n",
        "| patience | criterion | lr | best round | whole-split macro-F1 there | rounds played per lr |",
        "|---:|---|---|---:|---:|---|",
    ]
    for patience in PATIENCES:
        for name, curves in (("whole split", whole), (f"grid's {kept}", subset)):
            lr, r = replay(curves, patience, configs[0].min_delta)
            played = ", ".join(str(stopped(c, patience, configs[0].min_delta)) for c in curves)
            lines.append(f"| {patience} | {name} | {configs[lr].lr:g} | {r} | {whole[lr][r]:.4f} | {played} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
