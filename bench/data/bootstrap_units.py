"""What the test bootstrap resamples: each test example's group, the largest unit the release
records (a patient, else a document), else contiguous blocks where the task names a block size
(sentences of one abstract are neighbours), else the example itself. Items of one group are
not independent draws, so a bootstrap that resamples them one by one is too narrow."""

from __future__ import annotations


def blocks(n: int, size: int) -> dict:
    return {"unit": f"block of {size}", "groups": [i // size for i in range(n)]}


def bootstrap_groups(examples: list, test_block: int = 0) -> dict:
    """{"unit": patient | document | block of K | example, "groups": [int per test example]}."""
    for unit, key in (("patient", lambda ex: getattr(ex, "group", "")), ("document", lambda ex: ex.doc_id)):
        ids = [key(ex) for ex in examples]
        if all(ids) and len(set(ids)) > 1:
            index = {u: i for i, u in enumerate(dict.fromkeys(ids))}
            return {"unit": unit, "groups": [index[u] for u in ids]}
    if test_block > 1:
        return blocks(len(examples), test_block)
    return {"unit": "example", "groups": list(range(len(examples)))}
