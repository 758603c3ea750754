"""Load, tokenize and partition a task once, on the server. Token ids and labels only: no text
travels to workers, is stored in results, or is logged.

`prepare_task` is one pipeline, each step below it in the order it runs: load (with the task's
train / validation / test split), subsample, encode, partition, hold out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bench.config import ExperimentConfig
from bench.data import SPLITS, TASKS, load_task
from bench.data.bootstrap_units import bootstrap_groups
from bench.data.hf import column_options
from bench.data.partition_spec import parse_partition
from bench.data.partition_view import describe_parts
from bench.data.split_check import check_splits
from bench.data.token_cache import cached_encoding
from bench.data.tokenize import Encoded, bio_label_ids
from bench.data.types import TaskData, TaskKind
from bench.engine.subsample import subsample, validation_subsample
from bench.errors import BenchError
from bench.metrics import METRIC_NAMES
from bench.model.build import ensure_pad_token, source_for
from bench.seeding import stream
from bench.synth.cache import data_dir_for


@dataclass
class Split:
    encoded: Encoded
    chunks: list[list[int]]  # example -> its encoded rows (NER sentences may be split)
    gold: list  # NER: word tags per example; cls: label index; multilabel: 0/1 vector
    weights: np.ndarray | None = None  # per example, where the split is a weighted subsample (val_subsample)

    def rows(self, examples) -> np.ndarray:
        """The encoded rows of these examples, in order."""
        return np.array([r for e in examples for r in self.chunks[e]], dtype=np.int64)


@dataclass
class PreparedTask:
    kind: TaskKind
    output_labels: list[str]  # what the head predicts: BIO tags, classes, or codes
    pad_id: int
    train: Split
    validation: Split  # every choice (lr, best round, early stop) is made on this
    test: Split  # read only to report
    clients: list[np.ndarray]  # example ids each client trains on
    holdouts: list[np.ndarray]  # example ids each client keeps for its own score
    partition: dict  # per-client label counts and divergence (bench.data.partition_view), counts only
    encoding: dict  # per split: examples, and how many were split (NER) or truncated (classification)
    train_units: dict  # "document" / "patient" -> the unit id of every training row (for DP-SGD by unit)
    test_groups: dict = dataclasses.field(
        default_factory=dict
    )  # what the test bootstrap resamples (bench.data.bootstrap_units)

    @property
    def metric_name(self) -> str:
        return METRIC_NAMES[self.kind]

    def in_memory(self) -> PreparedTask:
        """This task with its rows as plain lists, for processes on another machine, which cannot
        map the token cache's files."""

        def own(split: Split) -> Split:
            encoded = split.encoded.in_memory()
            gold = encoded.labels if split.gold is split.encoded.labels else split.gold
            return Split(encoded, split.chunks, gold, split.weights)

        return dataclasses.replace(self, train=own(self.train), validation=own(self.validation), test=own(self.test))


def prepare_task(cfg: ExperimentConfig) -> PreparedTask:
    data = load_splits(cfg)
    for note in data.notes:
        print(f"warning: {cfg.task}: {note}")
    data.splits["train"] = subsample(data.splits["train"], cfg.train_subsample)
    data.splits["validation"], val_weights = validation_subsample(data.splits["validation"], cfg.val_subsample)
    check_splits(data, TASKS.get(cfg.task))  # before any model is built: one line, exit 2
    require_units(cfg, data.splits["train"])
    tokenizer = source_for(cfg.model).tokenizer()
    ensure_pad_token(tokenizer)
    output, splits = encode(data, tokenizer, cfg.max_length)
    splits["validation"].weights = val_weights
    parts = partition(cfg, data)
    clients, holdouts = holdout_split(parts, cfg.holdout_fraction, cfg.seed)
    return PreparedTask(
        data.kind,
        output,
        tokenizer.pad_token_id,
        splits["train"],
        splits["validation"],
        splits["test"],
        clients,
        holdouts,
        partition=describe_parts(data, parts, cfg.partition, cfg.seed),
        encoding=encoding_summary(splits),
        train_units=train_units(data.splits["train"], splits["train"]),
        test_groups=bootstrap_groups(data.splits["test"]),
    )


