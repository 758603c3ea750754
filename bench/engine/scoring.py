"""Scores from predictions: the worker predicts, and whoever holds the task scores, so the rows
of one evaluation can be predicted by several workers at once and scored together. Both
multi-worker backends (local processes, Ray actors) plan and merge their evaluations here."""

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
    weights = None if data.weights is None else data.weights[examples]  # a weighted subsample's
    return (multilabel_scores if task.kind == "multilabel" else cls_scores)(gold, probs, weights)


SPLIT_FROM = 128  # a request of at least this many examples is cut across the workers


def prediction_shares(sizes: list[int], n: int) -> list[list[tuple[int, slice]]]:
    """Per worker, (request index, slice of its examples): a large request in n strided slices
    (balanced in length; the same slices every round, so each worker's prefix-cache rows stay
    its own), a small one whole to the worker with the least work so far."""
    shares: list[list[tuple[int, slice]]] = [[] for _ in range(n)]
    load = [0] * n
    for j, size in enumerate(sizes):
        if n > 1 and size >= SPLIT_FROM:
            for i in range(n):
                shares[i].append((j, slice(i, None, n)))
                load[i] += len(range(i, size, n))
        else:
            i = load.index(min(load))
            shares[i].append((j, slice(None)))
            load[i] += size
    return shares


class CutEvaluation:
    """One evaluate_many call cut into one predict_batch call per worker: `calls[i]` is
    (ids of the distinct states worker i needs, in order; its (state index, split, examples)
    requests), or None when it has nothing to do. `scores(answers)` merges what the workers
    returned (answers[i] for calls[i]) and scores each request."""

    def __init__(self, task: PreparedTask, requests: list[tuple[dict, str, list | None]], n: int):
        self.task, self.requests = task, requests
        self.examples = [all_examples(task, split, ex) for _, split, ex in requests]
        self.shares = prediction_shares([len(e) for e in self.examples], n)
        self.calls: list[tuple[list[int], list] | None] = []
        for share in self.shares:
            needed = list(dict.fromkeys(id(requests[j][0]) for j, _ in share))
            batch = [(needed.index(id(requests[j][0])), requests[j][1], self.examples[j][part]) for j, part in share]
            self.calls.append((needed, batch) if share else None)

    def scores(self, answers: list[list]) -> list[dict]:
        merged: list[dict] = [{} for _ in self.requests]
        seconds = [0.0] * len(self.requests)
        for share, answer in zip(self.shares, answers):
            for (j, _), (preds, took) in zip(share, answer):
                merged[j].update(preds)
                seconds[j] += took
        return [
            {**score_predictions(self.task, split, self.examples[j], merged[j]), "eval_s": seconds[j]}
            for j, (_, split, _) in enumerate(self.requests)
        ]
