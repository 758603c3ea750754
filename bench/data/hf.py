"""`--task hf:SOURCE`: any corpus a user has as a Hugging Face dataset, read with `datasets`.

SOURCE is a `save_to_disk` folder, a folder of data files named by split (train, validation or
dev, test; .csv, .json, .jsonl or .parquet), or a dataset id already in the local cache (nothing
is downloaded). The kind follows the columns: tokens beside a sequence of tags (ClassLabel, or
IOB2 strings) is NER; text beside a ClassLabel, integer or string label is classification, beside
a list of labels multi-label. `--text-column` and the like name other columns; `--group-column`
(a patient or document id) keeps a group whole wherever the suite cuts (the validation split,
DP units); `--site-column` names each example's hospital (for `--partition site`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from collections import Counter
from pathlib import Path

from bench.config import SOURCE_FINGERPRINTS
from bench.data.hf_columns import feature_names, require_column, task_kind
from bench.data.hf_rows import check_categories, examples, locator
from bench.data.redact import library_message, shown_all
from bench.data.registry import TASKS, TaskSpec
from bench.data.types import TaskData
from bench.errors import BenchError

COLUMN_DEFAULTS = {
    "tokens_column": "tokens",
    "tags_column": "ner_tags",
    "text_column": "text",
    "label_column": "label",
    "site_column": None,
    "group_column": None,
}
SPLIT_NAMES = {"train": "train", "validation": "validation", "dev": "validation", "test": "test"}
FILE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def add_column_flags(parser) -> None:
    """The column flags, the same on bench.run, bench.data stats and partitions show."""
    for name, default in COLUMN_DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, default=None, help=f"hf: tasks: the {name.split('_')[0]} column (default {default})")


def column_options(settings) -> dict:
    """The column settings given (a config, an argparse namespace or a dict), for load_task."""
    get = settings.get if isinstance(settings, dict) else (lambda k: getattr(settings, k, None))
    return {k: get(k) for k in COLUMN_DEFAULTS if get(k) is not None}


def _data_files(folder: Path, source: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.stem in SPLIT_NAMES and p.suffix in FILE_FORMATS:
            split = SPLIT_NAMES[p.stem]
            if split in files:
                raise BenchError(f"hf:{source}: two files for the {split} split ({files[split].name}, {p.name})")
            files[split] = p
    return files


def _read_files(files: dict[str, Path], source: str):
    """Data files parsed afresh (a private cache: `datasets` would key its own on modification
    times, and serve an edited file's old rows); an unreadable file is one line naming it."""
    import datasets

    formats = {FILE_FORMATS[p.suffix] for p in files.values()}
    if not files or len(formats) != 1:
        raise BenchError(
            f"hf:{source}: not a save_to_disk folder, and no data files of one format named train, "
            "validation (or dev) and test (.csv, .json, .jsonl or .parquet)"
        )
    found = {}
    datasets.utils.logging.set_verbosity(datasets.utils.logging.CRITICAL)  # our one line, not its log lines too
    with tempfile.TemporaryDirectory() as cache:
        for split, path in files.items():
            if _no_rows(path):
                raise BenchError(f"hf:{source}: {path.name}: no rows (the {split} split)")
            try:
                found[split] = datasets.load_dataset(
                    FILE_FORMATS[path.suffix],
                    data_files=str(path),
                    split="train",
                    cache_dir=cache,
                    keep_in_memory=True,
                )
            except Exception as e:  # datasets' parser errors: one line, naming the file, never its row
                raise BenchError(
                    f"hf:{source}: {path.name}: not readable as {FILE_FORMATS[path.suffix]} "
                    f"({library_message(e.__cause__ or e)})"
                ) from None
    return datasets.DatasetDict(found)


def _no_rows(path: Path) -> bool:
    """A text data file without a record: empty, or a CSV's header alone."""
    if path.suffix == ".parquet":
        return False
    needed = 2 if path.suffix == ".csv" else 1  # a CSV's header, then a record
    with open(path, errors="replace") as f:
        found = 0
        for line in f:
            found += bool(line.strip())
            if found >= needed:
                return False
    return True


def _load_saved(path: Path, source: str):
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except Exception as e:  # an empty split, a missing or damaged file: datasets' own exceptions
        raise BenchError(
            f"hf:{source}: a save_to_disk folder datasets cannot read ({type(e).__name__}: an empty split, "
            "or a file missing or damaged?)"
        ) from None
    if {"validation", "dev"} <= set(data):
        raise BenchError(f"hf:{source}: both a dev and a validation split")
    return data


def _saved(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file()


def open_source(source: str):
    """The DatasetDict SOURCE names, or one clear error."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(source)
    if path.is_dir() and _saved(path):
        return _load_saved(path, source)
    if path.is_dir() and (path / "state.json").is_file():
        raise BenchError(f"hf:{source}: one saved Dataset; save a DatasetDict with train and test splits")
    if path.is_dir():
        return _read_files(_data_files(path, source), source)
    if path.is_file():
        raise BenchError(f"hf:{source}: a file; name the folder that holds train, validation and test files")
    import huggingface_hub.constants

    # a cached id only, never a download, whatever the environment says: `datasets` checks its
    # own flag, and the hub client (which some ids, e.g. buckets/, reach directly) its own
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(source)
    except Exception:
        raise BenchError(f"hf:{source}: no such folder, and not a dataset in the local Hugging Face cache") from None


@functools.cache
def _fingerprint(source: str, stamp: tuple) -> str:
    path = Path(source)
    if not path.is_dir():  # a cached id: its splits' fingerprints
        data = open_source(source)
        return hashlib.sha256(repr(sorted((k, v._fingerprint) for k, v in data.items())).encode()).hexdigest()[:16]
    digest = hashlib.sha256()
    for name, _, _ in stamp:  # every file's bytes, in order
        digest.update(name.encode())
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _dataset_files(path: Path, source: str) -> list[Path]:
    """The files that hold the dataset (a README or a notes file beside them is not the data):
    a save_to_disk folder's dict file and split folders, or the split files of a data folder."""
    if not _saved(path):
        return list(_data_files(path, source).values())
    try:
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"hf:{source}: dataset_dict.json is not a save_to_disk split list") from None
    return [path / "dataset_dict.json"] + [p for s in splits for p in (path / s).rglob("*") if p.is_file()]


def fingerprint(source: str) -> str:  # registered below as the identity of hf: runs
    """The dataset's identity: a hash of its files' bytes (of a cached id: its splits' `datasets`
    fingerprints), so a dataset changed on disk is a new run however its files' times read."""
    path = Path(source)
    files = sorted(_dataset_files(path, source)) if path.is_dir() else []
    return _fingerprint(source, tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


def load(source: str, **given) -> TaskData:
    """The task's splits from SOURCE (validation, where missing, is carved by bench.data.load_task,
    group by group); the test split is required."""
    columns = {**COLUMN_DEFAULTS, **given}
    data = open_source(source)
    if "test" not in data:
        raise BenchError(f"hf:{source}: no test split (splits found: {', '.join(data)})")
    features = data["train" if "train" in data else "test"].features
    try:
        kind = task_kind(columns, features)
        for key in ("site_column", "group_column"):
            require_column(features, columns[key], key.split("_")[0])
    except BenchError as e:
        raise BenchError(f"hf:{source}: {e}") from None
    label_feature = features[columns["tags_column" if kind == "ner" else "label_column"]]
    names = feature_names(label_feature)
    warnings: Counter = Counter()
    files = _data_files(Path(source), source) if Path(source).is_dir() and not _saved(Path(source)) else {}
    try:
        empty = [s for s in data if s in SPLIT_NAMES and not len(data[s])]
        if empty:
            raise BenchError(f"the {', '.join(empty)} split has no rows")
        splits = {
            SPLIT_NAMES[s]: examples(s, data[s], kind, columns, names, warnings, locator(s, files.get(SPLIT_NAMES[s])))
            for s in data
            if s in SPLIT_NAMES
        }
        train = splits.get("train", [])
        if kind == "cls" and names is None:  # a list-typed label column cannot be a swapped text column
            check_categories([x for ex in train for x in ex.labels], len(train), columns["label_column"], "label")
        if columns["site_column"]:
            check_categories([ex.site for ex in train], len(train), columns["site_column"], "site")
    except BenchError as e:
        raise BenchError(f"hf:{source}: {e}") from None
    if "train" not in splits:
        raise BenchError(f"hf:{source}: no train split (splits found: {', '.join(data)})")

    def label_set(examples) -> set:
        if kind == "ner":
            return {t[2:] for ex in examples for t in ex.tags if t != "O"}
        return {label for ex in examples for label in ex.labels}

    labels = sorted(set().union(*(label_set(exs) for exs in splits.values())))
    warnings["labels_not_in_train"] = len(set(labels) - label_set(splits["train"]))
    notes = []
    straddling = _straddling(splits) if columns["group_column"] else []
    if straddling:  # given splits are used as they are: say when a group is in two (by id, never text)
        warnings["groups_in_two_splits"] = len(straddling)
        notes.append(
            f"{len(straddling)} {columns['group_column']} group(s) in two given splits ({shown_all(straddling)}): "
            "the splits are used as given, so those groups train and are scored"
        )
    return TaskData(f"hf:{source}", kind, labels, splits, warnings, notes=notes)


def _straddling(splits: dict[str, list]) -> list[str]:
    """The groups found in more than one split, sorted."""
    seen: dict[str, set[str]] = {}
    for split, rows in splits.items():
        for ex in rows:
            seen.setdefault(ex.doc_id, set()).add(split)
    return sorted(group for group, where in seen.items() if len(where) > 1)


def _from_root(source: str, root, **given) -> TaskData:
    return load(source, **given)  # SOURCE names the data; a --data-dir adds nothing


@TASKS.family("hf:")
def spec_for(source: str) -> TaskSpec:
    """The spec of `hf:SOURCE`; its kind from the default columns (the loader re-reads it with the
    columns a run names)."""
    features = next(iter(open_source(source).values())).features
    try:
        kind = task_kind(COLUMN_DEFAULTS, features)
    except BenchError:
        kind = "cls"  # other columns: the run names them, and the loader finds the kind
    return TaskSpec(
        f"hf:{source}",
        kind,
        functools.partial(_from_root, source),
        None,
        bundled=Path(source),
        split_rule="the dataset's train, validation (or dev) and test splits (no validation: 10% of train, whole groups)",
    )


SOURCE_FINGERPRINTS["hf:"] = fingerprint
