"""Scores: seqeval entity F1 (strict IOB2) for NER; accuracy, macro-F1, AUROC for classification."""

from __future__ import annotations

import numpy as np


def ner_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level micro-F1 (the headline), precision, recall and per-type F1."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"f1-score": 0.0, "precision": 0.0, "recall": 0.0})
    per_type = {k: round(float(v["f1-score"]), 6) for k, v in report.items() if not k.endswith("avg")}
    return {"metric": float(micro["f1-score"]), "precision": float(micro["precision"]),
            "recall": float(micro["recall"]), "per_type_f1": per_type}  # fmt: skip


def _auroc(y: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:  # a single class present: AUROC is undefined
        return None
    return float(roc_auc_score(y, scores))


def cls_scores(gold: np.ndarray, probs: np.ndarray) -> dict:
    """Single-label: macro-F1 (the headline), accuracy, AUROC (one-vs-rest for >2 classes)."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    labels = list(range(probs.shape[1]))
    auroc = _auroc(gold, probs[:, 1]) if probs.shape[1] == 2 else None
    return {"metric": float(f1_score(gold, pred, average="macro", labels=labels, zero_division=0)),
            "accuracy": float(accuracy_score(gold, pred)), "auroc": auroc}  # fmt: skip


def multilabel_scores(gold: np.ndarray, probs: np.ndarray) -> dict:
    """Multi-label: macro-F1 over labels (the headline), micro-F1, macro AUROC over labels seen."""
    from sklearn.metrics import f1_score

    pred = (probs >= 0.5).astype(int)
    aucs = [a for j in range(gold.shape[1]) if (a := _auroc(gold[:, j], probs[:, j])) is not None]
    return {"metric": float(f1_score(gold, pred, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
            "auroc": float(np.mean(aucs)) if aucs else None}  # fmt: skip


METRIC_NAMES = {"ner": "entity_micro_f1", "cls": "macro_f1", "multilabel": "macro_f1"}
