"""Encoded splits written once by `Dataset.map` into an Arrow file and memory-mapped by every
reader: the server and each worker process share the token ids' pages instead of each holding
private lists of them, and a grid's cells that encode the same split read the same file.

The file is named by a fingerprint of everything the encoding depends on (the split's examples,
the tokenizer, the window, the chunking rule, the label set, ENCODING_VERSION), so a changed
corpus or tokenizer is a new file and a stale one is never read. The encoders themselves are
tokenize.py's, applied a batch at a time, so the rows are the ones encoding in memory gives
(tested row for row). Token ids are as sensitive as the notes they encode: the files stay in the
cache folder (BENCH_CACHE), never in results.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
from pathlib import Path

from bench.data import tokenize
from bench.data.arrow_rows import ArrowRows, read_table
from bench.data.tokenize import Encoded, encode_cls, encode_ner
from bench.data.types import ClsExample, NerExample
from bench.store import cache_root

ENCODING_VERSION = 1  # bump when tokenize.py's output changes, so cached encodings are rebuilt
BUDGET_MB = 4096  # BENCH_TOKEN_CACHE_MB overrides: least recently used files go beyond it...
KEEP_RECENT_S = 24 * 3600  # ...but never one used in the last day (a running grid's workers map it by path)
BATCH = 1000
WARNINGS = {  # what each encoder counts, summed over batches
    "ner": ("sentence_split", "sentences_split", "word_truncated"),
    "cls": ("documents_truncated",),
    "multilabel": ("documents_truncated",),
}


def tokenizer_identity(tokenizer) -> str:
    """A digest of the tokenizer's whole definition (vocabulary, merges, normalisation; not the
    truncation and padding a call last set) where it can be serialised, else of its vocabulary,
    settings and special tokens; with the library versions, which can change ids."""
    special = json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # to_str takes a few ms; the digest of what it says, 40-180 ms: done once
        return _serialised_identity(type(tokenizer).__name__, special, backend.to_str())
    definition = {"vocab": sorted(tokenizer.get_vocab().items()), "init": repr(getattr(tokenizer, "init_kwargs", {}))}
    return _digest(type(tokenizer).__name__, special, definition)


@functools.lru_cache(maxsize=8)
def _serialised_identity(kind: str, special: str, serialised: str) -> str:
    definition = {k: v for k, v in json.loads(serialised).items() if k not in ("truncation", "padding")}
    return _digest(kind, special, definition)


def _digest(kind: str, special: str, definition: dict) -> str:
    import tokenizers
    import transformers

    text = json.dumps(
        [kind, json.loads(special), definition, tokenizers.__version__, transformers.__version__],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _code_identity() -> str:
    """The encoders' own source: a change to them is a new file even if ENCODING_VERSION is not bumped."""
    return hashlib.sha256((inspect.getsource(tokenize) + inspect.getsource(_encoder)).encode()).hexdigest()


def fingerprint(kind: str, examples: list, tokenizer_id: str, labels, max_length: int, cut: bool) -> str:
    digest = hashlib.sha256(
        json.dumps([ENCODING_VERSION, _code_identity(), kind, tokenizer_id, labels, max_length, cut]).encode()
    )
    for ex in examples:  # the content only: sites and ids do not change the encoding
        fields = (ex.tokens, ex.tags) if kind == "ner" else ((ex.text,), ex.labels)
        digest.update(json.dumps(fields).encode())
    return digest.hexdigest()[:32]


def _columns(kind: str, examples: list) -> dict:
    if kind == "ner":
        return {"tokens": [list(ex.tokens) for ex in examples], "tags": [list(ex.tags) for ex in examples]}
    return {"text": [ex.text for ex in examples], "labels": [list(ex.labels) for ex in examples]}