def load_splits(cfg: ExperimentConfig) -> TaskData:
    """The task's train, validation and test examples (validation carved by `load_task` where a
    release ships none)."""
    options = {"label_level": cfg.label_level} if cfg.label_level else {}
    return load_task(cfg.task, data_dir_for(cfg.task, cfg.data_dir), **options, **column_options(cfg))


def require_units(cfg: ExperimentConfig, train: list) -> None:
    """DP-SGD by patient needs a patient id on every training example; on an hf: task a document
    is a group, and without --group-column each row would be its own 'document'."""
    if cfg.private and cfg.dp_unit == "patient" and not all(getattr(ex, "group", "") for ex in train):
        raise BenchError(f"--dp-unit patient: task {cfg.task} has no patient ids (use --dp-unit document)")
    if cfg.private and cfg.dp_unit == "document" and cfg.task.startswith("hf:") and not cfg.group_column:
        raise BenchError(
            f"--dp-unit document: task {cfg.task} has documents only with --group-column "
            "(without it each row is its own unit: use --dp-unit row)"
        )


def encode(data: TaskData, tokenizer, max_length: int) -> tuple[list[str], dict[str, Split]]:
    """(what the head predicts, each split's encoded rows). A long NER sentence becomes several
    rows, cut outside entities in training only: evaluation text is cut without reading its labels.
    The rows are memory-mapped from the token cache (bench.data.token_cache), shared by every process."""
    ner = data.kind == "ner"
    label_ids = bio_label_ids(data.label_names) if ner else None
    output = list(label_ids) if ner else list(data.label_names)
    splits = {}
    for name in SPLITS:
        examples = data.splits[name]
        enc = cached_encoding(data.kind, examples, tokenizer, label_ids if ner else output, max_length, name == "train")
        gold = [list(ex.tags) for ex in examples] if ner else enc.labels
        splits[name] = _split(enc, len(examples), gold)
    return output, splits


def _split(encoded: Encoded, n_examples: int, gold: list) -> Split:
    chunks: list[list[int]] = [[] for _ in range(n_examples)]
    if encoded.owner:
        for row, (example, _) in enumerate(encoded.owner):
            chunks[example].append(row)
    else:
        chunks = [[i] for i in range(n_examples)]
    return Split(encoded, chunks, gold)


def partition(cfg: ExperimentConfig, data: TaskData) -> list[np.ndarray]:
    """The training example ids of each client, by the --partition spec."""
    return parse_partition(cfg.partition).split(
        data.partition_labels("train"), data.sites("train"), cfg.clients, cfg.seed
    )


def holdout_split(parts: list[np.ndarray], fraction: float, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each client keeps a seeded `fraction` (at least one example) of its data for its own score."""
    train, held = [], []
    for client, idx in enumerate(parts):
        rng = stream("client_holdout", seed, client)
        shuffled = rng.permutation(idx)
        k = max(1, int(round(fraction * len(idx))))
        held.append(np.sort(shuffled[:k]))
        train.append(np.sort(shuffled[k:]))
    return train, held


def encoding_summary(splits: dict[str, Split]) -> dict:
    return {
        name: {"examples": len(split.gold), **{k: int(v) for k, v in split.encoded.warnings.items()}}
        for name, split in splits.items()
    }


UNIT_KEYS = {"document": lambda ex: f"{ex.site}/{ex.doc_id}", "patient": lambda ex: getattr(ex, "group", "")}


def train_units(examples: list, split: Split) -> dict:
    """Each privacy unit -> the unit of every training row (None where the task lacks it)."""
    return {unit: row_units(examples, split, key) for unit, key in UNIT_KEYS.items()}


def row_units(examples: list, split: Split, key) -> np.ndarray | None:
    """Each encoded row's unit (an int per distinct document or patient); None when the task
    does not record that unit (i2b2 notes carry no patient ids)."""
    ids = [key(ex) for ex in examples]
    if not all(ids):
        return None
    index = {u: i for i, u in enumerate(dict.fromkeys(ids))}
    units = np.empty(sum(len(c) for c in split.chunks), dtype=np.int64)
    for e, rows in enumerate(split.chunks):
        units[rows] = index[ids[e]]
    return units
