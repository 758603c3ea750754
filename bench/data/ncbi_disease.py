"""`ncbi-disease`: the NCBI disease corpus (Dogan et al. 2014), shipped gzipped with the project
under data/ncbi-disease/ with its public-domain licence. Real PubMed text, CoNLL form, read by
the `conll` loader; its devel.tsv is the validation split. `--data-dir` may point elsewhere.

The CoNLL form drops the abstracts' boundaries; documents.tsv.gz (built from the original
release by data/ncbi-disease/documents.py) gives each sentence its abstract's PubMed id, which
becomes its doc_id (the test bootstrap resamples whole abstracts; a DP unit of `document` is an
abstract). It applies to the shipped files, or to files with the same text; other files keep
the CoNLL loader's one document per file."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from bench.data import conll
from bench.data.registry import register_task
from bench.data.textio import read_text
from bench.data.types import TaskData

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "ncbi-disease"
DOCUMENTS = SHIPPED / "documents.tsv.gz"


def abstract_ids() -> dict[str, list[str]]:
    """split -> the PubMed id of each of its sentences, in file order."""
    ids: dict[str, list[str]] = {}
    for row in csv.DictReader(read_text(DOCUMENTS).splitlines(), delimiter="\t"):
        ids.setdefault(row["split"], []).append(row["pmid"])
    return ids


def same_release(root: Path) -> bool:
    """Whether the CoNLL files in `root` hold the shipped text (gzipped or not)."""
    if root.resolve() == SHIPPED:  # the usual case: nothing to compare
        return True
    for name in conll.SPLIT_FILES.values():
        mine, shipped = conll.split_file(root, name), conll.split_file(SHIPPED, name)
        if mine is None or shipped is None or read_text(mine) != read_text(shipped):
            return False
    return True


@register_task(
    "ncbi-disease",
    kind="ner",
    synth_subdir=None,
    bundled=SHIPPED,
    split_rule="train, devel and test files",
)
def load(root: Path) -> TaskData:
    data = conll.load(root, task="ncbi-disease")
    if not (DOCUMENTS.is_file() and same_release(root)):
        return data
    ids = abstract_ids()
    for split, name in conll.SPLIT_FILES.items():
        pmids = ids[name.split(".")[0]]
        data.splits[split] = [
            dataclasses.replace(ex, doc_id=pmid) for ex, pmid in zip(data.splits[split], pmids, strict=True)
        ]
    return data
