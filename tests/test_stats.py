"""The report's statistics, recomputed by hand: seed-level intervals, convergence labels,
the pooled matched-accuracy target, and a report that is a function of its runs."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from bench.engine.convergence import convergence
from bench.report.matched import matched_columns
from bench.report.stats import paired_bootstrap, seed_paired_interval
from bench.report.write import write_report


def test_seed_level_interval_is_scipys_t_interval():
    diffs = [0.031, -0.004, 0.039]  # hand-made per-seed differences
    got = seed_paired_interval(diffs)
    mean, sem = np.mean(diffs), stats.sem(diffs)
    lo, hi = stats.t.interval(0.95, len(diffs) - 1, loc=mean, scale=sem)
    assert got["diff"] == pytest.approx(mean) and got["lo"] == pytest.approx(lo) and got["hi"] == pytest.approx(hi)
    assert got["contains_zero"] and got["seeds"] == 3
    assert seed_paired_interval([0.02, 0.021, 0.019])["contains_zero"] is False  # consistent seeds: significant
    assert seed_paired_interval([0.02]) is None  # one seed gives no interval


def test_the_bootstrap_shares_one_resample_across_seeds():
    """Two seeds with mirrored items: if each seed drew its own index the difference would wander;
    with one shared index per replicate the per-replicate mean difference is exactly 0."""
    a = [[[1, 0, 0]], [[0, 1, 0]], [[1, 0, 1]], [[0, 0, 1]]]
    b = [[[0, 1, 0]], [[1, 0, 0]], [[0, 0, 1]], [[1, 0, 1]]]
    flat_a, flat_b = [row[0] for row in a], [row[0] for row in b]
    result = paired_bootstrap("ner", [([flat_a], [flat_b]), ([flat_b], [flat_a])], reps=200)
    assert result["lo"] == pytest.approx(0.0) and result["hi"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    "curve, untrained, label",
    [
        ([0.2, 0.5, 0.6, 0.601, 0.602, 0.6], 0.0, "converged"),  # no gain above min_delta in 3 rounds
        ([0.2, 0.4, 0.5, 0.55, 0.6, 0.65], 0.0, "capped"),  # still climbing when the cap came
        ([0.0, 0.0, 0.0, 0.137, 0.0, 0.0, 0.0], 0.0, "dead"),  # one spike, then back where it started
        ([0.0] * 15, 0.0, "dead"),  # never left the start
        ([0.43, 0.434, 0.433, 0.434], 0.43, "dead"),  # the majority class, where the untrained model was
        ([0.497, 0.593, 0.554, 0.571, 0.594], 0.0, "converged"),  # the LoRA point: +0.001 in 3 rounds
        ([0.3] * 6, None, "converged"),  # stored before the untrained score: measured against 0, not round 1
    ],
)
def test_convergence_labels_on_scripted_curves(curve, untrained, label):
    assert convergence(curve, untrained, patience=3, min_delta=0.005) == label


def _run(seed: int, val: list[float], method: str = "fedavg") -> dict:
    return {
        "config": {"seed": seed, "method": method},
        "val_metric": max(val),
        "history": [{"round": i + 1, "val_metric": v, "bytes_up": 10, "bytes_down": 10} for i, v in enumerate(val)],
    }


def test_one_pooled_target_and_medians_with_never_as_infinite():
    cen = [_run(0, [0.70]), _run(1, [0.80]), _run(2, [0.75])]  # mean best 0.75: target 0.735
    runs = [_run(0, [0.5, 0.74]), _run(1, [0.6, 0.7, 0.73]), _run(2, [0.736])]
    got = matched_columns(runs, cen)
    assert got["target"] == pytest.approx(0.98 * 0.75)
    assert got["matched_seeds"] == "2/3"
    assert got["matched_rounds"] == 1.0 * 2  # median of (2, inf, 1)
    never = matched_columns([_run(0, [0.1]), _run(1, [0.1]), _run(2, [0.74])], cen)
    assert never["matched_seeds"] == "1/3" and never["matched_rounds"] is None and never["matched_bytes"] is None
    assert math.isinf(np.median([1, math.inf, math.inf]))


def test_matched_bytes_counts_uploads_and_downloads():
    """README: matched_bytes is the bytes up AND down until the validation metric first reaches the
    target. 10 bytes up and 3 down a round: seeds reaching it at rounds 2, 3 and 1 moved 26, 39 and
    13 bytes, median 26 (uploads alone would give 20; downloads alone 6)."""
    cen = [_run(0, [0.80])]  # target 0.784

    def lopsided(seed: int, val: list[float]) -> dict:
        run = _run(seed, val)
        run["history"] = [{**line, "bytes_up": 10, "bytes_down": 3} for line in run["history"]]
        return run

    runs = [lopsided(0, [0.5, 0.79]), lopsided(1, [0.5, 0.6, 0.785]), lopsided(2, [0.8])]
    got = matched_columns(runs, cen)
    assert got["matched_seeds"] == "3/3" and got["matched_rounds"] == 2.0
    assert got["matched_bytes"] == 2 * (10 + 3)


def test_reduction_vs_fedavg_is_the_share_of_fedavgs_total_bytes_saved():
    """README: the table's "reduction vs FedAvg" is 100 * (1 - total bytes / FedAvg's total bytes),
    positive when the method moves less: a method moving a third of FedAvg's bytes (up + down)
    reads +66.7, FedAvg itself 0.0."""
    from bench.report.render import display_rows
    from bench.report.tables import main_table

    def run(method: str, seed: int, up: int, down: int) -> dict:
        config = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        if method == "layerskip":
            config["layers"] = "top:1"
        return {
            "task": "t", "method": method, "status": "ok", "metric": 0.7, "val_metric": 0.7, "config": config,
            "bytes_up_total": up, "bytes_down_total": down, "trainable_params": 1, "total_params": 3,
            "rounds_run": 1, "best_round": 1, "task_kind": "ner", "n_labels": 3,
            "history": [{"round": 1, "val_metric": 0.7, "bytes_up": up, "bytes_down": down}],
        }  # fmt: skip

    # FedAvg moves 600 + 300 = 900 bytes; layerskip 100 + 200 = 300 (split the other way round)
    runs = [run("fedavg", s, 600, 300) for s in (1, 2)] + [run("layerskip", s, 100, 200) for s in (1, 2)]
    rows = {t["method"]: t for t in main_table(runs)}
    assert rows["layerskip top:1"]["reduction_vs_fedavg_pct"] == pytest.approx(100 * 2 / 3)
    assert rows["fedavg"]["reduction_vs_fedavg_pct"] == pytest.approx(0.0)
    head, shown = display_rows([rows["fedavg"], rows["layerskip top:1"]])
    column = head.index("reduction vs fedavg (%)")
    assert [r[column] for r in shown] == ["0.0", "66.7"]


def test_the_same_runs_give_the_same_tables_twice(tmp_path):
    """Three stored runs (two methods, three seeds of one) through the report twice: identical files."""
    runs = tmp_path / "runs"
    for i, (method, seed) in enumerate([("centralized", 0), ("fedavg", 0), ("fedavg", 1)]):
        folder = runs / f"r{i}"
        folder.mkdir(parents=True)
        config = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        items = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [1, 0, 0]]
        final = {
            "task": "t", "method": method, "status": "ok", "metric_name": "entity_micro_f1", "metric": 0.5 + 0.1 * i, "val_metric": 0.6, "config": config,
            "bytes_up_total": 0 if method == "centralized" else 100, "bytes_down_total": 0, "trainable_params": 1,
            "total_params": 1, "rounds_run": 2, "best_round": 2, "task_kind": "ner", "n_labels": 3,
        }  # fmt: skip
        (folder / "final.json").write_text(json.dumps(final))
        (folder / "rounds.jsonl").write_text(
            "".join(
                json.dumps({"round": r, "val_metric": v, "bytes_up": 1, "bytes_down": 1}) + "\n"
                for r, v in [(1, 0.5), (2, 0.6)]
            )
        )
        (folder / "test_items.json").write_text(json.dumps([items]))
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        write_report(out, runs_dir=runs)
    for name in ("summary.csv", "tables/main.csv", "tables/main.md", "report.md"):
        assert (first / name).read_text() == (second / name).read_text().replace("# Results: b", "# Results: a"), name


def test_the_tuning_seed_is_marked_and_left_out_of_the_table(tmp_path):
    """A run that chose a setting is `tuning` in summary.csv and not among the cell's reported seeds."""
    runs = tmp_path / "runs"
    for i, seed in enumerate([0, 1, 2]):
        folder = runs / f"r{i}"
        folder.mkdir(parents=True)
        config = {"task": "t", "method": "fedavg", "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        final = {
            "task": "t", "method": "fedavg", "status": "ok", "metric_name": "entity_micro_f1", "metric": [0.9, 0.5, 0.6][i],
            "val_metric": 0.6, "config": config, "bytes_up_total": 1, "bytes_down_total": 1, "trainable_params": 1,
            "total_params": 1, "rounds_run": 1, "best_round": 1, "task_kind": "ner", "n_labels": 3,
        }  # fmt: skip
        (folder / "final.json").write_text(json.dumps(final))
        (folder / "rounds.jsonl").write_text(
            json.dumps({"round": 1, "val_metric": 0.6, "bytes_up": 1, "bytes_down": 1}) + "\n"
        )
    write_report(tmp_path / "out", runs_dir=runs, tuning={"r0"})
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    role = summary[0].split(",").index("role")
    assert [line.split(",")[role] for line in summary[1:]] == ["tuning", "reported", "reported"]
    row = (tmp_path / "out" / "tables" / "main.csv").read_text().splitlines()
    header, values = row[0].split(","), row[1].split(",")
    assert values[header.index("seeds")] == "2" and float(values[header.index("metric")]) == pytest.approx(0.55)


