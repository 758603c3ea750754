"""The side-by-side harness: the memory sampler sees a whole process tree, the Flower side gets
exactly the suite clients' sentences, bad flags are one line."""

import json
import subprocess
import sys

import pytest

from bench.compare.__main__ import main
from bench.compare.memory import run_measured
from bench.compare.sides import flower_work
from bench.compare.workloads import WORKLOADS


def test_sampler_counts_the_children_of_the_command():
    child = "import time; b = b'x' * (300 << 20); time.sleep(3)"
    parent = f"import subprocess, sys, time; a = b'y' * (100 << 20); subprocess.run([sys.executable, '-c', {child!r}])"
    measured = run_measured([sys.executable, "-c", parent])
    assert measured["returncode"] == 0 and measured["samples"] >= 2
    assert 400 <= measured["peak_pss_mb"] < 600  # parent's 100 MB + child's 300 MB + two interpreters
    child_peak, parent_peak = measured["peak_pss_by_process_mb"]
    assert 300 <= child_peak < 350 and 100 <= parent_peak < 150  # each process's own peak


def test_measure_memory_prints_the_figures_and_needs_a_command(capsys):
    from bench.compare.measure_memory import main as measure

    assert measure(["--", sys.executable, "-c", "b = b'x' * (200 << 20); import time; time.sleep(1.2)"]) == 0
    assert json.loads(capsys.readouterr().out)["peak_pss_mb"] >= 200
    assert measure([]) == 2


