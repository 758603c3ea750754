"""The comparison protocol: three disjoint splits, best-round selection, early stopping, tuning
on validation only, paired statistics, and test labels that change no choice."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bench.config import ExperimentConfig
from bench.data import load_task
from bench.engine import server
from bench.engine.convergence import stalled
from bench.metrics import ner_scores
from bench.protocol import tuning
from bench.protocol.grid import Cell
from bench.report.stats import metric_from_items, paired_bootstrap, seed_interval
from tests.cli import run_all_main
from tests.tiny import tiny_config


@pytest.mark.parametrize("task", ["i2b2-2010", "i2b2-2014", "mimic-mortality"])
def test_splits_are_disjoint_and_deterministic(tiny_corpus, task):
    folder = tiny_corpus / {"i2b2-2010": "i2b2-2010", "i2b2-2014": "i2b2-2014", "mimic-mortality": "mimic-iii"}[task]
    first, again = load_task(task, folder), load_task(task, folder)
    assert list(first.splits) == ["train", "validation", "test"]
    unit = (lambda ex: ex.group) if task.startswith("mimic") else (lambda ex: (ex.site, ex.doc_id))
    units = {name: {unit(ex) for ex in split} for name, split in first.splits.items()}
    assert all(units.values()), "every split has examples"
    assert not units["train"] & units["validation"] and not units["train"] & units["test"]
    assert not units["validation"] & units["test"]
    for name in first.splits:
        assert [ex.doc_id for ex in first.splits[name]] == [ex.doc_id for ex in again.splits[name]]


@pytest.mark.parametrize(
    "vals, patience, delta, expected",
    [
        ([0.1, 0.2, 0.3], 2, 0.0, False),  # still improving
        ([0.1, 0.5, 0.5, 0.5], 2, 0.001, True),  # flat for 2 rounds
        ([0.1, 0.5, 0.4, 0.504], 2, 0.005, True),  # a gain below min_delta
        ([0.1, 0.5, 0.4, 0.51], 2, 0.005, False),  # a gain above it
        ([0.5, 0.5], 2, 0.0, False),  # too few rounds to tell
        ([0.0, 0.0, 0.0, 0.0, 0.0], 3, 0.005, False),  # never left the starting plateau: not converged
        ([0.0, 0.0, 0.0, 0.002, 0.002], 3, 0.005, False),  # a blip under min_delta: still on it
        ([0.0, 0.0, 0.0, 0.01, 0.012], 3, 0.005, False),  # leaving it
        ([0.0, 0.3, 0.2, 0.2, 0.2], 3, 0.005, True),  # left it, then stalled
        ([0.3, 0.2, 0.2, 0.2], 3, 0.005, True),  # best in round 1, then worse: stalled, not flat
        ([0.0] * 14, 3, 0.005, False),  # 14 rounds at F1 0: maybe still slow to start
        ([0.0] * 15, 3, 0.005, True),  # FLAT_LIMIT rounds without leaving the start: dead
        ([0.0] * 14 + [0.1], 3, 0.005, False),  # left it in the last round allowed
        ([0, 0, 0, 0.137, 0, 0, 0], 3, 0.005, False),  # one spike, back on the plateau: still slow to start
        ([0, 0, 0, 0.137] + [0] * 11, 3, 0.005, True),  # ... until FLAT_LIMIT rounds
    ],
)
def test_stalled(vals, patience, delta, expected):
    assert stalled(vals, patience, delta) is expected


def test_the_plateau_is_measured_from_the_untrained_score():
    """Round 1 already above the untrained 0.0 and flat since: left the start, then stalled."""
    assert stalled([0.2, 0.2, 0.2, 0.2], 3, 0.005, start=0.0) is True
    assert stalled([0.2, 0.2, 0.2, 0.2], 3, 0.005) is False  # without it, round 1 is the start


def test_falling_below_the_untrained_score_is_still_the_starting_plateau():
    """NCBI's untrained model scores F1 0.012; a model that has learned to predict only `O`
    scores 0 for a while before it finds entities: slow to start, not stalled (a top:2 sweep
    point was stopped at round 6 by the two-sided test this replaces)."""
    assert stalled([0.0] * 6, 5, 0.005, start=0.012) is False
    assert stalled([0.0] * 14, 5, 0.005, start=0.012) is False
    assert stalled([0.0] * 15, 5, 0.005, start=0.012) is True  # FLAT_LIMIT rounds: dead
    assert stalled([0.0, 0.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], 5, 0.005, start=0.012) is True  # left it, then stalled


def test_best_validation_round_is_reported_and_early_stop_fires(tiny_corpus, tmp_path, monkeypatch):
    """Validation peaks in round 2 (scripted), then stalls: the run stops after round 4 and
    reports round 2's state, whose test score differs from the last state's."""
    script = iter([0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    real = server.play_round

    def scripted(*args, **kwargs):
        states, line = real(*args, **kwargs)
        return states, {**line, "val_metric": next(script)}

    monkeypatch.setattr(server, "play_round", scripted)
    cfg = tiny_config(tiny_corpus, rounds=8, max_length=48, lr=5e-3, early_stop=True, patience=2)
    final = server.run_experiment(cfg, tmp_path, progress=False)
    rounds = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert [r["val_metric"] for r in rounds] == [0.1, 0.5, 0.3, 0.2]
    assert final["rounds_run"] == 4 and final["stopped_early"] and final["converged"]
    assert final["best_round"] == 2 and final["val_metric"] == 0.5
    assert rounds[1]["metric"] != rounds[3]["metric"], "the test must tell the two states apart"
    assert final["metric"] == pytest.approx(rounds[1]["metric"])
    assert final["metric_last"] == pytest.approx(rounds[3]["metric"])
    groups = json.loads((tmp_path / "test_groups.json").read_text())  # i2b2 notes: resampled whole
    assert groups["unit"] == "document" and len(groups["groups"]) == len(
        json.loads((tmp_path / "test_items.json").read_text())[0]
    )


def _point(group: str, lr: float, run_id: str) -> tuning.SweepPoint:
    cfg = ExperimentConfig(task="conll", method="fedavg", lr=lr)
    return tuning.SweepPoint(group, (("lr", lr),), Cell(run_id, cfg))


def test_tuning_picks_the_argmax_of_validation_never_test():
    points = [
        _point("g1", 1e-4, "a"),
        _point("g1", 1e-3, "b"),
        _point("g1", 1e-2, "c"),
        _point("g2", 1e-4, "d"),
        _point("g2", 1e-3, "e"),
    ]
    finals = {
        "a": {"val_metric": 0.6, "metric": 0.9},
        "b": {"val_metric": 0.7, "metric": 0.1},
        "c": {"val_metric": 0.65},
        "d": {"val_metric": 0.5},
        "e": {"status": "failed"},
    }
    choices, rows = tuning.choose(points, finals)
    assert choices == {"g1": {"lr": 1e-3}, "g2": {"lr": 1e-4}}
    assert [r["run_id"] for r in rows if r["chosen"]] == ["b", "d"]


def test_ner_items_give_seqeval_micro_f1():
    gold = [["B-D", "I-D", "O"], ["O", "B-D"], ["B-D", "O", "B-D"]]
    pred = [["B-D", "I-D", "O"], ["B-D", "O"], ["B-D", "O", "O"]]
    scores = ner_scores(gold, pred)
    assert scores["items"] == [[1, 0, 0], [0, 1, 1], [1, 0, 1]]
    assert metric_from_items("ner", scores["items"]) == pytest.approx(scores["metric"])


def test_paired_bootstrap_on_a_hand_made_pair():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, size=400)
    right = np.stack([gold, gold], axis=1).tolist()  # A: always right
    wrong = np.stack([gold, np.where(rng.random(400) < 0.3, 1 - gold, gold)], axis=1).tolist()  # B: 30% flipped
    better = paired_bootstrap("cls", [([right], [wrong]), ([right], [wrong])], n_labels=2, reps=300)
    assert better["diff"] > 0.2 and better["lo"] > 0 and not better["contains_zero"]
    same = paired_bootstrap("cls", [([wrong], [wrong])], n_labels=2, reps=100)
    assert same["diff"] == 0 and same["lo"] == same["hi"] == 0 and same["contains_zero"]
    with pytest.raises(ValueError, match="different test sets"):
        paired_bootstrap("cls", [([right], [wrong[:10]])])


def test_seed_interval_is_a_t_interval():
    out = seed_interval([0.70, 0.72, 0.74])
    assert out["mean"] == pytest.approx(0.72) and out["std"] == pytest.approx(0.02)
    assert out["ci95"] == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-5)
    assert seed_interval([0.5])["ci95"] is None


def _i2b2_folder(source: Path, folder: Path, shuffle_test: bool) -> Path:
    """A copy of an i2b2 2010 release tree; optionally with every test concept's type rotated
    (problem -> test -> treatment -> problem), so test F1 rewards the model's type errors rather
    than its skill: choices read from test scores would then differ from choices read from validation."""
    import re
    import shutil

    from bench.data.i2b2_2010 import TEST_CON_DIR

    shutil.copytree(source, folder)
    if shuffle_test:
        rotate = {"problem": "test", "test": "treatment", "treatment": "problem"}
        for con in sorted((folder / TEST_CON_DIR).glob("*.con")):
            con.write_text(re.sub(r't="([a-z]+)"', lambda m: f't="{rotate[m.group(1)]}"', con.read_text()))
    return folder


def test_shuffled_test_labels_change_no_choice(tiny_corpus, tmp_path):
    """Acceptance of the protocol: the chosen lr, best rounds, stopping rounds and auto:K blocks are the same with
    clean and with rotated test labels, while the test scores themselves differ. Test is scored
    every round (test_every 1), so a choice that read the rounds' test scores would show."""
    outcomes = {}
    for shuffled in (False, True):
        data = _i2b2_folder(tiny_corpus / "i2b2-2010", tmp_path / f"data-{shuffled}", shuffled)
        grid = tmp_path / f"g-{shuffled}.yaml"
        grid.write_text(
            f"""name: t
defaults: {{model: tiny-bert, clients: 2, rounds: 5, max_length: 32, data_dir: "{data}", test_every: 1, train_subsample: 60,
           early_stop: {{patience: PATIENCE, min_delta: 0.0}}}}
tasks: [i2b2-2010]
methods: [{{method: fedavg}}, {{method: layerskip, layers: "auto:1"}}]
partitions: [iid]
seeds: [0]
tune: {{lr: [1.0e-3, 3.0e-3, 1.0e-2]}}
""".replace("PATIENCE", str(PATIENCE))
        )
        out = tmp_path / f"out-{shuffled}"
        run_all_main("--grid", grid, "--out", out)
        if not shuffled:  # --plan counts a tuned cell as done under its chosen values' identity
            plan = run_all_main("--grid", grid, "--out", out, "--plan").stdout
            assert "distinct cells: 2 (a cell shared by studies counted once), 2 done" in plan
        tuned = sorted(
            (r["method"], r["value"], float(r["val_metric"]), r["chosen"])
            for r in csv.DictReader(open(out / "tuning.csv"))
        )
        finals = {}
        for path in sorted((out / "runs").glob("*/final.json")):
            f = json.loads(path.read_text())
            finals[(f["method"], f["config"]["lr"])] = f
        outcomes[shuffled] = {
            "tuning": tuned,
            "best_rounds": {k: f["best_round"] for k, f in finals.items()},
            "rounds_run": {k: f["rounds_run"] for k, f in finals.items()},  # where early stopping fired
            "blocks": {k: f["method_info"].get("blocks") for k, f in finals.items()},
            "test": {k: f["metric"] for k, f in finals.items()},
            "round_tests": [
                json.loads(line)["metric"]
                for path in sorted((out / "runs").glob("*/rounds.jsonl"))
                for line in path.read_text().splitlines()
            ],
            "test_picks": _test_picks(out),
        }
    clean, shuffled = outcomes[False], outcomes[True]
    assert clean["tuning"] == shuffled["tuning"]
    assert clean["best_rounds"] == shuffled["best_rounds"]
    assert clean["rounds_run"] == shuffled["rounds_run"]
    assert clean["blocks"] == shuffled["blocks"] and clean["blocks"][("layerskip", 3e-3)] is not None
    assert len(set(clean["tuning"])) == 6 and any(v > 0.1 for _, _, v, _ in clean["tuning"]), (
        "choices among real scores"
    )
    assert None not in clean["round_tests"] and clean["round_tests"] != shuffled["round_tests"]
    changed = [k for k in clean["test"] if clean["test"][k] != shuffled["test"][k]]
    assert len(changed) >= 2, "the shuffled labels must reach the test scores"
    # the positive controls: the lr, best round and stopping round a selector reading the rounds'
    # test scores would pick differ between the two corpora, so such a selector would have shown
    # in the equalities above (the grid, 5 rounds, 3 lrs and 60 training sentences, was sized so
    # that each does; auto:K's blocks cannot have one, the probe ranks the blocks alike on either
    # test set: tests/baselines/test_adaptive_layers.py checks directly that it reads only the
    # clients' training rows)
    for pick in ("lr", "best_round", "stop_round"):
        assert clean["test_picks"][pick] != shuffled["test_picks"][pick], pick