def test_summary_counts_each_runs_seconds_less_its_recorded_pauses(tmp_path):
    """summary.csv's run_s is wall_s less the pauses its rounds recorded (bench.protocol.run_time)."""
    folder = tmp_path / "runs" / "r0"
    folder.mkdir(parents=True)
    config = {"task": "t", "method": "fedavg", "model": "m", "partition": "iid", "clients": 2, "seed": 1}
    final = {
        "task": "t", "method": "fedavg", "status": "ok", "metric_name": "entity_micro_f1", "metric": 0.5,
        "val_metric": 0.6, "config": config, "bytes_up_total": 1, "bytes_down_total": 1, "trainable_params": 1,
        "total_params": 1, "rounds_run": 2, "best_round": 2, "task_kind": "ner", "n_labels": 3, "wall_s": 100.0,
    }  # fmt: skip
    (folder / "final.json").write_text(json.dumps(final))
    lines = [{"round": 1, "wall_s": 30.0, "paused_s": 0.0}, {"round": 2, "wall_s": 70.0, "paused_s": 40.0}]
    (folder / "rounds.jsonl").write_text(
        "".join(json.dumps({**x, "val_metric": 0.6, "bytes_up": 1, "bytes_down": 1}) + "\n" for x in lines)
    )
    write_report(tmp_path / "out", runs_dir=tmp_path / "runs")
    (row,) = csv.DictReader((tmp_path / "out" / "summary.csv").open())
    assert (float(row["wall_s"]), float(row["run_s"])) == (100.0, 60.0)


