"""The frozen-prefix cache changes speed, not results (with dropout off)."""

import numpy as np
import pytest
import torch

from bench.config import ExperimentConfig
from bench.engine.prefix_cache import cache_plan
from bench.engine.prepare import prepare_task
from bench.engine.worker import Worker
from bench.federation.comm import Job
from tests.tiny import tiny_config


def worker(
    corpus, model, cache, method="layerskip", layers="top:1", dtype="float32", frozen_mode="train", dropout=False
):
    cfg = ExperimentConfig(
        task="i2b2-2010",
        method=method,
        layers=layers if method == "layerskip" else None,
        model=model,
        clients=2,
        data_dir=str(corpus / "i2b2-2010"),
        max_length=48,
        prefix_cache=cache,
        dtype=dtype,
        frozen_mode=frozen_mode,
    )
    task = prepare_task(cfg)
    w = Worker(cfg.to_dict(), task)
    for m in w.model.modules():  # dropout off: the one documented source of difference
        if isinstance(m, torch.nn.Dropout) and not dropout:
            m.p = 0.0
    return w, task


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-llama"])
def test_cached_and_uncached_training_agree(tiny_corpus, model):
    results, scores = {}, {}
    for cache in ("on", "off"):
        w, task = worker(tiny_corpus, model, cache)
        assert (w.cache is not None) == (cache == "on")
        state = w.initial_state()
        [res] = w.train({"global": state}, [Job(0, task.clients[0])], round_=0)
        results[cache] = res
        scores[cache] = w.evaluate(res.state)["metric"]
    assert results["on"].loss == pytest.approx(results["off"].loss, rel=1e-4)
    for name, value in results["off"].state.items():
        assert torch.allclose(results["on"].state[name], value, atol=1e-4), name
    assert scores["on"] == pytest.approx(scores["off"], abs=0.02)


def test_with_frozen_blocks_in_eval_mode_the_cache_changes_nothing_even_with_dropout(tiny_corpus):
    """frozen_mode eval: the uncached run drops nothing in the frozen blocks either, so the two
    end a client's training in the same state with dropout on; under frozen_mode train (the
    control) they do not."""
    states = {}
    for mode in ("eval", "train"):
        for cache in ("on", "off"):
            w, task = worker(tiny_corpus, "tiny-bert", cache, frozen_mode=mode, dropout=True)
            [res] = w.train({"global": w.initial_state()}, [Job(0, task.clients[0])], round_=0)
            states[mode, cache] = res.state

    def gap(a, b):
        return max(float((states[a][n] - states[b][n]).abs().max()) for n in states[a])

    assert gap(("eval", "on"), ("eval", "off")) < 1e-4
    assert gap(("train", "on"), ("train", "off")) > 1e-3
    assert gap(("eval", "on"), ("train", "on")) < 1e-6  # cached: the frozen part ran in eval mode either way


def test_a_bfloat16_model_trains_and_scores_on_its_cached_prefix(tiny_corpus):
    """The paper's setting (LLaMA in bfloat16, top blocks trained): the cached activations reach
    the first trained block in bfloat16 (they came as float32 and its Linear refused them)."""
    w, task = worker(tiny_corpus, "tiny-llama", "on", dtype="bfloat16")
    assert w.cache is not None and w.cache.compute_dtype == torch.bfloat16
    [res] = w.train({"global": w.initial_state()}, [Job(0, task.clients[0])], round_=0)
    assert np.isfinite(res.loss)
    assert 0.0 <= w.evaluate(res.state)["metric"] <= 1.0


@pytest.mark.parametrize(
    "method, layers, expect",
    [("layerskip", "top:1", 1), ("layerskip", "bottom:1", None), ("fedavg", None, None), ("lora", None, None)],
)
def test_cache_applies_only_above_a_frozen_prefix(tiny_corpus, method, layers, expect):
    w, _ = worker(tiny_corpus, "tiny-bert", "on", method=method, layers=layers)
    k, why = cache_plan(w.model, w.layers) if w.cache is None else (w.cache.k, "")
    assert k == expect, why
    assert ("cached" in w.info()["prefix_cache"]) == (expect is not None)


def test_cache_budget_falls_back_to_uncached(tiny_corpus):
    cfg = tiny_config(tiny_corpus, method="layerskip", layers="top:1", prefix_cache_mb=0, rounds=3, max_length=128)
    w = Worker(cfg.to_dict(), prepare_task(cfg))
    assert w.cache is None and "budget" in w.info()["prefix_cache"]
    assert np.isfinite(w.train({"global": w.initial_state()}, [Job(0, w.task.clients[0][:4])], 0)[0].loss)


