"""The common in-memory form every task loader produces."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

TaskKind = Literal["ner", "cls", "multilabel"]
NO_ENTITY = "O"  # partition label of an NER sentence without entities


@dataclass(frozen=True)
class NerExample:
    """One sentence: whitespace tokens and their IOB2 tags."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    site: str
    doc_id: str

    def entity_types(self) -> list[str]:
        return [t[2:] for t in self.tags if t.startswith("B-")]


@dataclass(frozen=True)
class ClsExample:
    """One document with its label(s); `group` is the patient, for splitting without leakage."""

    text: str
    labels: tuple[str, ...]
    site: str
    doc_id: str
    group: str = ""


Example = NerExample | ClsExample


@dataclass
class TaskData:
    """A task's splits ('train', 'validation', 'test') and the repairs made while loading."""

    task: str
    kind: TaskKind
    label_names: list[str]
    splits: dict[str, list[Example]]
    warnings: Counter = field(default_factory=Counter)
    carved_validation: bool = False  # validation held out from train here, not shipped by the release
    notes: list[str] = field(default_factory=list)  # what a run says before it starts (counts and ids only)

    @property
    def train(self) -> list[Example]:
        return self.splits["train"]

    @property
    def test(self) -> list[Example]:
        return self.splits["test"]

    def partition_labels(self, split: str = "train") -> list[str]:
        """One label per example, the only thing a partitioner sees besides sites.

        NER: the sentence's dominant entity type (most mentions; ties go to the type that is
        rarer in the whole split, then alphabetical), or 'O' for a sentence without entities.
        Multi-label: the example's rarest label in the split, or 'none'.
        Single-label classification: the label itself.
        """
        examples = self.splits[split]
        if self.kind == "cls":
            return [ex.labels[0] for ex in examples]
        totals: Counter = Counter()
        per_example = []
        for ex in examples:
            names = ex.entity_types() if self.kind == "ner" else list(ex.labels)
            per_example.append(Counter(names))
            totals.update(names)
        empty = NO_ENTITY if self.kind == "ner" else "none"
        return [min(c, key=lambda n: (-c[n], totals[n], n)) if c else empty for c in per_example]

    def sites(self, split: str = "train") -> list[str]:
        return [ex.site for ex in self.splits[split]]