def test_two_seeds_give_an_interval_but_no_verdict():
    """Two per-seed differences that happen to agree give a near-zero width by chance (1 df)."""
    got = seed_paired_interval([-0.024875, -0.024884])
    assert got["verdict"] is False and not got["contains_zero"] and got["no_verdict"] == "2 seeds"
    assert seed_paired_interval([0.02, 0.021, 0.019])["verdict"] is True


def test_no_verdict_on_a_nan_or_on_differences_that_do_not_vary():
    """A NaN is no evidence, and three identical differences give a zero-width interval that
    says nothing about how the difference varies between seeds."""
    nan = seed_paired_interval([0.01, float("nan"), 0.02])
    assert nan["verdict"] is False and nan["contains_zero"] is True
    flat = seed_paired_interval([0.004, 0.004, 0.004])
    assert flat["verdict"] is False and flat["no_verdict"] == nan["no_verdict"] == "no finite spread over seeds"
    judged = seed_paired_interval([0.004, 0.005, 0.004])
    assert judged["verdict"] is True and judged["no_verdict"] is None


def test_non_finite_validation_scores_do_not_decide_stopping_or_labels():
    """max() over a NaN depends on order and comparisons with it are false: the rounds without a
    score are left out, so these curves read as the same curves without them."""
    from bench.engine.convergence import stalled

    nan = float("nan")
    assert convergence([0.5, 0.6, nan, nan, nan, 0.6, 0.6, 0.6], 0.01, 3, 0.002) == "converged"
    assert convergence([nan, 0.5, 0.6, 0.6, 0.6, 0.6], 0.01, 3, 0.002) == convergence(
        [0.5, 0.6, 0.6, 0.6, 0.6], 0.01, 3, 0.002
    )
    assert stalled([0.5, 0.6, nan, 0.6, 0.6, 0.6], 3, 0.002, start=0.01) is True


