"""Statistics for the report: intervals over seeds and paired bootstrap differences.

The headline metric is recomputed from per-example `items` (bench.metrics): NER rows are
[tp, fp, fn] per sentence (entity micro-F1 from the sums), single-label rows [gold, pred]
(macro-F1), multi-label rows gold bits then predicted bits (macro-F1 over labels).
Two intervals for a difference between methods, because two things vary:
- `seed_paired_interval`, the headline: the mean of the per-seed differences with a t-interval
  over seeds (n - 1 degrees of freedom). Seeds are the unit of replication: a training run is
  noisy, and a claim must survive that noise.
- `paired_bootstrap`, test sampling only: conditional on the trained models, how much the
  difference would move on another draw of test examples. Each replicate draws one resample
  index and every seed and method is scored on it, since all of them score the same test set.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

BOOTSTRAP_REPS = 1000
BOOTSTRAP_SEED = 0


def _ner_f1(counts: np.ndarray) -> float:
    tp, fp, fn = counts.sum(axis=0)
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def _macro_f1(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    f1s = []
    for c in range(n_labels):
        tp = np.sum((gold == c) & (pred == c))
        denom = np.sum(gold == c) + np.sum(pred == c)
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def _multilabel_f1(rows: np.ndarray) -> float:
    half = rows.shape[1] // 2
    gold, pred = rows[:, :half], rows[:, half:]
    tp = (gold * pred).sum(axis=0)
    denom = gold.sum(axis=0) + pred.sum(axis=0)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def metric_from_items(kind: str, items, n_labels: int = 2) -> float:
    """The headline metric of one model from its per-example rows."""
    rows = np.asarray(items)
    if kind == "ner":
        return _ner_f1(rows)
    if kind == "cls":
        return _macro_f1(rows[:, 0], rows[:, 1], n_labels)
    return _multilabel_f1(rows)


def run_metric(kind: str, per_model_items: list, index: np.ndarray | None = None, n_labels: int = 2) -> float:
    """A run's metric: the mean over its scored models (one, or one per client for `local`)."""
    pick = (lambda rows: np.asarray(rows)) if index is None else (lambda rows: np.asarray(rows)[index])
    return float(np.mean([metric_from_items(kind, pick(items), n_labels) for items in per_model_items]))


def paired_bootstrap(
    kind: str,
    pairs: list[tuple[list, list]],
    n_labels: int = 2,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    groups: list[int] | None = None,
) -> dict:
    """Mean over seeds of metric(A) - metric(B), with a 95% percentile interval over test resamples
    (test sampling only: the trained models are held fixed).

    `pairs` holds one (A's items, B's items) per seed, each a list of per-model item lists on the
    same test examples. Each replicate draws one resample and scores every run of every seed on
    it: of whole groups (`groups`: each item's document, patient or block; a cluster bootstrap),
    or of the items one by one."""
    rng = np.random.default_rng(seed)
    sizes = {len(m) for a, b in pairs for m in a + b}
    if len(sizes) != 1:
        raise ValueError(f"paired runs scored different test sets (sizes {sorted(sizes)})")
    n = sizes.pop()
    if groups is not None and len(groups) != n:
        raise ValueError(f"{len(groups)} test groups for {n} test items")
    members = _members(groups) if groups is not None else None
    observed = float(
        np.mean([run_metric(kind, a, None, n_labels) - run_metric(kind, b, None, n_labels) for a, b in pairs])
    )
    draws = np.empty(reps)
    for i in range(reps):
        index = _draw(rng, n, members)  # one draw of the shared test set, for every seed and method
        draws[i] = np.mean(
            [run_metric(kind, a, index, n_labels) - run_metric(kind, b, index, n_labels) for a, b in pairs]
        )
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {
        "diff": observed,
        "lo": float(lo),
        "hi": float(hi),
        "contains_zero": bool(lo <= 0 <= hi),
        "seeds": len(pairs),
    }


def _members(groups: list[int]) -> list[np.ndarray]:
    order = np.asarray(groups)
    return [np.flatnonzero(order == g) for g in dict.fromkeys(groups)]


def _draw(rng: np.random.Generator, n: int, members: list[np.ndarray] | None) -> np.ndarray:
    """Item indices of one resample: n items, or as many groups as there are, each with all its items."""
    if members is None:
        return rng.integers(0, n, size=n)
    return np.concatenate([members[g] for g in rng.integers(0, len(members), size=len(members))])


def seed_interval(values: list[float]) -> dict:
    """Mean, sample std and the half-width of a 95% t-interval over seeds (std and half-width
    None for one seed: one value has no spread to report, not a spread of 0)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return {"mean": float(x.mean()), "std": None, "ci95": None}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, len(x) - 1) * std / np.sqrt(len(x)))
    return {"mean": float(x.mean()), "std": std, "ci95": half}


MIN_SEEDS_FOR_VERDICT = 3  # with 2 seeds the variance has 1 degree of freedom: a near-zero width is chance


def seed_paired_interval(diffs: list[float], level: float = 0.95) -> dict | None:
    """The mean per-seed paired difference with a t-interval over seeds (n - 1 degrees of
    freedom): the headline for "A differs from B". None with fewer than 2 seeds (no interval);
    with fewer than MIN_SEEDS_FOR_VERDICT, `verdict` is False: the interval is shown, not judged."""
    x = np.asarray(diffs, dtype=float)
    if len(x) < 2:
        return None
    mean, half = (
        float(x.mean()),
        float(scipy_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))),
    )
    # no verdict on a NaN, nor on identical differences (zero width: seeds that do not vary the
    # result say nothing about how much it varies); the reason travels with the interval
    no_verdict = (
        f"{len(x)} seeds"
        if len(x) < MIN_SEEDS_FOR_VERDICT
        else "no finite spread over seeds"
        if not (np.isfinite(half) and half > 0)
        else None
    )
    return {
        "diff": mean,
        "lo": mean - half,
        "hi": mean + half,
        "contains_zero": bool(mean - half <= 0 <= mean + half) or not np.isfinite(half),
        "seeds": len(x),
        "verdict": no_verdict is None,
        "no_verdict": no_verdict,
    }
