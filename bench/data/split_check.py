"""Every split checked once, after loading, carving and subsampling, before a model is built: an
empty split, or one whose metric cannot tell two models apart, ends the run with one line naming
the task, the split, the counts that led there, and what to add.

The rules, per metric (bench.metrics):
- entity micro-F1 (NER): a validation or test split with no gold entity scores 0 whatever the
  model predicts, so it is an error.
- macro-F1 and AUROC (classification): a validation or test split whose examples all share one
  label leaves AUROC undefined and macro-F1 unable to rank models beyond the majority class: an
  error.
- macro-F1 over labels (multi-label): a split with no positive label at all scores 0 for every
  model: an error. Labels absent from a split count as 0 in the mean (defined, if harsh).
The training split only needs examples: a model may train on sentences without entities."""

from __future__ import annotations

from collections import Counter

from bench.data.redact import shown
from bench.data.registry import TaskSpec
from bench.data.types import TaskData
from bench.errors import BenchError

SCORED = ("validation", "test")


def check_splits(data: TaskData, spec: TaskSpec) -> None:
    """Raise BenchError (one line) for the first split that is empty or cannot be scored."""
    for split in ("train", *SCORED):
        if not data.splits[split]:
            raise BenchError(
                f"task {data.task}: the {split} split is empty ({_counts(data)}); {_empty_fix(data, spec, split)}"
            )
    for split in SCORED:
        why = _unscorable(data, split)
        if why:
            raise BenchError(f"task {data.task}: the {split} split {why}")


def _counts(data: TaskData) -> str:
    parts = []
    for split, examples in data.splits.items():
        docs = len({(ex.site, ex.doc_id) for ex in examples})
        parts.append(f"{split} {len(examples)} examples from {docs} documents")
    return ", ".join(parts)


def _empty_fix(data: TaskData, spec: TaskSpec, split: str) -> str:
    rule = f"splits come from {spec.split_rule}" if spec.split_rule else "the release gave none"
    if split == "validation" and data.carved_validation:
        per_site = Counter(site for site, _ in {(ex.site, ex.doc_id) for ex in data.splits["train"]})
        sites = ", ".join(f"{shown(site)} {n}" for site, n in sorted(per_site.items()))
        return f"{rule}, and the training documents per site are {sites}: add training documents or a validation file"
    return f"{rule}: add {split} documents to the release (or check --data-dir)"


def _unscorable(data: TaskData, split: str) -> str | None:
    examples = data.splits[split]
    if data.kind == "ner":
        if not any(ex.entity_types() for ex in examples):
            return (
                f"has no entity in its {len(examples)} sentences: entity F1 is 0 whatever a model predicts; "
                "add annotated documents"
            )
        return None
    labels = Counter(label for ex in examples for label in ex.labels)
    if data.kind == "cls" and len(labels) < 2:
        (only,) = labels or {"none": 0}
        return (
            f"has one class only (all {len(examples)} examples are {shown(only)}): macro-F1 and AUROC cannot rank models; "
            "add examples of another class"
        )
    if data.kind == "multilabel" and not labels:
        return f"has no positive label in its {len(examples)} examples: macro-F1 is 0 for every model; add labelled examples"
    return None