PATIENCE = 2  # the shuffled-labels grid's early stopping


def _test_picks(out: Path) -> dict:
    """What a selector reading the rounds' test scores instead of validation would pick: each
    method's lr (the best test score of its sweep), each run's best round, and each run's
    stopping round under the patience rule (None: not within the rounds the run recorded)."""
    lrs, best, stop = {}, {}, {}
    for path in sorted((out / "runs").glob("*/final.json")):
        f = json.loads(path.read_text())
        tests = [json.loads(x)["metric"] for x in (path.parent / "rounds.jsonl").read_text().splitlines()]
        key = (f["method"], f["config"]["lr"])
        lrs.setdefault(f["method"], []).append((max(tests), f["config"]["lr"]))
        best[key] = 1 + max(range(len(tests)), key=tests.__getitem__)
        stop[key] = next((r for r in range(1, len(tests) + 1) if stalled(tests[:r], PATIENCE, 0.0)), None)
    return {"lr": {m: max(v)[1] for m, v in lrs.items()}, "best_round": best, "stop_round": stop}


def test_a_report_on_an_unfinished_sweep_leaves_untuned_groups_out():
    from bench.errors import BenchError

    points = [_point("g1", 1e-4, "a"), _point("g1", 1e-3, "b"), _point("g2", 1e-4, "d")]
    finals = {"a": {"val_metric": 0.6}}  # b and all of g2 have not run yet
    with pytest.raises(BenchError, match="no point"):
        tuning.choose(points, finals)
    choices, rows = tuning.choose(points, finals, partial=True)
    assert choices == {"g1": {"lr": 1e-4}} and {r["run_id"] for r in rows} == {"a", "b"}


