"""What the test bootstrap resamples: each test example's group, the largest unit the release
records (a patient, else a document), else the example itself. Items of one group are not
independent draws (sentences of one abstract, notes of one patient), so a bootstrap that
resamples them one by one is too narrow."""

from __future__ import annotations

import functools

from bench.data.registry import TASKS


def bootstrap_groups(examples: list) -> dict:
    """{"unit": patient | document | example, "groups": [int per test example]}."""
    for unit, key in (("patient", lambda ex: getattr(ex, "group", "")), ("document", lambda ex: ex.doc_id)):
        ids = [key(ex) for ex in examples]
        if all(ids) and len(set(ids)) > 1:
            index = {u: i for i, u in enumerate(dict.fromkeys(ids))}
            return {"unit": unit, "groups": [index[u] for u in ids]}
    return {"unit": "example", "groups": list(range(len(examples)))}


@functools.cache
def shipped_test_groups(task: str) -> dict | None:
    """The groups of a shipped corpus's test split as its files record them now (None for a task
    that ships none): they hold for every run on those files, whenever it was stored."""
    spec = TASKS.get(task) if task in TASKS else None
    if spec is None or spec.bundled is None:
        return None
    return bootstrap_groups(spec.load(spec.bundled).splits["test"])
