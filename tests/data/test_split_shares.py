"""How much of a task each split gets, and which training examples a run keeps (README, "Three
splits"): the stable hash splits 70/10/20; a carved validation set is a seeded 10% of each site's
training documents; `train_subsample: N` keeps a fixed random N, the same for every seed and
method."""

from __future__ import annotations

import random
from collections import Counter

from bench.data import load_task
from bench.data.splitting import carve_validation, split_of
from bench.data.types import NerExample
from bench.engine.prepare import prepare_task
from tests.tiny import tiny_config


def test_the_hash_splits_70_10_20():
    """README: MIMIC-III and flat i2b2 folders split by a stable hash of the patient or document
    (70/10/20): on 5,000 keys of each kind the shares are within 2 points of that."""
    for kind in ("patient:{}", "record-{}"):
        shares = Counter(split_of(kind.format(i)) for i in range(5000))
        for split, share in {"train": 0.7, "validation": 0.1, "test": 0.2}.items():
            assert abs(shares[split] / 5000 - share) < 0.02, (kind, split, shares)


def _documents(sizes: dict[str, int]) -> list[NerExample]:
    """Two sentences for each of sizes[site] documents at each site."""
    return [
        NerExample(("w",), ("O",), site, f"{site}-{d}") for site, n in sizes.items() for d in range(n) for _ in range(2)
    ]


def test_validation_is_a_seeded_tenth_of_each_sites_training_documents():
    """README: release trees hold out a seeded 10% of the training documents of each site. Every
    site with two or more documents gives exactly max(1, round(0.1 * its documents)), whole
    documents, the same whatever the order the examples come in; a lone document stays in train."""
    sizes = {"a": 30, "b": 47, "c": 5, "d": 1, "e": 2, "f": 120}
    examples = _documents(sizes)
    train, validation = carve_validation(examples)
    held = {(ex.site, ex.doc_id) for ex in validation}
    per_site = Counter(site for site, _ in held)
    assert per_site == Counter({"a": 3, "b": 5, "c": 1, "e": 1, "f": 12}), per_site
    assert not held & {(ex.site, ex.doc_id) for ex in train}, "a document is split between train and validation"
    assert len(train) + len(validation) == len(examples)
    shuffled = list(examples)
    random.Random(1).shuffle(shuffled)
    assert {(ex.site, ex.doc_id) for ex in carve_validation(shuffled)[1]} == held


def test_a_release_tree_carves_its_validation_per_site(tiny_corpus):
    """The same rule on the tiny i2b2-2010 release tree (no validation shipped): every site holds
    out max(1, round(0.1 * its training documents))."""
    data = load_task("i2b2-2010", tiny_corpus / "i2b2-2010")
    assert data.carved_validation
    docs = {name: {(ex.site, ex.doc_id) for ex in data.splits[name]} for name in ("train", "validation")}
    total = Counter(site for site, _ in docs["train"] | docs["validation"])
    held = Counter(site for site, _ in docs["validation"])
    assert len(total) >= 3
    assert held == Counter({site: max(1, round(0.1 * n)) for site, n in total.items()}), (held, total)


def _kept(corpus, **settings) -> list[tuple]:
    """The training rows a run keeps after prepare_task, by their token ids, in order."""
    return [tuple(row) for row in prepare_task(tiny_config(corpus, **settings)).train.encoded.input_ids]


def test_train_subsample_keeps_the_same_rows_whatever_the_seed_and_method(tiny_corpus):
    """README: `train_subsample: N` keeps a fixed random N training examples (the NCBI and MedQuAD
    studies compare methods and seeds on the same 800 and 400). Two runs differing in seed and
    method keep the same N rows; another N draws another set (not the first N, nor a subset of
    the N=40: the subsample is drawn at random, by N)."""
    kept = _kept(tiny_corpus, seed=1, method="fedavg", train_subsample=40)
    assert len(kept) == 40
    assert _kept(tiny_corpus, seed=7, method="centralized", train_subsample=40) == kept
    other = _kept(tiny_corpus, seed=1, method="fedavg", train_subsample=39)
    assert len(other) == 39 and Counter(other) - Counter(kept), "N=39 is not drawn afresh"
