"""Corpus statistics: counts and ids only, never text."""

from __future__ import annotations

from collections import Counter

from bench.data.types import TaskData


def split_stats(data: TaskData, split: str) -> dict:
    examples = data.splits[split]
    docs_per_site: dict[str, set[str]] = {}
    for ex in examples:
        docs_per_site.setdefault(ex.site, set()).add(ex.doc_id)
    stats: dict = {"documents": len({(ex.site, ex.doc_id) for ex in examples})}
    if data.kind == "ner":
        counts = Counter({name: 0 for name in data.label_names})
        counts.update(t for ex in examples for t in ex.entity_types())
        stats["sentences"] = len(examples)
        stats["entities"] = dict(sorted(counts.items()))
    else:
        counts = Counter({name: 0 for name in data.label_names})
        counts.update(label for ex in examples for label in ex.labels)
        stats["examples"] = len(examples)
        stats["labels"] = dict(sorted(counts.items()))
    stats["sites"] = {site: len(docs) for site, docs in sorted(docs_per_site.items())}
    return stats


def task_stats(data: TaskData) -> dict:
    """The `stats` object of the contract: one entry per split, plus `warnings`."""
    result: dict = {"task": data.task}
    for split in data.splits:
        result[split] = split_stats(data, split)
    result["warnings"] = {kind: n for kind, n in sorted(data.warnings.items()) if n}
    if data.notes:  # counts and ids only (e.g. the groups in two given splits)
        result["notes"] = list(data.notes)
    return result
