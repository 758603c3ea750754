"""Scores: seqeval entity F1 (strict IOB2) for NER; accuracy, macro-F1, AUROC for classification.

Each scorer also returns `items`, one small record per test example (counts or label ids, never
text) from which bench.report.stats recomputes the headline metric on a bootstrap resample."""

from __future__ import annotations

import warnings

import numpy as np


def ner_items(gold: list[list[str]], pred: list[list[str]]) -> list[list[int]]:
    """Per sentence [true positives, false positives, false negatives] of strict IOB2 entities:
    what a paired bootstrap resamples (summed, they give the micro-F1 below exactly)."""
    from seqeval.scheme import IOB2, Entities

    gold_sets = [{e.to_tuple() for e in s} for s in Entities(gold, IOB2).entities]
    pred_sets = [{e.to_tuple() for e in s} for s in Entities(pred, IOB2).entities]
    return [[len(g & p), len(p - g), len(g - p)] for g, p in zip(gold_sets, pred_sets)]


def ner_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level micro-F1 (the headline), precision, recall, per-type F1, per-sentence counts."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    with warnings.catch_warnings():  # a client's held-out slice may hold no entity: seqeval averages nothing
        warnings.simplefilter("ignore", RuntimeWarning)  # (validation and test are checked: bench.data.split_check)
        report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"f1-score": 0.0, "precision": 0.0, "recall": 0.0})
    per_type = {k: round(float(v["f1-score"]), 6) for k, v in report.items() if not k.endswith("avg")}
    return {
        "metric": float(micro["f1-score"]),
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "per_type_f1": per_type,
        "items": ner_items(gold, pred),
    }


def _auroc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:  # a single class present: AUROC is undefined
        return None
    return float(roc_auc_score(y, scores, sample_weight=weights))


def cls_scores(gold: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """Single-label: macro-F1 (the headline), accuracy, AUROC (one-vs-rest for >2 classes).
    `weights`: per example, where the examples are a weighted subsample of a split (val_subsample)."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    labels = list(range(probs.shape[1]))
    auroc = _auroc(gold, probs[:, 1], weights) if probs.shape[1] == 2 else None
    return {
        "metric": float(f1_score(gold, pred, average="macro", labels=labels, zero_division=0, sample_weight=weights)),
        "accuracy": float(accuracy_score(gold, pred, sample_weight=weights)),
        "auroc": auroc,
        "items": [[int(g), int(p)] for g, p in zip(gold, pred)],
    }


def multilabel_scores(gold: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """Multi-label: macro-F1 over labels (the headline), micro-F1, macro AUROC over labels seen."""
    from sklearn.metrics import f1_score

    pred = (probs >= 0.5).astype(int)
    aucs = [a for j in range(gold.shape[1]) if (a := _auroc(gold[:, j], probs[:, j], weights)) is not None]
    return {
        "metric": float(f1_score(gold, pred, average="macro", zero_division=0, sample_weight=weights)),
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0, sample_weight=weights)),
        "auroc": float(np.mean(aucs)) if aucs else None,
        "items": [[*map(int, g), *map(int, p)] for g, p in zip(gold, pred)],
    }


METRIC_NAMES = {"ner": "entity_micro_f1", "cls": "macro_f1", "multilabel": "macro_f1"}
