"""Scores from predictions: the worker predicts, and whoever holds the task scores, so the rows
of one evaluation can be predicted by several workers at once and scored together."""

from __future__ import annotations

import numpy as np

from bench.engine.prepare import PreparedTask, Split
from bench.metrics import cls_scores, multilabel_scores, ner_scores


def all_examples(task: PreparedTask, split: str, examples) -> list[int]:
    data: Split = getattr(task, split)
    return list(range(len(data.gold))) if examples is None else [int(e) for e in examples]


def score_predictions(task: PreparedTask, split: str, examples: list[int], preds: dict) -> dict:
    """The split's metrics over `examples`, from `preds` (encoded row -> prediction)."""
    data: Split = getattr(task, split)
    if task.kind == "ner":
        names = task.output_labels
        pred_tags = [[names[i] for r in data.chunks[e] for i in preds[r]] for e in examples]
        return ner_scores([data.gold[e] for e in examples], pred_tags)
    probs = np.stack([preds[data.chunks[e][0]] for e in examples])
    gold = np.array([data.gold[e] for e in examples])
    return (multilabel_scores if task.kind == "multilabel" else cls_scores)(gold, probs)