def test_every_method_gets_the_same_tuning_budget():
    from bench.errors import BenchError

    base = ExperimentConfig(task="conll", method="fedavg")
    cells = [
        Cell("a", base, {"lr": [1e-4, 3e-4, 1e-3]}),
        Cell("b", base.with_settings(method="lora"), {"lr": [1e-3, 3e-3]}),
    ]
    with pytest.raises(BenchError, match="same number of points"):
        tuning.check_cells(cells, "g.yaml")


def test_choices_from_another_sweep_are_refused(tmp_path):
    from bench.errors import BenchError

    path = tmp_path / "tuned.yaml"
    tuning.write_choices(
        path,
        "g",
        {"fedavg": {"lr": [1e-4, 3e-4]}},
        {"x": {"lr": 1e-4}},
        [
            {
                "group": "x",
                "task": "t",
                "method": "fedavg",
                "layers": "",
                "partition": "iid",
                "epsilon": None,
                "val_metric": 0.5,
                "chosen": True,
                "run_id": "r",
            }
        ],
    )
    assert tuning.read_choices(path, {"fedavg": {"lr": [1e-4, 3e-4]}}) == (["lr"], {"x": {"lr": 1e-4}})
    with pytest.raises(BenchError, match="other values"):
        tuning.read_choices(path, {"fedavg": {"lr": [1e-4, 1e-3]}})


