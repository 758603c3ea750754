"""The prefix cache's disk entries (README, design notes): keyed by the frozen weights, every
row's token ids, k and the dtype, so a cell never reads an entry computed from something else;
least recently used entries go past BENCH_PREFIX_DISK_MB (8 GiB)."""

import copy
import importlib.util
import os

import pytest
import torch

from bench.data.tokenize import Encoded
from bench.engine import prefix_cache
from bench.model.build import build_model
from bench.model.layers import discover_layers

K = 1  # tiny-bert's block 0 and embeddings frozen, block 1 trains


@pytest.fixture(scope="module")
def models():
    """tiny-bert from two seeds: random init, so the frozen prefixes' weights differ."""
    return {seed: build_model("tiny-bert", "ner", 3, seed)[0] for seed in (0, 1)}


def rows(n: int = 6, width: int = 10, offset: int = 0) -> dict[str, Encoded]:
    ids = [[101, *(1000 + offset + 7 * r + t for t in range(width - 2)), 102] for r in range(n)]
    return {"train": Encoded(ids, [[0] * width] * n), "validation": Encoded(ids[:2], [[0] * width] * 2)}


def open_cache(model, splits, store, dtype=torch.float32, module=prefix_cache, fill=True):
    """A PrefixCache on a copy of `model` (it swaps the model's modules), every row fed, then
    written to disk as a worker does when it closes."""
    model = copy.deepcopy(model)
    layers = discover_layers(model)
    cache = module.PrefixCache(model, layers, K, layers.embedding_stage(), splits, 0, "cpu", dtype, store=store)
    if fill:
        for name, enc in splits.items():
            cache.feed(name, list(range(len(enc))))
        cache.save()
    return cache


def changed(case: str, models) -> tuple:
    """(model, splits, dtype) of the base cell with one thing changed."""
    model, splits, dtype = models[0], rows(), torch.float32
    if case == "token ids":  # same splits, same row counts and lengths, one token differs
        splits["train"].input_ids[3] = [*splits["train"].input_ids[3][:4], 4242, *splits["train"].input_ids[3][5:]]
    elif case == "frozen weights":  # another seed: another frozen block 0 and embeddings
        model = models[1]
    elif case == "dtype":
        dtype = torch.float16
    elif case == "trained block and head":  # the control: weights above block k are no part of the key
        model = copy.deepcopy(models[0])
        with torch.no_grad():
            for name, p in model.named_parameters():
                if not name.startswith(("bert.embeddings", "bert.encoder.layer.0.")):
                    p.add_(1.0)
    return model, splits, dtype


@pytest.mark.parametrize(
    "case, reused",
    [
        ("same", True),
        ("trained block and head", True),
        ("token ids", False),
        ("frozen weights", False),
        ("dtype", False),
    ],
)
def test_an_entry_is_reused_only_under_the_same_weights_token_ids_and_dtype(models, tmp_path, case, reused):
    """Claim: the disk entry is keyed by the frozen weights, the token ids (a second corpus with
    the same row counts is not read) and the dtype; the same frozen prefix, whatever trains above
    it, reads it."""
    store = tmp_path / "prefix"
    base = open_cache(models[0], rows(), store)
    assert base.reused is False and base.filled == 8
    model, splits, dtype = changed(case, models)
    other = open_cache(model, splits, store, dtype, fill=False)
    assert other.reused is reused, case
    for name, enc in splits.items():
        other.feed(name, list(range(len(enc))))
    assert other.filled == (0 if reused else 8)  # a reused entry supplies every row
    assert len(list(store.glob("*.pt"))) == 1
    other.save()
    assert len(list(store.glob("*.pt"))) == (1 if reused else 2)


def budgeted_module(monkeypatch, mb: str | None):
    """A fresh copy of bench.engine.prefix_cache, imported with BENCH_PREFIX_DISK_MB as given
    (the module reads it when imported), beside the one the rest of the suite uses."""
    if mb is None:
        monkeypatch.delenv("BENCH_PREFIX_DISK_MB", raising=False)
    else:
        monkeypatch.setenv("BENCH_PREFIX_DISK_MB", mb)
    spec = importlib.util.spec_from_file_location("prefix_cache_budget_copy", prefix_cache.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_least_recently_used_entries_go_past_the_disk_budget(models, tmp_path, monkeypatch):
    """Claim: entries past BENCH_PREFIX_DISK_MB go least recently used first: reading an entry
    (a later cell reusing it) counts as use, so the oldest-written one that was just read stays
    and the one written after it, not read since, goes."""
    assert budgeted_module(monkeypatch, None).DISK_BUDGET_MB == 8192  # 8 GiB by default
    module = budgeted_module(monkeypatch, "1")
    store, now = tmp_path / "prefix", 1_000_000_000.0
    long_rows = {name: rows(8, 200, offset) for name, offset in (("a", 0), ("b", 3000), ("c", 6000))}
    for name in long_rows:  # 8 rows x 200 positions x 64 floats: 0.39 MiB an entry
        long_rows[name].pop("validation")
    for age, name in ((300, "a"), (200, "b")):  # a written first, then b
        entry = open_cache(models[0], long_rows[name], store, module=module).entry
        os.utime(entry, (now - age, now - age))
    assert len(list(store.glob("*.pt"))) == 2  # 0.78 MiB: within 1 MiB
    a = open_cache(models[0], long_rows["a"], store, module=module, fill=False)  # a later cell reads a
    assert a.reused and a.entry.stat().st_mtime > now
    c = open_cache(models[0], long_rows["c"], store, module=module)  # 1.17 MiB: one must go
    assert c.entry.is_file() and a.entry.is_file()
    assert sorted(store.glob("*.pt")) == sorted([a.entry, c.entry])  # b, written after a but not read since


def test_workers_that_fill_one_entry_in_parts_leave_every_part_on_disk(models, tmp_path):
    """README: each worker merges what it computed into the disk entry. Two workers open the same
    empty entry, each computes the rows its clients reach, and both save: the entry holds both
    parts (the last writer must not replace the first's rows with its blanks)."""
    store, splits = tmp_path / "prefix", rows()
    first, second = (open_cache(models[0], splits, store, fill=False) for _ in range(2))
    first.feed("train", [0, 1, 2])
    second.feed("train", [3, 4, 5])
    first.save(), second.save()
    later = open_cache(models[0], splits, store, fill=False)
    assert all(row is not None for row in later.hidden["train"])
    assert all(row is None for row in later.hidden["validation"])  # nothing fed there: nothing made up