def _encoder(kind: str, tokenizer, labels, max_length: int, cut: bool):
    """The batch function for Dataset.map: tokenize.py's encoder on a batch, the example index
    made global, and the batch's warning counts on its first row."""

    def encode_batch(batch: dict, indices: list[int]) -> dict:
        if kind == "ner":
            examples = [NerExample(tuple(t), tuple(g), "", "") for t, g in zip(batch["tokens"], batch["tags"])]
            enc = encode_ner(examples, tokenizer, labels, max_length, cut_outside_entities=cut)
        else:
            examples = [ClsExample(text, tuple(ls), "", "") for text, ls in zip(batch["text"], batch["labels"])]
            enc = encode_cls(examples, tokenizer, labels, max_length, multilabel=kind == "multilabel")
        out = {"input_ids": enc.input_ids, "labels": enc.labels}
        if kind == "ner":
            out["example"] = [indices[e] for e, _ in enc.owner]
            out["first_word"] = [w for _, w in enc.owner]
        for name in WARNINGS[kind]:
            out[f"warn_{name}"] = [enc.warnings[name] if row == 0 else 0 for row in range(len(enc.input_ids))]
        return out

    return encode_batch


def _features(kind: str):
    from datasets import Features, Sequence, Value

    label = {"ner": Sequence(Value("int64")), "cls": Value("int64"), "multilabel": Sequence(Value("float64"))}
    owner = {"example": Value("int64"), "first_word": Value("int64")} if kind == "ner" else {}
    warnings = {f"warn_{name}": Value("int64") for name in WARNINGS[kind]}
    return Features({"input_ids": Sequence(Value("int32")), "labels": label[kind], **owner, **warnings})


def _write(path: Path, kind: str, examples: list, tokenizer, labels, max_length: int, cut: bool, key: str) -> None:
    from datasets import Dataset, disable_progress_bars  # about 2 s to import: only when a file is written

    disable_progress_bars()  # a few seconds' work; stderr stays for the one-line errors
    path.parent.mkdir(parents=True, exist_ok=True)
    source = Dataset.from_dict(_columns(kind, examples))
    source.map(  # written to a temporary file and renamed; a file a crash cut short is caught by _readable
        _encoder(kind, tokenizer, labels, max_length, cut),
        batched=True,
        batch_size=BATCH,
        with_indices=True,
        remove_columns=source.column_names,
        features=_features(kind),
        cache_file_name=str(path),
        new_fingerprint=key,
    )
    os.chmod(path, 0o600)  # token ids read back into the notes: only their owner may read them


def _readable(path: Path):
    """The cached table, or None when there is none or it cannot be read (a file cut short by a
    crash is removed and written again)."""
    if not path.is_file():
        return None
    try:
        return read_table(path)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        path.unlink(missing_ok=True)
        return None


def evict(folder: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Remove the least recently used token files beyond the budget (BENCH_TOKEN_CACHE_MB), never
    `keep` nor a file used in the last KEEP_RECENT_S; returns what went. Every reader touches its
    file (ArrowRows, a worker restarted days into a run included), so use, not writing, orders them."""
    now = time.time() if now is None else now
    budget = float(os.environ.get("BENCH_TOKEN_CACHE_MB", BUDGET_MB)) * 2**20
    files = []
    for path in folder.glob("*.arrow"):
        try:
            st = path.stat()
        except FileNotFoundError:  # another process evicted it first
            continue
        files.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in files)
    gone = []
    for used, size, path in sorted(files):
        if total <= budget:
            break
        if path == keep or now - used < KEEP_RECENT_S:
            continue
        path.unlink(missing_ok=True)
        total -= size
        gone.append(path)
    return gone


def cached_encoding(kind: str, examples: list, tokenizer, labels, max_length: int, cut: bool = False) -> Encoded:
    """The split's Encoded, its ids and labels memory-mapped from the cache (written first if missing).
    `labels`: the BIO label ids (NER) or the label names (classification)."""
    key = fingerprint(kind, examples, tokenizer_identity(tokenizer), labels, max_length, cut)
    path = cache_root() / "tokens" / f"{key}.arrow"
    if not examples:
        return Encoded([], [])
    table = _readable(path)
    if table is None:
        _write(path, kind, examples, tokenizer, labels, max_length, cut, key)
        table = read_table(path)
        evict(path.parent, keep=path)
    owner = (
        list(zip(table.column("example").to_pylist(), table.column("first_word").to_pylist())) if kind == "ner" else []
    )
    encoded = Encoded(ArrowRows(path, "input_ids", table), ArrowRows(path, "labels", table), owner)
    for name in WARNINGS[kind]:
        encoded.warnings[name] = int(table.column(f"warn_{name}").to_numpy().sum())
    return encoded
