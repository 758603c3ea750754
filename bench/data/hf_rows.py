"""The rows of an `hf:` dataset as the suite's examples, each bad row one error that names its
file and line (or split and row) and never quotes the row's text: a swapped column would put a
note into an error line, and error lines reach failed.json and the report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.data.conll import TAG, repair_bio
from bench.data.redact import TAG_SHAPED, shown
from bench.data.types import ClsExample, NerExample
from bench.errors import BenchError

SITE = "hf"
# a label or site column whose values are nearly all distinct is a text column, not categories
MAX_DISTINCT_CATEGORY_SHARE = 0.5
MIN_ROWS_FOR_DISTINCT_CHECK = 20


def locator(split: str, path: Path | None):
    """Where row i of a split is, as its user sees it: the file's line (after a CSV's header, one
    record a line in JSON lines), a record of a JSON or parquet file, or the split's row."""
    if path is None:
        return lambda i: f"{split} row {i}"
    if path.suffix == ".csv":  # a quoted value spanning lines shifts this: say 'record' as well
        return lambda i: f"{path.name} record {i + 1} (line {i + 2} if no value spans lines)"
    if path.suffix == ".jsonl":
        return lambda i: f"{path.name} line {i + 1}"
    return lambda i: f"{path.name} record {i + 1}"


def missing(value) -> bool:
    """A row without a value: None, an empty string, or the -1 Hugging Face datasets use for unlabelled."""
    return value is None or value == "" or (isinstance(value, int) and not isinstance(value, bool) and value < 0)


def _ner_example(row, columns: dict, names, where: str, warnings: Counter) -> tuple:
    tokens, tags = row[columns["tokens_column"]], row[columns["tags_column"]]
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise BenchError(
            f"{where}: {columns['tokens_column']} and {columns['tags_column']} must be lists "
            "(a CSV cannot hold them: use JSON lines, parquet or save_to_disk)"
        )
    if len(tokens) != len(tags) or any(missing(t) for t in tags):
        raise BenchError(f"{where}: {len(tokens)} tokens, {len(tags)} tags (or a tag missing)")
    tags = [names[t] if names else str(t) for t in tags]
    bad = next((i for i, t in enumerate(tags) if not TAG.match(t)), None)
    if bad is not None:  # a bare word is not quoted: tokens and tags may be swapped
        raise BenchError(
            f"{where}: tag {bad + 1} {shown(tags[bad], TAG_SHAPED)} is not IOB2 (O, B-TYPE, I-TYPE); "
            "convert BIOES or bare types first"
        )
    return tuple(map(str, tokens)), tuple(repair_bio(tags, warnings))  # an I- that opens an entity: B-


def _cls_labels(row, columns: dict, names, where: str) -> tuple:
    raw = row[columns["label_column"]]
    if isinstance(raw, str) and raw.startswith("[") and raw.endswith("]"):  # a list written into a CSV cell
        raise BenchError(
            f"{where}: the label is text shaped like a list: a CSV cannot hold a list of labels "
            "(for multi-label use JSON lines, parquet or save_to_disk)"
        )
    values = raw if isinstance(raw, list) else [raw]
    if missing(raw) or any(missing(v) for v in values) or missing(row[columns["text_column"]]):
        raise BenchError(f"{where}: no label or no text (None, empty, or -1): label and remove unlabelled rows first")
    return tuple(names[v] if names else str(v) for v in values)


def examples(split: str, rows, kind: str, columns: dict, names, warnings: Counter, where_of) -> list:
    """A split's rows as NerExample / ClsExample; `where_of(i)` names row i in errors."""
    out = []
    for i, row in enumerate(rows):
        where = where_of(i)
        site = str(row[columns["site_column"]]) if columns["site_column"] else SITE
        group = row[columns["group_column"]] if columns["group_column"] else ""
        if columns["group_column"] and missing(group):
            raise BenchError(f"{where}: no {columns['group_column']} (every row needs its group, or none does)")
        doc = str(group) or f"{split}-{i}"  # a group is the unit the suite never cuts
        if kind == "ner":
            tokens, tags = _ner_example(row, columns, names, where, warnings)
            out.append(NerExample(tokens, tags, site, doc))
        else:
            labels = _cls_labels(row, columns, names, where)
            out.append(ClsExample(str(row[columns["text_column"]]), labels, site, doc, str(group)))
    return out


def check_categories(values: list, n_rows: int, column: str, role: str) -> None:
    """Refuse a label or site column whose values are nearly all distinct (a text column named in
    its place, by a swap or a typo): its values would become class or site names in every output."""
    if n_rows < MIN_ROWS_FOR_DISTINCT_CHECK:
        return
    distinct = len(set(values))
    if distinct > MAX_DISTINCT_CATEGORY_SHARE * n_rows:
        raise BenchError(
            f"{role} column {column!r} has {distinct} distinct values in {n_rows} training rows: "
            f"a text column, not {role}s? (name the {role} column with --{role}-column)"
        )
