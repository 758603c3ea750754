"""What an error or warning may quote from the data. Errors reach stderr, each failed cell's
failed.json and the report, so a value read from a file is quoted only when it has the shape of
an id, a code or a tag (no whitespace, short); anything else is named by its length: a
shifted column, a swapped one or a typo in an annotation would otherwise put a note's words there.
"""

from __future__ import annotations

import re

ID_SHAPED = re.compile(r"^[\w.:/#-]{1,40}$")  # a site, a file stem, a record or patient id, a code
TAG_SHAPED = re.compile(r"^(O|[BIESLU]-[A-Za-z_]{1,30})$")  # an IOB / BIOES tag
NUMBER_SHAPED = re.compile(r"^-?[0-9.]{1,12}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")  # a column name as headers spell them
ROW_OR_LINE = re.compile(r"\b(?:row|line|record)s? \d+", re.I)


def shown(value, shape: re.Pattern = ID_SHAPED) -> str:
    """repr(value) where it has `shape`, else its length alone."""
    text = str(value)
    return repr(text) if shape.match(text) else f"(a value of {len(text)} characters, not quoted: it may be text)"


def shown_all(values, limit: int = 5) -> str:
    """Up to `limit` values, each as `shown` quotes it."""
    values = list(values)
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(shown(v) for v in values[:limit]) + more


def library_message(error: Exception) -> str:
    """A parser's own error message reduced to its type and the row or line it names: the
    message itself may quote the offending row (pyarrow does)."""
    where = ROW_OR_LINE.search(str(error))
    return type(error).__name__ + (f" at {where.group(0)}" if where else "")