def test_disk_cache_is_built_once_per_frozen_prefix_and_never_crosses_keys(tiny_corpus, tmp_path, monkeypatch):
    """3 seeds x 2 learning rates of layerskip top:1 build the cache once, inside the first
    run's own passes; the later runs compute no row at all; another frozen prefix never reads
    that entry."""
    from bench.engine.server import run_experiment

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    # a pre-trained model: seeds change the head and the client streams, never the frozen prefix
    base = tiny_config(tiny_corpus, method="layerskip", layers="top:1", model="minilm", train_subsample=40)
    seen = []
    for seed in (0, 1, 2):
        for lr in (1e-3, 3e-3):
            final = run_experiment(base.with_settings(seed=seed, lr=lr), tmp_path / f"s{seed}-{lr}", progress=False)
            seen.append(final["prefix_cache"])
    assert seen[0]["reused"] is False and all(p["reused"] for p in seen[1:])
    assert seen[0]["rows_computed"] > 0 and all(p["rows_computed"] == 0 and p["build_s"] == 0 for p in seen[1:])
    assert len(list((tmp_path / "cache" / "prefix").glob("*.pt"))) == 1
    other = run_experiment(
        base.with_settings(layers="top:2"), tmp_path / "other", progress=False
    )  # one block less frozen
    assert other["prefix_cache"]["reused"] is False
    assert len(list((tmp_path / "cache" / "prefix").glob("*.pt"))) == 2


def test_rows_are_computed_on_first_use_and_the_frozen_modules_go_once_all_are(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))  # no entry from another test
    w, task = worker(tiny_corpus, "tiny-bert", "on")
    cache = w.cache
    assert cache.filled == 0 and not cache.reused and cache.originals is not None
    w.evaluate(w.initial_state(), "validation")
    assert cache.filled == len(task.validation.encoded.input_ids) and cache.originals is not None
    cache.feed("train", [0, 1])  # a first batch: its rows only, none a sampled client may never reach
    assert cache.filled == len(task.validation.encoded.input_ids) + 2
    assert [row is not None for row in cache.hidden["train"]][:4] == [True, True, False, False]
    for split in ("train", "test"):
        cache.feed(split, list(range(len(getattr(task, split).encoded.input_ids))))
    assert cache.originals is None  # every row cached: the frozen blocks are never run again
    filled = cache.filled
    assert np.isfinite(w.evaluate(w.initial_state(), "test")["metric"]) and cache.filled == filled


def test_cached_rows_hold_their_own_bytes_only(tiny_corpus, tmp_path, monkeypatch):
    """Each row is its own tensor: a view into its padded batch would keep the whole batch alive."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    w, task = worker(tiny_corpus, "tiny-bert", "on")
    w.evaluate(w.initial_state(), "validation")
    rows = [r for r in w.cache.hidden["validation"] if r is not None]
    assert len(rows) == len(task.validation.encoded.input_ids) > 1
    assert len({len(r) for r in rows}) > 1  # rows of different lengths, so padded batches were wider than some
    assert w.cache.held_bytes() == sum(r.numel() * r.element_size() for r in rows)


@pytest.mark.parametrize("model, same", [("tiny-llama", True), ("tiny-bert", False)])
def test_frozen_mode_changes_nothing_for_llama_which_has_no_dropout(tiny_corpus, model, same):
    """Claim: LLaMA's blocks have no dropout, so frozen_mode train and eval give the same numbers
    (the paper grid leaves it at train): bottom:1 (never cached; frozen block 1 and the
    embeddings run in train or eval mode), dropout at the config's defaults. tiny-bert, which
    has dropout, is the control: there the two differ."""
    cfg = tiny_config(tiny_corpus, method="layerskip", layers="bottom:1", model=model, max_length=48)
    task, results = prepare_task(cfg), {}
    for mode in ("train", "eval"):
        w = Worker(cfg.with_settings(frozen_mode=mode).to_dict(), task)
        [results[mode]] = w.train({"global": w.initial_state()}, [Job(0, task.clients[0][:16])], round_=0)
    gap = max(float((results["train"].state[n] - v).abs().max()) for n, v in results["eval"].state.items())
    if same:
        assert gap == 0.0 and results["train"].loss == results["eval"].loss
    else:
        assert gap > 1e-3
