"""Token spans <-> IOB2 tags: the repairs shared by the NER loaders, and the spans read back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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


def iob2_spans(tags: Sequence[str]) -> list[Span]:
    """Strict IOB2 entities, in order (bio_tags read back): a span opens at B-X and runs over the
    I-X right after it. Malformed IOB2 is read as seqeval's strict mode (the suite's metric) reads
    it: an I- that continues no open span of its own type (first, after O, after another type)
    belongs to no span, and ends the one open before it."""
    out: list[Span] = []
    start, label = None, ""
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and tag != f"I-{label}":
            out.append(Span(start, i - 1, label))
            start = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return out