def test_main_csv_says_how_many_pairs_each_comparison_has_and_whether_it_is_judged(tmp_path):
    """Three reported seeds of FedAvg against two of centralized: the pairs are the two seeds both
    have, too few for a verdict (significant empty); the gap to centralized is the paired one.
    Against FedAvg's three, two methods are judged: the columns hold the t-interval's ends and
    its verdict, one each way."""
    import csv

    runs = tmp_path / "runs"
    scores = {
        ("centralized", 1): 0.70,
        ("centralized", 2): 0.80,
        ("fedavg", 1): 0.60,
        ("fedavg", 2): 0.75,
        ("fedavg", 3): 0.20,
        ("local", 1): 0.66,  # FedAvg + 0.06, 0.05, 0.07: judged, above
        ("local", 2): 0.80,
        ("local", 3): 0.27,
        ("fedprox", 1): 0.65,  # FedAvg + 0.05, -0.04, 0.02: judged, not significant
        ("fedprox", 2): 0.71,
        ("fedprox", 3): 0.22,
    }
    for i, ((method, seed), metric) in enumerate(scores.items()):
        folder = runs / f"r{i}"
        folder.mkdir(parents=True)
        config = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        final = {
            "task": "t", "method": method, "status": "ok", "metric_name": "entity_micro_f1", "metric": metric, "val_metric": 0.6, "config": config,
            "bytes_up_total": 0 if method == "centralized" else 100, "bytes_down_total": 0, "trainable_params": 1,
            "total_params": 1, "rounds_run": 1, "best_round": 1, "task_kind": "ner", "n_labels": 3,
        }  # fmt: skip
        (folder / "final.json").write_text(json.dumps(final))
        (folder / "rounds.jsonl").write_text(
            json.dumps({"round": 1, "val_metric": 0.6, "bytes_up": 1, "bytes_down": 1}) + "\n"
        )
    write_report(tmp_path / "out", runs_dir=runs)
    rows = {r["method"]: r for r in csv.DictReader(open(tmp_path / "out" / "tables" / "main.csv"))}
    fedavg = rows["fedavg"]
    assert fedavg["vs_centralized_seed_n"] == "2" and fedavg["vs_centralized_significant"] == ""
    assert float(fedavg["vs_centralized_diff"]) == pytest.approx(-0.075)  # (0.60 - 0.70 + 0.75 - 0.80) / 2
    assert float(fedavg["gap_to_centralized_pts"]) == pytest.approx(7.5)  # paired, not 75.0 - 51.7
    for method, diffs, significant in (
        ("local", [0.06, 0.05, 0.07], "True"),
        ("fedprox", [0.05, -0.04, 0.02], "False"),
    ):
        row, half = rows[method], stats.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
        assert row["vs_fedavg_seed_n"] == "3" and row["vs_fedavg_significant"] == significant
        assert float(row["vs_fedavg_seed_lo"]) == pytest.approx(np.mean(diffs) - half)
        assert float(row["vs_fedavg_seed_hi"]) == pytest.approx(np.mean(diffs) + half)


def test_whole_groups_are_resampled_and_widen_the_interval_when_items_cluster():
    """Ten groups of ten items, every item of a group scoring alike (one abstract's sentences): the
    cluster bootstrap's interval is about sqrt(10) wider than the item-by-item one, which treats
    100 correlated items as independent."""
    rng = np.random.default_rng(3)
    outcome = np.repeat(rng.integers(0, 2, size=10), 10)  # B is right where A is wrong, group by group
    a = [[int(o), 0, 1 - int(o)] for o in outcome]
    b = [[1 - int(o), 0, int(o)] for o in outcome]
    groups = np.repeat(np.arange(10), 10).tolist()
    items = paired_bootstrap("ner", [([a], [b])])
    clustered = paired_bootstrap("ner", [([a], [b])], groups=groups)
    assert clustered["diff"] == items["diff"]
    assert (clustered["hi"] - clustered["lo"]) > 2 * (items["hi"] - items["lo"])
    with pytest.raises(ValueError, match="test groups"):
        paired_bootstrap("ner", [([a], [b])], groups=groups[:50])


def test_the_bootstrap_unit_is_the_largest_the_release_records():
    from types import SimpleNamespace as Ex

    from bench.data.bootstrap_units import bootstrap_groups

    notes = [Ex(doc_id=d, group=p) for d, p in [("a", "p1"), ("b", "p1"), ("c", "p2")]]
    assert bootstrap_groups(notes) == {"unit": "patient", "groups": [0, 0, 1]}
    sentences = [Ex(doc_id=d) for d in ["r1", "r1", "r2"]]
    assert bootstrap_groups(sentences) == {"unit": "document", "groups": [0, 0, 1]}
    one_file = [Ex(doc_id="test-0") for _ in range(5)]  # CoNLL without -DOCSTART-: one "document"
    assert bootstrap_groups(one_file) == {"unit": "example", "groups": [0, 1, 2, 3, 4]}


