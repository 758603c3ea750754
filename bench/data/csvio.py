"""MIMIC-style CSV tables (.csv or .csv.gz) read with their columns checked."""

from __future__ import annotations

import csv
import gzip
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from bench.data.redact import library_message
from bench.errors import DataError

CHUNK_ROWS = 200_000


FIELD_COUNT = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


def find_table(root: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (root / f"{name}.csv", root / f"{name}.csv.gz"):
        if candidate.is_file():
            return candidate
    if required:
        raise DataError(root, f"no {name}.csv or {name}.csv.gz")
    return None


def _parser_error(path: Path, error: Exception) -> DataError:
    m = re.search(r"line (\d+)", str(error))
    counted = FIELD_COUNT.search(str(error))  # pandas' field count quotes nothing; other messages may quote a row
    message = counted.group(0) if counted else library_message(error)
    return DataError(path, f"malformed CSV: {message}", int(m.group(1)) if m else None)


def read_table(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    """Chunks of the named columns, all as strings; a missing column or bad row is a DataError."""
    try:
        header = pd.read_csv(path, nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, OSError) as e:
        raise _parser_error(path, e) from None
    missing = [c for c in columns if c not in header.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}", 1)
    try:
        yield from pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS)
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise _parser_error(path, e) from None


def record_line(path: Path, record: int) -> int | None:
    """The file line where data record `record` (0-based, in read_table's order) starts: quoted
    fields may span lines (MIMIC's TEXT), and a blank or all-space line, which pandas skips (before
    the header too), is a line but no record. Lines end at "\n" only, as an editor and `sed -n`
    count them: a bare "\r" in a quoted field is text (text mode would end a line there). Read
    only when an error names a record; None where the file ends records at a bare "\r"."""
    opener = gzip.open if path.suffix == ".gz" else open
    limit = csv.field_size_limit(sys.maxsize)  # pandas reads a note of any length; csv stops at 128 KiB
    try:
        with opener(path, "rb") as f:
            reader = csv.reader(line.decode("utf-8", errors="replace") for line in f)
            seen, before = -1, 0  # record -1 is the header
            for row in reader:
                if _is_record(row):
                    if seen == record:
                        return before + 1
                    seen += 1
                before = reader.line_num
    except csv.Error:  # the one left: "new-line character seen in unquoted field", a bare "\r" line end
        return None
    finally:
        csv.field_size_limit(limit)
    raise IndexError(f"{path} has no data record {record}")


def _is_record(row: list[str]) -> bool:
    """What pandas reads as a record: not an empty or all-space line (a quoted "" is one)."""
    return bool(row) and not (len(row) == 1 and row[0] and not row[0].strip())
