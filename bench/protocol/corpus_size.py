"""How many examples, encoded rows and tokens each split of a task holds, estimated from its
words for `--plan` (bench.protocol.plan) without tokenizing: a NER sentence longer than the
window is several rows, a classification document one truncated row."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from bench.data import load_task
from bench.synth.cache import data_dir_for

TOKENS_PER_WORD = 1.3  # sub-words per whitespace word, for clinical English with BPE/WordPiece


@dataclass(frozen=True)
class SplitSize:
    examples: int
    rows: int  # encoded rows: a NER sentence longer than the window is several (bench.data.tokenize)
    tokens: int


def encoded_size(words: int, max_length: int, chunked: bool) -> tuple[int, int]:
    """(rows, tokens) one example of `words` words is estimated to encode to: its sub-words, cut
    into windows of max_length less the two special tokens each (NER's chunks), or truncated to
    one window (classification's documents)."""
    pieces = math.ceil(TOKENS_PER_WORD * words)
    if not chunked:
        return 1, min(max_length, pieces + 2)
    rows = max(1, math.ceil(pieces / (max_length - 2)))
    return rows, pieces + 2 * rows


@functools.cache
def corpus_tokens(
    task: str, data_dir: str | None, max_length: int, label_level: str | None, columns: tuple = ()
) -> dict[str, SplitSize]:
    """Per split: its examples, and the rows and tokens they are estimated to encode to."""
    options = {"label_level": label_level} if label_level else {}
    data = load_task(task, data_dir_for(task, data_dir), **options, **dict(columns))
    out = {}
    for split, examples in data.splits.items():
        sizes = [
            encoded_size(len(ex.tokens), max_length, True)
            if hasattr(ex, "tokens")
            else encoded_size(len(ex.text.split()), max_length, False)
            for ex in examples
        ]
        out[split] = SplitSize(len(examples), sum(r for r, _ in sizes), sum(t for _, t in sizes))
    return out