def test_the_patience_check_flags_a_cell_whose_mean_moves_beyond_its_seed_half_width():
    from bench.compare.patience_check import compare, markdown

    def final(method, seed, metric, val, rounds):
        cfg = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        return {"config": cfg, "metric": metric, "val_metric": val, "rounds_run": rounds, "run_id": f"{method}{seed}"}

    pairs = [  # fedavg: tight seeds, each gains 2 points with more patience; lora: noisy, barely moves
        (final("fedavg", s, 0.70 + 0.001 * s, 0.70, 8), final("fedavg", s, 0.72 + 0.001 * s, 0.72, 12))
        for s in (1, 2, 3)
    ] + [
        (final("lora", s, 0.6 + 0.05 * s, 0.6, 9), final("lora", s, 0.6 + 0.05 * s + 0.001, 0.601, 11))
        for s in (1, 2, 3)
    ]
    runs, cells = compare(pairs, min_delta=0.005)
    assert sum(r["gained"] for r in runs) == 3  # the fedavg runs; +0.001 is within min_delta
    by = {c["cell"]: c for c in cells}
    assert by["fedavg (iid)"]["moved_beyond_interval"] and not by["lora r8 (iid)"]["moved_beyond_interval"]
    assert by["fedavg (iid)"]["shift"] == pytest.approx(0.02)
    assert "Adopt patience 5" in markdown(runs, cells, (3, 5)) and "fedavg (iid)" in markdown(runs, cells, (3, 5))
    assert by["fedavg (iid)"]["shift_lo"] == pytest.approx(0.02)  # every seed moved by exactly 2 points
    one_seed = compare(pairs[:1], min_delta=0.005)[1]
    assert one_seed[0]["moved_beyond_interval"] is None and "No verdict" in markdown(runs[:1], one_seed, (3, 5))


def test_a_study_rerun_at_a_longer_patience_is_paired_with_its_stored_shorter_twins():
    from bench.compare.patience_check import compare, markdown
    from bench.compare.patience_twins import shorter_twins
    from bench.errors import BenchError

    def final(method, seed, lr, patience, metric):
        cfg = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        cfg.update(lr=lr, patience=patience, rounds=40 if patience == 3 else 60)
        run_id = f"{method}-s{seed}-lr{lr}-p{patience}"
        return {"config": cfg, "metric": metric, "val_metric": metric, "rounds_run": 10 + patience, "run_id": run_id}

    reported = [final("fedavg", s, 1e-4, 5, 0.72) for s in (1, 2, 3)] + [
        final("lora", s, 1e-3, 5, 0.70) for s in (1, 2, 3)
    ]
    stored = (
        [final("fedavg", s, 1e-4, 3, 0.70) for s in (0, 1, 2, 3)]  # seed 0: the tuning seed, never a twin
        + [final("fedavg", 0, 3e-4, 3, 0.71)]
        + [final("lora", s, 3e-3, 3, 0.69) for s in (1, 2, 3)]  # the shorter study chose another lr
        + reported
    )
    pairs = shorter_twins(reported, stored, patience=3)
    assert [(a["run_id"], b["run_id"]) for a, b in pairs][:1] == [("fedavg-s1-lr0.0001-p3", "fedavg-s1-lr0.0001-p5")]
    assert len(pairs) == 6 and all(a["config"]["patience"] == 3 and b["config"]["patience"] == 5 for a, b in pairs)
    runs, cells = compare(pairs, min_delta=0.005)
    by = {c["cell"]: c for c in cells}
    assert by["fedavg (iid)"]["also_changed"] == "" and by["lora r8 (iid)"]["also_changed"] == "lr 0.003 -> 0.001"
    assert by["fedavg (iid)"]["shift"] == pytest.approx(0.02) and {r["lr_longer"] for r in runs} == {1e-4, 1e-3}
    assert "the whole protocol's" in markdown(runs, cells, (3, 5))
    # another lr: the shift is the protocol's, so the patience rule does not judge it
    assert by["lora r8 (iid)"]["moved_beyond_interval"] is None
    assert "lora r8 (iid) (more than the patience changed)" in markdown(runs, cells, (3, 5))
    two = compare(pairs[:2], min_delta=0.005)[1]  # two pairs: a 1-df half-width is small by chance
    assert two[0]["moved_beyond_interval"] is None and two[0]["no_verdict"] == "2 pair(s)"
    two_twins = stored + [final("lora", 1, 1e-2, 3, 0.5)]  # two stored lrs, neither the reported one: ambiguous
    with pytest.raises(BenchError, match="could be its twin"):
        shorter_twins(reported, two_twins, patience=3)


