"""The columns of an `hf:` dataset: what kind of task they make (tokens beside tags: NER; text
beside a label: classification, beside a list of labels: multi-label), and one-line errors that
name the columns present without quoting a header-less file's first record."""

from __future__ import annotations

from bench.data.redact import IDENTIFIER
from bench.errors import BenchError


def feature_names(feature) -> list[str] | None:
    """The label names of a ClassLabel (or a sequence of them), else None."""
    inner = getattr(feature, "feature", feature)
    return list(inner.names) if hasattr(inner, "names") else None


def task_kind(columns: dict, features) -> str:
    present = list(features)
    if columns["tokens_column"] in features and columns["tags_column"] in features:
        return "ner"
    if columns["text_column"] in features and columns["label_column"] in features:
        label = features[columns["label_column"]]
        is_list = type(label).__name__ in ("Sequence", "List", "LargeList") or isinstance(label, list)
        return "multilabel" if is_list else "cls"
    raise BenchError(
        f"no NER columns ({columns['tokens_column']} + {columns['tags_column']}) and no classification "
        f"columns ({columns['text_column']} + {columns['label_column']}); columns present: {_column_list(present)} "
        "(name them with --tokens-column/--tags-column or --text-column/--label-column)"
    )


def require_column(features, name: str | None, what: str) -> None:
    if name is not None and name not in features:
        raise BenchError(f"no {what} column {name!r}; columns present: {_column_list(features)}")


def _column_list(names) -> str:
    """The columns present, named only when every name has an identifier's shape (text, label,
    patient_id): a CSV without its header row has its first record's cells there, and one of
    them not so shaped (a number, a phrase) says so; only the count is given then."""
    names = list(names)
    if all(IDENTIFIER.match(n) for n in names):
        return ", ".join(names)
    return f"{len(names)} columns, not named (the first row does not look like a header: no header row?)"
