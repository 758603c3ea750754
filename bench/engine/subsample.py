"""Fixed subsets of a task's splits, the same for every seed and method (part of the setting):
training examples at random (`train_subsample`), and validation examples by class with weights
that keep its scores aimed at the whole split's (`val_subsample`)."""

from __future__ import annotations

import numpy as np

from bench.seeding import stream

SUBSAMPLE_SEED = 0  # fixed: a subsample is part of the setting, the same for every seed and method


def subsample(examples: list, n: int | None) -> list:
    """A fixed random `n` of the training examples (all of them when n is None or larger)."""
    if n is None or n >= len(examples):
        return examples
    keep = np.sort(stream("train_subsample", SUBSAMPLE_SEED, n).choice(len(examples), size=n, replace=False))
    return [examples[i] for i in keep]


def class_quotas(sizes: list[int], n: int) -> list[int]:
    """How many of each class to keep, n in all: every class under a common cap is kept whole and
    the larger ones share the rest equally (the remainder one each, largest first). Macro-F1 weighs
    each class alike, so its rarest classes are where a proportional sample is noisiest."""
    cap = max(c for c in range(n + 1) if sum(min(s, c) for s in sizes) <= n)
    quotas = [min(s, cap) for s in sizes]
    larger = sorted((i for i, s in enumerate(sizes) if s > cap), key=lambda i: -sizes[i])
    for i in larger[: n - sum(quotas)]:
        quotas[i] += 1
    return quotas


def validation_subsample(examples: list, n: int | None) -> tuple[list, np.ndarray | None]:
    """A fixed `n` of the validation examples and each one's weight (its class's size over its
    kept count), or all of them and None. Classes are label sets (NER sentences are one class):
    rare ones stay whole, large ones are capped, and the weights make the subset's confusion
    counts estimate the whole split's, so a weighted macro-F1 keeps its class mix (precision
    depends on it). On a MedQuAD model's predictions, 600 drawn this way from 1,595 came
    within 0.0061 (sd over 2,000 draws) of the 1,595's macro-F1, a proportional 600 within 0.0180
    (docs/measure_val_subsample.py)."""
    if n is None or n >= len(examples):
        return examples, None
    rng = stream("val_subsample", SUBSAMPLE_SEED, n)
    kept, weights = capped_draw([tuple(getattr(ex, "labels", ())) for ex in examples], n, rng)
    return [examples[i] for i in kept], weights


def capped_draw(classes: list, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices in order, each one's weight): n of the items whose class keys are `classes`,
    by class_quotas, drawn with `rng` class by class in sorted order; a weight is its class's
    size over its kept count. docs/measure_val_selection.py draws its other subsets with it."""
    by_class: dict = {}
    for i, key in enumerate(classes):
        by_class.setdefault(key, []).append(i)
    keys = sorted(by_class)
    quotas = class_quotas([len(by_class[key]) for key in keys], n)
    weight_of: dict[int, float] = {}
    for key, quota in zip(keys, quotas):
        members = by_class[key]
        for i in rng.permutation(members)[:quota]:
            weight_of[int(i)] = len(members) / quota
    kept = sorted(weight_of)  # the release's order, so batches form alike
    return np.array(kept, dtype=int), np.array([weight_of[i] for i in kept])
