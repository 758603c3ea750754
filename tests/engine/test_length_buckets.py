"""Length-bucketed batches: every row once per epoch, seeded, less padding; off = the old batches."""

import numpy as np
import pytest
import torch

from bench.config import ExperimentConfig
from bench.data.tokenize import Encoded
from bench.engine.training import epoch_batches
from bench.errors import BenchError
from tests.tiny import tiny_config


def encoded(n=400, seed=0):
    lengths = np.random.default_rng(seed).integers(3, 64, size=n)
    return Encoded([[1] * int(k) for k in lengths], [[0] * int(k) for k in lengths])


def padded_tokens(batches, enc):
    return sum(len(b) * max(len(enc.input_ids[r]) for r in b) for b in batches)


def test_off_gives_the_plain_shuffle_it_always_gave():
    enc, rows = encoded(), np.arange(400)
    got = epoch_batches(rows, enc, 16, torch.Generator().manual_seed(3))
    order = rows[torch.randperm(400, generator=torch.Generator().manual_seed(3)).numpy()]
    assert [b.tolist() for b in got] == [order[i : i + 16].tolist() for i in range(0, 400, 16)]


def test_buckets_cover_every_row_once_are_seeded_and_pad_less():
    enc, rows = encoded(), np.arange(100, 500)
    enc = Encoded([[1]] * 100 + enc.input_ids, [[0]] * 100 + enc.labels)  # rows 100..499 are the ones used
    bucketed = epoch_batches(rows, enc, 16, torch.Generator().manual_seed(7), buckets=8)
    again = epoch_batches(rows, enc, 16, torch.Generator().manual_seed(7), buckets=8)
    plain = epoch_batches(rows, enc, 16, torch.Generator().manual_seed(7))
    assert sorted(np.concatenate(bucketed).tolist()) == rows.tolist()
    assert [b.tolist() for b in bucketed] == [b.tolist() for b in again]
    assert padded_tokens(bucketed, enc) < 0.8 * padded_tokens(plain, enc)


def test_buckets_are_refused_under_dp():
    with pytest.raises(BenchError, match="length_buckets"):
        ExperimentConfig(task="conll", method="fedavg", length_buckets=4, dp_epsilon=8.0)
    assert (
        ExperimentConfig(task="conll", method="fedavg").run_id
        == ExperimentConfig(task="conll", method="fedavg", length_buckets=0).run_id
    )
    assert (
        ExperimentConfig(task="conll", method="fedavg", length_buckets=4).run_id
        != ExperimentConfig(task="conll", method="fedavg").run_id
    )


def test_a_run_with_buckets_trains(tiny_corpus, tmp_path):
    from bench.engine.server import run_experiment

    final = run_experiment(
        tiny_config(tiny_corpus, max_length=48, length_buckets=4),
        tmp_path,
        progress=False,
    )
    assert final["status"] == "ok" and final["config"]["length_buckets"] == 4 and np.isfinite(final["metric"])


def test_each_batch_lies_in_one_window_of_the_seeded_shuffle_and_the_batches_are_shuffled():
    """README `--length-buckets W`: each window of W batches of the seeded shuffle is sorted by
    length, then the batches are shuffled. With W=2, every batch's rows lie in one window of
    2 * batch_size rows of the same seed's permutation (not a global sort), a window's batches
    split its rows by length, and the batches do not come in window order."""
    enc, rows, size, seed = encoded(), np.arange(400), 16, 11
    batches = epoch_batches(rows, enc, size, torch.Generator().manual_seed(seed), buckets=2)
    order = rows[torch.randperm(400, generator=torch.Generator().manual_seed(seed)).numpy()]
    window_of = {int(r): i // (2 * size) for i, r in enumerate(order)}
    windows = []
    for b in batches:
        assert len({window_of[int(r)] for r in b}) == 1, "a batch mixes rows of two windows"
        windows.append(window_of[int(b[0])])
    assert sorted(windows) == [w for w in range(13) for _ in range(2 if w < 12 else 1)]  # 25 batches, 13 windows
    assert windows != sorted(windows), "the batches came in window order: not shuffled"
    length = lambda r: len(enc.input_ids[r])  # noqa: E731
    for w in range(12):
        lo, hi = sorted((b for b in batches if window_of[int(b[0])] == w), key=lambda b: min(map(length, b)))
        assert max(map(length, lo)) <= min(map(length, hi)), "a window's batches are not cut from its sorted rows"