def test_flower_clients_train_on_exactly_the_suite_clients_pieces():
    from bench.config import ExperimentConfig
    from bench.data import load_task
    from bench.engine.prepare import prepare_task
    from bench.engine.subsample import subsample

    w = WORKLOADS["B"]
    work = flower_work(w, 400)
    task = prepare_task(
        ExperimentConfig(
            task="ncbi-disease",
            method="fedavg",
            model="minilm",
            clients=w.clients,
            clients_per_round=w.per_round,
            max_length=64,
            train_subsample=400,
        )
    )
    train = subsample(load_task("ncbi-disease").splits["train"], 400)
    assert len(work["clients"]) == w.clients and work["per_round"] == w.per_round
    assert work["client_sizes"] == [len(ids) for ids in task.clients]  # FedAvg's weights: sentences
    for client, ids in zip(work["clients"], task.clients):
        assert len(client) == len(task.train.rows(ids))  # one piece per row the suite trains on
        assert [t for words, _ in client for t in words] == [t for i in ids for t in train[i].tokens]
        assert [t for _, tags in client for t in tags] == [t for i in ids for t in train[i].tags]
    assert sum(len(ids) for ids in task.clients) < 400  # held-out slices stay out
    test = work["test"]
    assert len(test["sentences"]) == 940 and len(test["pieces"]) == len(test["owner"]) > 940  # long ones split
    joined = [[] for _ in test["sentences"]]
    for (words, _), owner in zip(test["pieces"], test["owner"]):
        joined[owner] += words
    assert joined == [words for words, _ in test["sentences"]] and work["trainable"] == "all"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--workloads", "A,Z"], "unknown Z"),
        (["--sides", "suite,flowr"], "unknown flowr"),
        (["--flower-python", "/nope/python"], "not found"),
    ],
)
def test_bad_flags_are_one_line_exit_2(argv, expected, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1


def test_flower_app_imports_nothing_from_the_suite():
    import bench.compare

    for name in ("flower_app.py", "flower_apps.py", "flower_task.py"):
        source = f"{bench.compare.__path__[0]}/{name}"
        imports = [line.strip() for line in open(source) if line.strip().startswith(("import ", "from "))]
        assert imports and not any("bench" in line or "baselines" in line for line in imports)
        assert subprocess.run([sys.executable, "-m", "py_compile", source]).returncode == 0


def test_step_memory_prints_a_peak_per_step(capsys):
    import torch

    from bench.compare.step_memory import main as step_memory

    threads = torch.get_num_threads()
    assert step_memory(["--model", "tiny-bert", "--steps", "2", "--batch-size", "4", "--length", "16"]) == 0
    assert torch.get_num_threads() == threads  # its --threads 1 is its own, not its caller's
    printed = json.loads(capsys.readouterr().out)
    assert (
        len(printed["peak_over_build_per_step_mb"]) == len(printed["step_s"]) == 2
        and printed["private_after_build_mb"] > 0
    )
    assert abs(printed["grads_and_adamw_moments_mb"] - 3 * printed["trainable_weights_mb"]) <= 2


@pytest.mark.parametrize("name, sentences", [("A", 40), ("B", 400), ("C", 40)])  # B: 3 local epochs
def test_the_flower_task_trains_a_client_exactly_as_the_suite_does(name, sentences, tmp_path, monkeypatch):
    """Flower's train function (its own loop, data loader and model class) on the suite's pieces
    and seed, from the suite's start state, ends where the suite's training does (the floor runs
    the suite's bench.engine.training; on C with the frozen blocks in eval mode, as the cache)."""
    import torch

    from bench.compare import floor, flower_task
    from bench.engine.prepare import prepare_task

    w = WORKLOADS[name]
    work = flower_work(w, sentences)
    (tmp_path / "work.json").write_text(json.dumps(work))
    monkeypatch.setenv("BENCH_FLOWER_WORK", str(tmp_path / "work.json"))
    monkeypatch.setattr(flower_task, "WORK", {})
    cfg = w.config(sentences).with_settings(workers=1)
    threads = torch.get_num_threads()
    monkeypatch.setattr(floor, "STATE", {})  # the floor's worker state, here for this test only
    floor._setup(cfg.to_dict(), prepare_task(cfg))
    torch.set_num_threads(threads)  # _setup set a worker's; both sides train here with the same
    start = {n: t.clone() for n, t in floor.detach_state(floor.STATE["model"], floor.STATE["trained"]).items()}
    round_ = 1
    client = work["round_clients"][round_][0]  # one the suite trains in that round
    assert work["round_clients"][round_] == [int(c) for c in floor.sample_clients(cfg, round_)]
    _, suite = floor._train(start, client, round_)
    flower_start = flower_task.trained_state(flower_task.initial_model())  # the Flower server's
    assert sorted(flower_start) == sorted(start) and all(torch.equal(flower_start[k], start[k]) for k in start)

    model = flower_task.get_model()
    assert model.load_state_dict(start, strict=False).unexpected_keys == []
    rows = flower_task.load_data(work["clients"][client])
    flower_task.train_fn(model, rows, epochs=w.local_epochs, lr=w.lr, seed=work["client_seeds"][client][round_])
    flower = flower_task.trained_state(model)
    assert sorted(flower) == sorted(suite) and work["frozen_prefix_eval"] == (name == "C")
    assert all(torch.allclose(flower[k], suite[k], atol=1e-6, rtol=0) for k in suite)
    assert not all(torch.equal(suite[k], start[k]) for k in suite)  # it trained


def test_repeats_interleave_the_sides_and_report_medians(monkeypatch, tmp_path):
    """--repeats 3: the sides run a, b / b, a / a, b; each reports the median wall time and
    memory, the range and every run."""
    from argparse import Namespace

    from bench.compare import __main__ as compare

    calls, walls = [], {"a": [10.0, 30.0, 20.0], "b": [5.0, 7.0, 6.0]}

    def side(name):
        def run(w, tmp, args):
            assert tmp.is_dir() and not (tmp / name).exists()  # a fresh folder per run: nothing to reuse
            (tmp / name).mkdir()
            calls.append(name)
            return {
                "wall_s": walls[name][len([c for c in calls if c == name]) - 1],
                "peak_pss_mb": 100.0,
                "metric": 0.5,
            }

        return run, False

    monkeypatch.setattr(compare, "SIDES", {"a": side("a"), "b": side("b")})
    found = compare._compare(
        "A", tmp_path / "first", Namespace(sides="a,b", suite_only=False, repeats=3, train_subsample=None)
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert (
        found["a"]["wall_s"] == 20.0 and found["a"]["wall_s_range"] == [10.0, 30.0] and len(found["a"]["repeats"]) == 3
    )
    assert found["b"]["wall_s"] == 6.0 and found["b"]["peak_pss_mb"] == 100.0

    calls.clear()  # --once b: b runs in the first repeat only, its figure that run's
    found = compare._compare(
        "A", tmp_path / "second", Namespace(sides="a,b", suite_only=False, repeats=3, once="b", train_subsample=None)
    )
    assert calls == ["a", "b", "a", "a"] and found["b"]["wall_s"] == 5.0 and len(found["b"]["repeats"]) == 1


def test_targets_read_their_verdicts_off_the_results():
    """Each target's figure is the ratio of the sides it names; a target holds or not on the
    measured figure, and a target whose sides did not run is left out."""
    from bench.compare.targets import verdicts

    def side(wall, pss, f1):
        return {"wall_s": wall, "peak_pss_mb": pss, "metric": f1}

    results = {
        "A": {"suite": side(100, 1000, 0.66), "floor": side(95, 1200, 0.66), "flower_equal": side(99, 2100, 0.655)},
        "B": {"suite": side(100, 1000, 0.50), "floor": side(80, 900, 0.5), "flower_equal": side(120, 1900, 0.29)},
        "C": {"suite": side(100, 2001, 0.70), "flower_equal": side(131, 2500, 0.70)},
    }
    got = {(what, name): (x, ok) for what, name, x, ok in verdicts(results)}
    assert got[("suite wall time / floor's <= 1.10", "A")] == ("1.05", True)
    assert got[("suite wall time / floor's <= 1.10", "B")] == ("1.25", False)
    assert got[("Flower (num_cpus 1) wall time / suite's >= 1.0", "A")] == ("0.99", False)
    assert got[("Flower (num_cpus 1) wall time / suite's >= 1.3 (the frozen-prefix cache)", "C")] == ("1.31", True)
    assert got[("suite peak PSS / Flower's (num_cpus 1) <= 0.5", "A")] == ("0.48", True)
    assert got[("suite peak PSS / Flower's (num_cpus 1) <= 0.5", "B")] == ("0.53", False)
    assert got[("suite peak PSS <= 2000 MB", "C")] == ("2001", False)
    assert got[("test F1, suite - Flower (num_cpus 1), within 1 point", "A")] == ("+0.0050", True)
    assert got[("test F1, suite - Flower (num_cpus 1), within 1 point", "B")] == ("+0.2100", False)
    assert got[("test F1 above 0.3 on both sides (B learns)", "B")] == ("0.290", False)
    assert not any(name == "C" and "floor" in what for what, name in got)  # C ran no floor


def test_versions_record_every_package_of_both_environments(tmp_path):
    """flower.json's versions: each side's headline packages and every installed distribution,
    each read from its own interpreter (Flower's here a stand-in that answers as one would)."""
    import numpy
    import torch

    from bench.compare.__main__ import versions

    flower = tmp_path / "python"
    flower.write_text('#!/bin/sh\necho \'{"python": "3.10.1", "packages": {"flwr": "1.42.0", "tokenizers": "0.1"}}\'\n')
    flower.chmod(0o755)
    found = versions(str(flower))
    assert found["suite"]["torch"] == torch.__version__
    assert found["suite"]["packages"]["numpy"] == numpy.__version__
    assert found["flower"]["flwr"] == "1.42.0" and found["flower"]["torch"] is None  # not there: None, not guessed
    assert found["flower"]["python"] == "3.10.1" and found["flower"]["packages"]["tokenizers"] == "0.1"


def _floor_and_suite(tiny_corpus, tmp_path, monkeypatch, **settings) -> tuple[dict, dict, dict, dict]:
    """floor.run and the suite (local processes, 2 workers each) on one tiny config: the floor's
    result and last state, the suite's final.json and its checkpoint's last state."""
    from types import SimpleNamespace

    import torch

    from bench.compare import floor
    from bench.engine.server import run_experiment
    from tests.tiny import tiny_config

    cfg = tiny_config(tiny_corpus, clients=3, rounds=2, max_length=48, lr=3e-3, **settings)
    monkeypatch.setattr(floor, "WORKLOADS", {"T": SimpleNamespace(config=lambda subsample: cfg)})
    kept, digest = {}, floor.state_sha256

    def keep(state):  # the floor's last state, kept on its way into the digest
        kept["state"] = dict(state)
        return digest(state)

    monkeypatch.setattr(floor, "state_sha256", keep)
    found = floor.run("T", None, workers=2)
    final = run_experiment(cfg.with_settings(workers=2, cpus_per_worker=None), tmp_path / "suite", progress=False)
    suite_state = torch.load(tmp_path / "suite" / "checkpoint.pt", weights_only=False)["states"]["global"]
    suite_val = [json.loads(x)["val_metric"] for x in (tmp_path / "suite" / "rounds.jsonl").read_text().splitlines()]
    assert found["workers"] == 2 and len(found["val_per_round"]) == 3  # before round 1, then each round
    assert found["val_per_round"][1:] == suite_val
    assert (found["metric"], found["metric_last"]) == (final["metric"], final["metric_last"])
    assert found["per_client"] == final["per_client"]
    return found, kept["state"], final, suite_state


def test_the_floor_trains_the_suites_weights_bit_for_bit(tiny_corpus, tmp_path, monkeypatch):
    """floor.run (its pool from the suite's fork server, the start state from a process, the
    running mean over 2 of 3 clients a round) ends on the suite's weights bit for bit and on its
    scores: every round's validation score, the best and last states' test scores and every
    client's held-out score. The tiny model's scores barely move, so the weights' digest is what
    would catch a floor that trained otherwise (a client's seed shifted a round fails it)."""
    from bench.compare import floor

    found, _, _, suite_state = _floor_and_suite(tiny_corpus, tmp_path, monkeypatch, clients_per_round=2)
    assert found["state_sha256"] == floor.state_sha256(suite_state)
    assert found["state_sha256"] != floor.state_sha256({k: v + 1 for k, v in suite_state.items()})


def test_the_floor_recomputes_what_the_suites_prefix_cache_holds_to_rounding(tiny_corpus, tmp_path, monkeypatch):
    """On layer-skipping the suite caches the frozen blocks' outputs and the floor recomputes them
    in eval mode: the same weights to rounding (the cache's rows are computed in other batches),
    the same scores; with dropout in the recomputed blocks they would part by far more."""
    import torch

    _, state, _, suite_state = _floor_and_suite(tiny_corpus, tmp_path, monkeypatch, method="layerskip", layers="top:1")
    assert sorted(state) == sorted(suite_state)
    assert all(torch.allclose(state[k], suite_state[k], atol=1e-4, rtol=0) for k in state)


def test_the_flower_side_records_its_threads_and_refuses_other_clients(tmp_path):
    """run_flower's plumbing, with a stand-in for Flower's interpreter that answers as the apps
    do (flower_apps.py needs Flower's environment): the clients' and driver's torch threads are
    recorded, and a run that trained other clients than the suite's is an error, not a figure."""
    import os

    from bench.compare.sides import run_flower
    from bench.errors import BenchError

    w = WORKLOADS["A"]
    fake = tmp_path / "flower-python"
    answer = (
        "import json, sys; work = json.load(open(sys.argv[2])); shift = int(sys.argv[4]); "
        "json.dump({'trained': [sorted(c)[shift:] for c in work['round_clients']], 'val_f1': [{'round': 1, 'f1': 0.5}], "
        "'test_f1': 0.5, 'test_f1_last': 0.5, 'per_client': [], "
        "'client_threads': [[1] * len(c) for c in work['round_clients']], 'driver_threads': 2}, open(sys.argv[3], 'w'))"
    )
    for shift in (0, 1):
        fake.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{answer}" "$@" {shift}\n')
        os.chmod(fake, 0o755)
        if shift:
            with pytest.raises(BenchError, match="Flower trained clients"):
                run_flower(w, tmp_path, 40, str(fake), 1, "shifted")
            continue
        got = run_flower(w, tmp_path, 40, str(fake), 1)
        assert got["torch_threads"] == {"clients": [[1] * w.per_round] * 2, "driver": 2}
        assert got["client_resources"] == {"num_cpus": 1} and got["metric"] == 0.5
        assert got["prepared_outside_s"] > 0  # flower_work's seconds, spent outside Flower's measured tree
