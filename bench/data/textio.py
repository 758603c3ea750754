"""Reading data files with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from bench.errors import DataError


def read_text(path: Path) -> str:
    """UTF-8 text with universal newlines; undecodable bytes are a DataError naming the line."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8 text (byte {e.start})", line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