@pytest.mark.parametrize("tune", [False, True])
def test_a_new_method_in_a_tuned_grid_is_told_to_take_a_range_or_a_value(tmp_path, tune, monkeypatch):
    """ARCHITECTURE.md's recipe, followed in the quick grid (which has a `tuned:` file): a method
    line that sweeps nothing has no choice in the file, and --tune does not sweep it either, so
    the error says what does help (before, it said 'run with --tune', which fails the same way),
    and says it before anything trains (with --tune it came after the whole sweep)."""
    from bench.protocol import study

    monkeypatch.setattr(study, "run_cells", lambda *a, **k: pytest.fail("trained before the error"))
    grid = (Path(__file__).resolve().parents[1] / "bench" / "grids" / "quick.yaml").read_text()
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "quick.yaml").write_text(
        (Path(__file__).resolve().parents[1] / "bench" / "grids" / "tuned" / "quick.yaml").read_text()
    )
    (tmp_path / "q.yaml").write_text(grid.replace("  - {method: fedavg,", "  - {method: local}\n  - {method: fedavg,"))
    args = ["--grid", tmp_path / "q.yaml", "--out", tmp_path / "out"] + (["--tune"] if tune else [])
    done = run_all_main(*args, check=False)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "no tuned choice for i2b2-2010__local" in err[0], done.stderr
    assert err[0].endswith("give its grid entry a 'tune' range or a value for lr")
