"""i2b2 2010 concept extraction (problem, test, treatment) in its release layout.

Reads either the release tree

    concept_assertion_relation_training_data/<site>/{txt,concept}/   (site: beth, partners, ...)
    test_data/*.txt + reference_standard_for_test_data/concepts/*.con

or a flat `txt/` + `concept/` pair (then documents are split 70/10/20 into train/validation/test
by a stable hash of the file name). The release tree's validation set is 10% of the training
documents of each site (bench.data.splitting). A `.con` line is `c="text" L:T L:T||t="type"`: L counts file lines from
1 (blank lines count), T counts whitespace tokens from 0, and the end is inclusive.

Repairs, each counted in `warnings`: duplicate concept lines; overlapping spans (the outer one
is kept); end (or start) tokens off by one or two, found by matching the `c=` text; an end past
the line's last token; case differences between `c=` and the text (counted, not an error).

Training sites are the folder names. Test documents carry no folder, so their site comes from
the file name: `record-N` is beth, `NNNNNN_XX` partners, `NNNN` upmc, anything else `unknown`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.data.layouts import I2B2_2010_TEST_CON_DIR as TEST_CON_DIR
from bench.data.layouts import I2B2_2010_TEST_TXT_DIR as TEST_TXT_DIR
from bench.data.layouts import I2B2_2010_TRAIN_DIR as TRAIN_DIR
from bench.data.registry import register_task
from bench.data.spans import Span, bio_tags, resolve_spans
from bench.data.splitting import split_of
from bench.data.textio import read_text
from bench.data.types import NerExample, TaskData
from bench.errors import DataError

CONCEPT_TYPES = ("problem", "test", "treatment")
CON_LINE = re.compile(r'^c="(?P<text>.*)" (?P<l1>\d+):(?P<t1>\d+) (?P<l2>\d+):(?P<t2>\d+)\|\|t="(?P<type>[^"]*)"$')
TEST_SITE_PATTERNS = (
    (re.compile(r"^record-\d+$"), "beth"),
    (re.compile(r"^\d+_[A-Za-z]+$"), "partners"),
    (re.compile(r"^\d+$"), "upmc"),
)


def site_from_name(stem: str) -> str:
    return next((site for rx, site in TEST_SITE_PATTERNS if rx.match(stem)), "unknown")


def parse_con(path: Path) -> list[tuple[int, Span, str]]:
    """(line number, span, c= text) for each concept line; a malformed line is a DataError."""
    concepts = []
    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        m = CON_LINE.match(line)
        if not m:
            raise DataError(path, 'not a concept line: expected c="..." L:T L:T||t="..."', lineno)
        label = m["type"].lower()
        if label not in CONCEPT_TYPES:
            raise DataError(
                path,
                f"unknown concept type of {len(m['type'])} characters, not quoted (not one of {', '.join(sorted(CONCEPT_TYPES))})",
                lineno,
            )
        if m["l1"] != m["l2"]:
            raise DataError(path, "concept spans more than one line", lineno)
        span = Span(int(m["t1"]), int(m["t2"]), label)
        if span.end < span.start:
            raise DataError(path, "concept ends before it starts", lineno)
        concepts.append((int(m["l1"]), span, m["text"]))
    return concepts


def align(tokens: list[str], span: Span, text: str, warnings: Counter) -> Span | None:
    """Check a span against its c= text; repair offsets up to two tokens off."""
    words = text.split()
    lowered = [t.lower() for t in tokens]
    if span.end < len(tokens) and lowered[span.start : span.end + 1] == [w.lower() for w in words]:
        if tokens[span.start : span.end + 1] != words:
            warnings["case_mismatch"] += 1
        return span
    width = len(words)
    for shift in (0, -1, 1, -2, 2):
        start = span.start + shift
        if start >= 0 and lowered[start : start + width] == [w.lower() for w in words]:
            warnings["offset_repaired"] += 1
            return Span(start, start + width - 1, span.label)
    if span.start < len(tokens):  # text disagrees, offsets are the annotation: clamp the end
        if span.end >= len(tokens):
            warnings["offset_repaired"] += 1
            return Span(span.start, len(tokens) - 1, span.label)
        warnings["concept_text_mismatch"] += 1
        return span
    warnings["unrepairable_concept_dropped"] += 1
    return None


def read_document(txt: Path, con: Path, site: str, warnings: Counter) -> list[NerExample]:
    lines = [line.split() for line in read_text(txt).split("\n")]
    per_line: dict[int, list[Span]] = {}
    for lineno, span, text in parse_con(con):
        if lineno > len(lines):
            warnings["unrepairable_concept_dropped"] += 1
            continue
        fixed = align(lines[lineno - 1], span, text, warnings)
        if fixed is not None:
            per_line.setdefault(lineno, []).append(fixed)
    return [
        NerExample(
            tuple(tokens), tuple(bio_tags(len(tokens), resolve_spans(per_line.get(i, []), warnings))), site, txt.stem
        )
        for i, tokens in enumerate(lines, start=1)
        if tokens
    ]


def read_pairs(txt_dir: Path, con_dir: Path) -> list[tuple[Path, Path]]:
    txts = sorted(txt_dir.glob("*.txt"))
    if not txts:
        raise DataError(txt_dir, "no .txt files")
    pairs = []
    for txt in txts:
        con = con_dir / f"{txt.stem}.con"
        if not con.is_file():
            raise DataError(txt, f"no concept file {con}")
        pairs.append((txt, con))
    return pairs


@register_task(
    "i2b2-2010",
    kind="ner",
    synth_subdir="i2b2-2010",
    split_rule="the release's training and test folders, validation: 10% of the training documents of each site that has at least 2 (a flat txt/ + concept/ folder: a stable hash of each document, 70/10/20)",
)
def load(root: Path) -> TaskData:
    warnings: Counter = Counter()
    splits: dict[str, list[NerExample]] = {"train": [], "test": []}  # validation: carved by load_task
    if (root / TRAIN_DIR).is_dir():
        site_dirs = sorted(d for d in (root / TRAIN_DIR).iterdir() if (d / "txt").is_dir())
        if not site_dirs:
            raise DataError(root / TRAIN_DIR, "no <site>/txt folders")
        for site_dir in site_dirs:
            for txt, con in read_pairs(site_dir / "txt", site_dir / "concept"):
                splits["train"] += read_document(txt, con, site_dir.name, warnings)
        for txt, con in read_pairs(root / TEST_TXT_DIR, root / TEST_CON_DIR):
            splits["test"] += read_document(txt, con, site_from_name(txt.stem), warnings)
    elif (root / "txt").is_dir() and (root / "concept").is_dir():
        splits["validation"] = []
        for txt, con in read_pairs(root / "txt", root / "concept"):
            splits[split_of(txt.stem)] += read_document(txt, con, site_from_name(txt.stem), warnings)
    else:
        raise DataError(root, f"not an i2b2 2010 folder: expected {TRAIN_DIR}/ or txt/ + concept/")
    return TaskData("i2b2-2010", "ner", list(CONCEPT_TYPES), splits, warnings)
