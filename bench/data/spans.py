"""Token spans -> IOB2 tags, with the repairs shared by the NER loaders."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple


class Span(NamedTuple):
    start: int  # first token, inclusive
    end: int  # last token, inclusive
    label: str


def resolve_spans(spans: list[Span], warnings: Counter) -> list[Span]:
    """Drop exact duplicates, then keep the outer span of every overlap (longest first)."""
    unique = list(dict.fromkeys(spans))
    warnings["duplicate_concept"] += len(spans) - len(unique)
    kept: list[Span] = []
    for span in sorted(unique, key=lambda s: (-(s.end - s.start), s.start, s.label)):
        if any(span.start <= k.end and k.start <= span.end for k in kept):
            warnings["overlapping_span_dropped"] += 1
            continue
        kept.append(span)
    return sorted(kept)


def bio_tags(n_tokens: int, spans: list[Span]) -> list[str]:
    """IOB2 tags for non-overlapping spans."""
    tags = ["O"] * n_tokens
    for span in spans:
        tags[span.start] = f"B-{span.label}"
        for i in range(span.start + 1, span.end + 1):
            tags[i] = f"I-{span.label}"
    return tags
