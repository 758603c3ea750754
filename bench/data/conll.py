"""CoNLL-style NER: one `token<TAB>tag` per line, a blank line between sentences.

A folder with `train.tsv`, `test.tsv` and optionally `devel.tsv` (each may be gzipped, `.tsv.gz`);
`devel.tsv` is the task's validation split (without it, 10% of the training documents are held
out, see bench.data.splitting). Tags are IOB2; an `I-X` that
does not continue an entity of type X is repaired to `B-X` and counted. `-DOCSTART-` lines
separate documents; a file without them counts as one document. There are no sites: every
sentence's site is `conll`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.data.redact import TAG_SHAPED, shown
from bench.data.registry import register_task
from bench.data.textio import read_text
from bench.data.types import NerExample, TaskData
from bench.errors import DataError

TAG = re.compile(r"^(O|[BI]-\S+)$")
SPLIT_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
SITE = "conll"


def repair_bio(tags: list[str], warnings: Counter) -> list[str]:
    fixed = []
    for i, tag in enumerate(tags):
        prev = fixed[i - 1] if i else "O"
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            warnings["bio_repaired"] += 1
            tag = "B-" + tag[2:]
        fixed.append(tag)
    return fixed


def read_file(path: Path, warnings: Counter) -> list[NerExample]:
    """The sentences of one file; doc_id says which -DOCSTART- document each is from."""
    examples: list[NerExample] = []
    tokens: list[str] = []
    tags: list[str] = []
    doc = 0

    def flush():
        if tokens:
            examples.append(
                NerExample(tuple(tokens), tuple(repair_bio(tags, warnings)), SITE, f"{path.name.split('.')[0]}-{doc}")
            )
            tokens.clear()
            tags.clear()

    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            flush()
            continue
        fields = line.rstrip().split("\t")
        if fields[0].startswith("-DOCSTART-"):
            flush()
            doc += 1
            continue
        if len(fields) < 2 or not fields[0]:
            raise DataError(path, "expected token<TAB>tag", lineno)
        if not TAG.match(fields[-1]):
            raise DataError(path, f"not an IOB2 tag: {shown(fields[-1], TAG_SHAPED)}", lineno)
        tokens.append(fields[0])
        tags.append(fields[-1])
    flush()
    return examples


def split_file(root: Path, name: str) -> Path | None:
    """`name` or `name.gz` in `root`, whichever exists."""
    return next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), None)


@register_task(
    "conll",
    kind="ner",
    synth_subdir=None,
    split_rule="train.tsv, devel.tsv and test.tsv (without devel.tsv, validation: 10% of the training documents of each site that has at least 2)",
)
def load(root: Path, task: str = "conll") -> TaskData:
    warnings: Counter = Counter()
    splits: dict[str, list[NerExample]] = {}
    for split, name in SPLIT_FILES.items():
        path = split_file(root, name)
        if path is None:
            if split == "validation":
                continue
            raise DataError(root, f"no {name} (a conll folder needs train.tsv and test.tsv, optionally gzipped)")
        splits[split] = read_file(path, warnings)
    labels = sorted({t[2:] for exs in splits.values() for ex in exs for t in ex.tags if t != "O"})
    return TaskData(task, "ner", labels, splits, warnings)
