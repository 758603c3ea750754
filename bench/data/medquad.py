"""`medquad`: the suite's real-text classification task, shipped gzipped under data/medquad/ with
its CC BY 4.0 licence. MedQuAD (Ben Abacha and Demner-Fushman 2019): question-answer pairs from
nine NIH websites (cancer.gov, GARD, GHR, NIDDK, NINDS, ...); the task is the type of question
an answer answers (15 types, from `information` 4,472 to `complications` 46: natural imbalance),
scored by macro-F1. Consumer-health text written for the public: no patient text.

The release ships no split. Pairs about one focus (a disease, gene or drug, lower-cased) stay
in one split, by a stable hash of the focus (20% test, 10% validation), so no topic's pages
are in both train and test; the focus is each example's document (DP units, test bootstrap).
The website is the site (`--partition site`: nine natural clients with strong label skew).
data/medquad/build.py rebuilds the file from the release.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from bench.data.redact import library_message, shown
from bench.data.registry import register_task
from bench.data.splitting import split_of
from bench.data.types import ClsExample, TaskData
from bench.errors import DataError

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "medquad"
FILE = "medquad.tsv.gz"
COLUMNS = ["source", "document", "focus", "qtype", "answer"]


@register_task(
    "medquad",
    kind="cls",
    synth_subdir=None,
    bundled=SHIPPED,
    split_rule=f"{FILE}, split by a stable hash of each pair's focus (20% test, 10% validation)",
)
def load(root: Path) -> TaskData:
    path = Path(root) / FILE
    if not path.is_file():
        raise DataError(root, f"no {FILE} (the shipped copy is in {SHIPPED})")
    splits: dict[str, list[ClsExample]] = {"train": [], "validation": [], "test": []}
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header != COLUMNS:
                raise DataError(path, f"expected the columns {', '.join(COLUMNS)}, {_header_found(header)}", 1)
            for line, row in enumerate(reader, start=2):
                if len(row) != len(COLUMNS) or not all(row):
                    raise DataError(path, f"expected {len(COLUMNS)} non-empty tab-separated fields", line)
                source, _, focus, qtype, answer = row
                splits[split_of(f"focus:{focus}")].append(ClsExample(answer, (qtype,), source, focus))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(path, f"not a readable gzipped TSV ({library_message(e)})") from None
    labels = sorted({ex.labels[0] for ex in splits["train"]})
    return TaskData("medquad", "cls", labels, splits)


def _header_found(header: list[str] | None) -> str:
    """What the first line holds instead, quoting only id-shaped names: a file without its header
    line has an answer there."""
    if header is None:
        return "found an empty file"
    wrong = next((i for i, (a, b) in enumerate(zip(header, COLUMNS)) if a != b), min(len(header), len(COLUMNS)))
    return f"found {len(header)} columns" + (
        f", column {wrong + 1} {shown(header[wrong])}" if wrong < len(header) else ""
    )
