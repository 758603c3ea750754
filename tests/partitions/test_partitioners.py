"""Properties every partitioner must have, checked with hypothesis."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.divergence import client_divergences, label_matrix
from bench.errors import BenchError
from partitions import parse_partition
from partitions.site import clients_per_site

SPECS = ["iid", "dirichlet:0.5", "dirichlet:5", "quantity:1", "quantity:10", "site"]
datasets = st.integers(min_value=40, max_value=400).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from(["O", "problem", "test", "treatment"]), min_size=n, max_size=n),
        st.lists(st.sampled_from(["beth", "partners"]), min_size=n, max_size=n),
    )
)


def split_or_skip(spec, labels, sites, n_clients, seed):
    try:
        return parse_partition(spec).split(labels, sites, n_clients, seed)
    except BenchError as e:  # an honest refusal (e.g. a site too small) is allowed, a wrong split is not
        assert "site" in str(e) or "draw" in str(e)
        return None


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=25, deadline=None)
@given(data=datasets, n_clients=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_every_example_in_exactly_one_client(spec, data, n_clients, seed):
    labels, sites = data
    parts = split_or_skip(spec, labels, sites, n_clients, seed)
    if parts is None:
        return
    assert len(parts) == n_clients
    everything = np.concatenate(parts)
    assert len(everything) == len(labels)  # sizes sum to the dataset
    assert sorted(everything.tolist()) == list(range(len(labels)))  # each exactly once
    assert min(len(p) for p in parts) >= 2
    again = parse_partition(spec).split(labels, sites, n_clients, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))  # deterministic


def mean_divergence(spec, labels, seeds=range(5)):
    values = []
    for seed in seeds:
        parts = parse_partition(spec).split(labels, labels, 10, seed)
        values.append(client_divergences(label_matrix(labels, parts)[1]).mean())
    return float(np.mean(values))


def test_small_alpha_diverges_large_alpha_is_near_iid():
    rng = np.random.default_rng(0)
    labels = rng.choice(["O", "problem", "test", "treatment"], size=2000, p=[0.4, 0.3, 0.15, 0.15]).tolist()
    skewed, mild, iid = (mean_divergence(s, labels) for s in ("dirichlet:0.1", "dirichlet:100", "iid"))
    assert skewed > 0.2 > 10 * mild
    assert abs(mild - iid) < 0.01


def test_site_split_keeps_sites_apart():
    sites = ["a"] * 30 + ["b"] * 10
    parts = parse_partition("site").split(["x"] * 40, sites, 4, seed=0)
    owners = [{sites[i] for i in p} for p in parts]
    assert all(len(o) == 1 for o in owners)
    assert clients_per_site({"a": 30, "b": 10}, 4) == {"a": 3, "b": 1}


@pytest.mark.parametrize(
    "spec, clients, message",
    [
        ("dirichlet", 2, "needs a parameter"),
        ("dirichlet:-1", 2, "positive"),
        ("dirichlet:abc", 2, "not a number"),
        ("iid:3", 2, "takes no parameter"),
        ("dirchlet:0.5", 2, "did you mean 'dirichlet'"),
        ("iid", 100, "cannot give"),
        ("site", 1, "fewer than the 2 sites"),
    ],
)
def test_bad_arguments_are_named(spec, clients, message):
    labels, sites = ["x"] * 40, ["a"] * 20 + ["b"] * 20
    with pytest.raises(BenchError, match=message):
        parse_partition(spec).split(labels, sites, clients, 0)


def test_too_small_alpha_fails_clearly_not_forever():
    labels = ["a"] * 20 + ["b"] * 4
    with pytest.raises(BenchError, match="use a larger alpha or fewer clients"):
        parse_partition("dirichlet:0.01").split(labels, labels, 10, seed=0)


@pytest.mark.parametrize(
    "task, subdir, spec",
    [
        ("i2b2-2010", "i2b2-2010", "dirichlet:0.5"),
        ("i2b2-2014", "i2b2-2014", "quantity:1"),
        ("mimic-mortality", "mimic-iii", "site"),
        ("mimic-icd50", "mimic-iii", "iid"),
    ],
)
def test_show_cli_on_every_task(tiny_corpus, tmp_path, task, subdir, spec):
    clients = 6 if spec == "site" else 3
    png = tmp_path / "p.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "partitions",
            "show",
            "--task",
            task,
            "--data-dir",
            str(tiny_corpus / subdir),
            "--partition",
            spec,
            "--clients",
            str(clients),
            "--seed",
            "1",
            "--json",
            "--plot",
            str(png),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(out.stdout)
    assert [c["id"] for c in shown["clients"]] == list(range(clients))
    assert 0 <= shown["divergence"] <= 1
    assert png.stat().st_size > 10_000


def test_show_on_ncbi(ncbi):
    from bench.data import load_task
    from bench.data.partition_view import describe

    shown = describe(load_task("conll", ncbi), "dirichlet:0.5", 5, seed=0)
    assert sum(c["size"] for c in shown["clients"]) == 5432
    assert sum(c["entities"]["Disease"] for c in shown["clients"]) == 5145


def test_an_ner_sentence_is_partitioned_by_its_dominant_entity_type():
    """The one label a partitioner sees (README, Data): the type with most mentions; a tie goes
    to the type rarer in the whole split, then alphabetically; 'O' without entities."""
    from bench.data.types import NerExample, TaskData

    def sentence(*types):
        tags = [t for kind in types for t in ("O", f"B-{kind}")] or ["O"]
        return NerExample(tuple(f"w{i}" for i in range(len(tags))), tuple(tags), "site", "doc")

    examples = [
        sentence("problem", "problem", "test"),  # most mentions: problem
        sentence(),  # no entity
        sentence("problem", "test"),  # a tie: test is rarer in the split (2 mentions against 4)
        sentence("treatment", "problem"),  # a tie: treatment is rarer (1 against 4)
        sentence("drug", "dose"),  # a tie of types seen once each: alphabetical
    ]
    data = TaskData("t", "ner", ["problem", "test", "treatment", "drug", "dose"], {"train": examples})
    assert data.partition_labels("train") == ["problem", "O", "test", "treatment", "dose"]


def test_quantity_alpha_skews_client_sizes():
    """README: "`quantity:ALPHA` skews sizes": client sizes spread far more at quantity:0.1 than at
    quantity:100 (near equal), over a few seeds; labels play no part."""
    labels = ["O"] * 1000

    def spread(spec: str) -> float:  # mean coefficient of variation of the 5 client sizes
        sizes = [[len(p) for p in parse_partition(spec).split(labels, labels, 5, seed)] for seed in range(5)]
        return float(np.mean([np.std(s) / np.mean(s) for s in sizes]))

    skewed, even = spread("quantity:0.1"), spread("quantity:100")
    assert even < 0.1 and skewed > 0.5 and skewed > 5 * even


def test_bench_run_help_lists_every_registered_partitioner():
    """ARCHITECTURE.md: a new file in partitions/ shows in `bench.run --help` (the list is read
    from the registry, as the methods' is), with :ALPHA where the partitioner takes one."""
    from bench.registry import PARTITIONERS
    from bench.run import build_parser

    (action,) = [a for a in build_parser()._actions if "--partition" in a.option_strings]
    listed = action.help.removeprefix("one of ").split(" (")[0].split(", ")
    assert listed == [f"{n}:ALPHA" if PARTITIONERS.get(n).takes_alpha else n for n in PARTITIONERS.names()]
    assert {"iid", "dirichlet:ALPHA", "quantity:ALPHA", "site"} <= set(listed)
