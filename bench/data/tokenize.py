"""Tokenization for NER (first sub-word labelled, the rest ignored) and classification.

Works the same for WordPiece (BERT) and byte-level BPE (LLaMA, GPT-2) tokenizers: each word is
encoded on its own with a leading space where the tokenizer is space-sensitive, so sub-words
never straddle words. Sentences longer than the model's window are split into chunks, at word
boundaries and preferably outside entities, never silently cut.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.data.types import ClsExample, NerExample

IGNORE = -100  # the label PyTorch's cross-entropy skips


@dataclass
class Encoded:
    """Model inputs for one split. For NER, `owner[i]` = (example index, first word) of chunk i."""

    input_ids: list[list[int]]  # or the same rows memory-mapped (bench.data.arrow_rows)
    labels: list  # NER: per-token ids with IGNORE; cls: int; multilabel: list[float]
    owner: list[tuple[int, int]] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.input_ids)

    def in_memory(self) -> Encoded:
        """A copy whose rows are plain lists (for a process that cannot map the token cache's files)."""
        return Encoded(list(self.input_ids), list(self.labels), self.owner, self.warnings)


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a sequence ([CLS]/[SEP], <s>, or none)."""
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i], full[i + len(plain) :]
    return [], []


class WordEncoder:
    """Sub-word ids per word, cached: clinical corpora repeat words a lot."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        a = tokenizer("a", add_special_tokens=False)["input_ids"]
        self.space = tokenizer(" a", add_special_tokens=False)["input_ids"] != a
        self.fallback = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
        self.cache: dict[str, list[int]] = {}

    def encode(self, words: list[str]) -> list[list[int]]:
        new = list(dict.fromkeys(w for w in words if w not in self.cache))
        if new:
            texts = [" " + w if self.space else w for w in new]
            for word, ids in zip(new, self.tokenizer(texts, add_special_tokens=False)["input_ids"]):
                self.cache[word] = ids or [self.fallback]
        return [self.cache[w] for w in words]


def chunk_bounds(pieces: list[list[int]], tags: tuple[str, ...] | None, budget: int) -> list[tuple[int, int]]:
    """Word ranges [a, b) whose pieces fit the budget. With `tags` (training data only) cuts
    avoid the inside of an entity; evaluation text is cut without looking at its labels."""
    bounds, start = [], 0
    while start < len(pieces):
        end, used = start, 0
        while end < len(pieces) and used + min(len(pieces[end]), budget) <= budget:
            used += min(len(pieces[end]), budget)
            end += 1
        if end < len(pieces):
            cut = end
            while tags is not None and cut > start + 1 and tags[cut].startswith("I-"):
                cut -= 1
            end = cut if cut > start else end
        bounds.append((start, max(end, start + 1)))
        start = bounds[-1][1]
    return bounds


def encode_ner(
    examples: list[NerExample], tokenizer, label_ids: dict[str, int], max_length: int, cut_outside_entities: bool = True
) -> Encoded:
    """Sub-word ids and first-sub-word labels; long sentences become several rows (counted in
    `warnings`). `cut_outside_entities` reads the gold tags to place cuts: training data only."""
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    words = WordEncoder(tokenizer)
    out = Encoded([], [])
    for idx, ex in enumerate(examples):
        pieces = words.encode(list(ex.tokens))
        bounds = chunk_bounds(pieces, ex.tags if cut_outside_entities else None, budget)
        out.warnings["sentence_split"] += max(len(bounds) - 1, 0)  # an empty sentence has no rows, not -1
        out.warnings["sentences_split"] += len(bounds) > 1
        for a, b in bounds:
            ids, labels = list(prefix), [IGNORE] * len(prefix)
            for w in range(a, b):
                word_ids = pieces[w][:budget]
                out.warnings["word_truncated"] += len(pieces[w]) > budget
                ids += word_ids
                labels += [label_ids[ex.tags[w]]] + [IGNORE] * (len(word_ids) - 1)
            out.input_ids.append(ids + suffix)
            out.labels.append(labels + [IGNORE] * len(suffix))
            out.owner.append((idx, a))
    return out


def encode_cls(
    examples: list[ClsExample], tokenizer, label_names: list[str], max_length: int, multilabel: bool
) -> Encoded:
    """Documents truncated to the window (classification of long notes reads their start)."""
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    index = {name: i for i, name in enumerate(label_names)}
    texts = [ex.text for ex in examples]
    full = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    ids = [x[:budget] for x in full]
    warnings = Counter(documents_truncated=sum(len(x) > budget for x in full))
    if multilabel:
        labels = [[1.0 if n in ex.labels else 0.0 for n in label_names] for ex in examples]
    else:
        labels = [index[ex.labels[0]] for ex in examples]
    return Encoded([prefix + x + suffix for x in ids], labels, warnings=warnings)


def bio_label_ids(entity_types: list[str]) -> dict[str, int]:
    """O, then B-/I- for each type, in a fixed order."""
    names = ["O"] + [f"{p}-{t}" for t in entity_types for p in ("B", "I")]
    return {name: i for i, name in enumerate(names)}