def test_the_patience_check_counts_re_runs_that_repeat_their_twins_rounds_bit_for_bit(tmp_path):
    from bench.compare.patience_twins import reproduced_note

    def run(run_id, lr, curve, **cfg):
        folder = tmp_path / run_id
        folder.mkdir()
        lines = [
            json.dumps({"round": i + 1, "val_metric": v, "train_loss": 1.0 / (i + 1)}) for i, v in enumerate(curve)
        ]
        (folder / "rounds.jsonl").write_text("\n".join(lines) + "\n")
        return {"run_id": run_id, "config": {"lr": lr, **cfg}}

    pairs = [  # the shorter twins' configs predate frozen_mode, as the stored patience-3 runs do
        (run("a3", 1e-3, [0.5, 0.6, 0.61]), run("a5", 1e-3, [0.5, 0.6, 0.61, 0.7, 0.7], frozen_mode="train")),
        (run("b3", 1e-3, [0.5, 0.6, 0.61]), run("b5", 1e-3, [0.5, 0.6000001, 0.61, 0.7], frozen_mode="train")),
        (run("c3", 3e-3, [0.4]), run("c5", 1e-3, [0.5, 0.6], frozen_mode="train")),  # lr re-chosen
        (run("d3", 1e-3, [0.3, 0.4]), run("d5", 1e-3, [0.3, 0.4, 0.5], frozen_mode="eval")),  # cached: the same
        (
            run("e3", 1e-3, [0.3]),
            {**run("e5", 1e-3, [0.3, 0.4], frozen_mode="train"), "extended_from": {"run_id": "e3"}},
        ),
    ]
    note = reproduced_note(pairs, tmp_path)
    assert note.startswith("Reproduced: 1 of 2 re-runs") and "(not: b5)" in note
    assert note.endswith(
        "; of 2 with other settings, 1 do too; 1 continued from their twin's checkpoint (not recomputed)."
    )


def test_a_federated_method_on_one_client_is_labelled_pooled():
    from bench.report.tables import method_label

    def label(**cfg):
        return method_label({"config": {"clients": 4, **cfg}})

    assert label(method="layerskip", layers="top:2", clients=1) == "layerskip top:2 pooled"
    assert label(method="layerskip", layers="top:2") == "layerskip top:2"
    assert label(method="centralized", clients=1) == "centralized"  # pooled by definition


def _store(runs, name, method, seed, metric, clients=2, layers="top:1"):
    folder = runs / name
    folder.mkdir(parents=True)
    config = {"task": "t", "method": method, "model": "m", "partition": "iid", "clients": clients, "seed": seed}
    if method == "layerskip":
        config["layers"] = layers
    final = {
        "task": "t", "method": method, "status": "ok", "metric_name": "entity_micro_f1", "metric": metric,
        "val_metric": 0.6, "config": config, "bytes_up_total": 0 if method == "centralized" else 10,
        "bytes_down_total": 0, "trainable_params": 1, "total_params": 1, "rounds_run": 1, "best_round": 1,
        "task_kind": "ner", "n_labels": 3,
    }  # fmt: skip
    (folder / "final.json").write_text(json.dumps(final))
    (folder / "rounds.jsonl").write_text(
        json.dumps({"round": 1, "val_metric": 0.6, "bytes_up": 1, "bytes_down": 1}) + "\n"
    )


