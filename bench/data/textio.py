"""Reading data files with errors that name the file."""

from __future__ import annotations

import gzip
from pathlib import Path

from bench.errors import DataError


def read_text(path: Path) -> str:
    """UTF-8 text (gzipped when the name ends in .gz) with universal newlines; undecodable or
    corrupt bytes are a DataError naming the file (and line)."""
    raw = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:  # gzip's message quotes the file's first bytes
            raise DataError(path, f"not a valid gzip file ({type(e).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8 text (byte {e.start})", line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