def test_a_cell_with_fewer_seeds_than_planned_is_marked_running_and_not_narrated(tmp_path):
    """A study mid-run: layer-skipping has one of its three seeds; its row says so, the narrative
    leaves it out, and its gap is the one paired difference, not centralized's mean minus it."""
    runs = tmp_path / "runs"
    for seed, metric in ((1, 0.70), (2, 0.74), (3, 0.78)):
        _store(runs, f"c{seed}", "centralized", seed, metric)
    _store(runs, "l1", "layerskip", 1, 0.65)
    from bench.report.tables import cell_key

    planned = {cell_key(json.loads((runs / n / "final.json").read_text())): 3 for n in ("c1", "l1")}
    _store(runs, "t0", "layerskip", 0, 0.99, layers="top:2")  # its tuning seed alone, as mid-study
    planned[cell_key(json.loads((runs / "t0" / "final.json").read_text()))] = 3
    write_report(tmp_path / "out", runs_dir=runs, tuning={"t0"}, planned_seeds=planned)
    narrated = (tmp_path / "out" / "report.md").read_text().split("## Main table")[0]
    assert "top:2 scored" not in narrated and "left out here): 2 cell(s)" in narrated
    with open(tmp_path / "out" / "tables" / "main.csv") as f:
        assert {r["method"]: r["complete"] for r in csv.DictReader(f)}["layerskip top:2"] == "False"
    assert "incomplete (0/3 seeds; the tuning seed: 0.990)" in (tmp_path / "out" / "tables" / "main.md").read_text()
    write_report(tmp_path / "out", runs_dir=runs, tuning={"t0"})  # a grid of the tuning seed alone (quick)
    assert "layerskip top:2 scored 0.990" in (tmp_path / "out" / "report.md").read_text()
    shutil.rmtree(runs / "t0")
    write_report(tmp_path / "out", runs_dir=runs, planned_seeds=planned)
    table = (tmp_path / "out" / "tables" / "main.md").read_text()
    assert "incomplete (1/3 seeds): 0.650" in table
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Incomplete (fewer reported seeds than planned: running or failed; left out here): 1 cell(s)." in report
    assert "layerskip top:1 scored" not in report
    with open(tmp_path / "out" / "tables" / "main.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert float(rows["layerskip top:1"]["gap_to_centralized_pts"]) == pytest.approx(5.0)  # 0.70 - 0.65, seed 1
    assert rows["layerskip top:1"]["metric_std"] == "" and rows["centralized"]["complete"] == "True"
    for seed, metric in ((2, 0.70), (3, 0.72)):
        _store(runs, f"l{seed}", "layerskip", seed, metric)
    write_report(tmp_path / "out", runs_dir=runs, planned_seeds=planned)
    report = (tmp_path / "out" / "report.md").read_text()
    # per-seed gaps 5, 4, 6 points: mean 5, t-interval 5 ± 4.303 * 1 / sqrt(3)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert f"5.0 points below centralized [95% CI over seeds {5 - half:.1f}, {5 + half:.1f}]" in report


def test_a_configuration_above_centralized_is_narrated_above_it_with_its_interval_the_same_way_round(tmp_path):
    """Top:5 scored 0.4 points above centralized on NCBI: the narrative once read '-0.4 points
    below centralized [-2.3, 1.5]'."""
    runs = tmp_path / "runs"
    for seed, (cen, skip) in enumerate(((0.70, 0.72), (0.74, 0.75), (0.78, 0.81)), start=1):
        _store(runs, f"c{seed}", "centralized", seed, cen)
        _store(runs, f"l{seed}", "layerskip", seed, skip)
    write_report(tmp_path / "out", runs_dir=runs)
    report = (tmp_path / "out" / "report.md").read_text()
    # per-seed leads 2, 1, 3 points: mean 2, t-interval 2 ± 4.303 * 1 / sqrt(3)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert f"2.0 points above centralized [95% CI over seeds {2 - half:.1f}, {2 + half:.1f}] n.s." in report


def test_a_one_client_run_has_no_byte_share_of_fedavg(tmp_path):
    """A pooled (one-client) run moves bytes only to a server that holds the same data: its share
    of FedAvg's bytes compares nothing, so neither the table nor the narrative gives one."""
    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        _store(runs, f"f{seed}", "fedavg", seed, 0.7)
        _store(runs, f"l{seed}", "layerskip", seed, 0.6)
        _store(runs, f"p{seed}", "layerskip", seed, 0.62, clients=1)
    write_report(tmp_path / "out", runs_dir=runs)
    with open(tmp_path / "out" / "tables" / "main.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["layerskip top:1 pooled"]["reduction_vs_fedavg_pct"] == ""
    assert rows["layerskip top:1"]["reduction_vs_fedavg_pct"] != ""  # equal bytes here: 0.0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "layerskip top:1 scored 0.600, while moving 100% of FedAvg's bytes over its whole run." in report
    assert "layerskip top:1 pooled scored 0.620." in report


def test_the_figures_average_the_reported_seeds_not_the_tuning_seed(tmp_path, monkeypatch):
    """The seed that chose a cell's lr is not a reported seed: the figures' means leave it out as
    the tables do (the layer ablation once drew top:3 at 0.685 beside the table's 0.678), and show
    it only for a cell that has nothing else."""
    from bench.report import figures

    runs = tmp_path / "runs"
    for seed, metric in ((0, 0.99), (1, 0.60), (2, 0.62), (3, 0.64)):
        _store(runs, f"l{seed}", "layerskip", seed, metric)
    _store(runs, "c0", "centralized", 0, 0.70)  # a cell of the tuning seed alone
    given = {}
    monkeypatch.setattr(figures, "write_all", lambda shown, folder, table: given.setdefault("runs", shown) and [])
    write_report(tmp_path / "out", runs_dir=runs, tuning={"l0", "c0"})
    assert sorted(r["run_id"] for r in given["runs"]) == ["c0", "l1", "l2", "l3"]


def test_a_studys_report_reads_the_grids_sweep_record_for_its_checks(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        _store(runs, f"c{seed}", "centralized", seed, 0.7 + 0.01 * seed)
    tuning_csv = tmp_path / "tuning.csv"
    tuning_csv.write_text(
        "task,method,layers,partition,epsilon,setting,value,val_metric,chosen,group,run_id\n"
        "t,centralized,,iid,,lr,0.00003,0.4,False,g,a\n"
        "t,centralized,,iid,,lr,0.0001,0.5,False,g,b\n"
        "t,centralized,,iid,,lr,0.0003,0.6,True,g,c1\n"  # its chosen point is one of the study's runs
        "t,lora,,iid,,lr,0.001,0.5,False,h,x\n"  # another study's sweep (at its edge too): not this report's
        "t,lora,,iid,,lr,0.003,0.6,False,h,y\n"
        "t,lora,,iid,,lr,0.01,0.7,True,h,z\n"
    )
    study = tmp_path / "studies" / "main"
    write_report(study, runs_dir=runs, study="main", tuning_csv=tuning_csv)
    report = (study / "report.md").read_text()
    assert "## Checks" in report and "lora" not in report.split("## Checks")[1]  # its own edge, not another's
    write_report(tmp_path / "alone", runs_dir=runs, study="main")  # no sweep record beside it: no checks
    assert "## Checks" not in (tmp_path / "alone" / "report.md").read_text()


def test_validation_curves_start_at_round_zero_with_the_untrained_score(tmp_path, monkeypatch):
    from bench.report import figures

    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, folder, name: drawn.setdefault(name, fig))
    runs = []
    for seed, untrained in ((1, 0.01), (2, 0.03)):
        cfg = {"task": "t", "method": "fedavg", "model": "m", "partition": "iid", "clients": 2, "seed": seed}
        history = [{"round": r, "val_metric": 0.5 + 0.1 * r, "bytes_up": 1, "bytes_down": 1} for r in (1, 2)]
        runs.append(
            {"config": cfg, "history": history, "untrained_val_metric": untrained, "metric_name": "f1", "status": "ok"}
        )
    assert figures.metric_vs_round(runs, tmp_path, [])
    (line,) = drawn["metric_vs_round"].axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 1, 2] and line.get_ydata()[0] == pytest.approx(0.02)
    runs[0]["untrained_val_metric"] = None  # a run stored before round 0 was scored: no made-up point
    drawn.clear()
    figures.metric_vs_round(runs, tmp_path, [])
    assert list(drawn["metric_vs_round"].axes[0].get_lines()[0].get_xdata()) == [1, 2]


def test_each_cell_plans_its_own_reported_seeds_tuned_or_not():
    """A grid may tune one method (seed 0 chooses, seeds 1-3 report) and not another (seeds 0-3
    report): one count for the grid would call the tuned cell incomplete for ever."""
    from bench.config import ExperimentConfig
    from bench.protocol.grid import Cell
    from bench.report.tables import cell_key, planned_seeds

    cells = [
        Cell(cfg.run_id, cfg)
        for method in ("fedavg", "lora")
        for cfg in (ExperimentConfig(task="t", method=method, seed=s, lr=1e-3) for s in range(4))
    ]
    tuning = {c.run_id for c in cells if c.config.method == "fedavg" and c.config.seed == 0}
    planned = planned_seeds(cells, tuning)
    by_method = {
        method: planned[cell_key({"config": ExperimentConfig(task="t", method=method, seed=9, lr=1e-3).to_dict()})]
        for method in ("fedavg", "lora")
    }
    assert by_method == {"fedavg": 3, "lora": 4}
