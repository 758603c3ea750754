"""The report's checks: constant predictions and uninformative tuning choices (bench.report.audit)."""

from __future__ import annotations

import json

import pytest

from bench.report.write import audit


@pytest.mark.parametrize(
    ("kind", "items", "flagged"),
    [
        ("ner", [[[0, 0, 2], [0, 3, 1]]], True),  # spans predicted, none right: nothing learned
        ("ner", [[[0, 0, 2], [1, 3, 1]]], False),
        ("cls", [[[0, 1], [1, 1], [0, 1]]], True),
        ("cls", [[[0, 0], [1, 1], [0, 1]]], False),
        ("multilabel", [[[1, 0, 0, 0], [0, 1, 0, 0]]], True),
        ("multilabel", [[[1, 0, 0, 0], [0, 1, 0, 1]]], False),
        ("cls", [[[0, 1], [1, 1]], [[0, 0], [1, 1]]], False),  # local-only: one client's model varies
        ("cls", [[[0, 1], [1, 1]], [[0, 0], [1, 0]]], True),
        ("ner", None, False),
    ],
)
def test_constant_prediction(kind, items, flagged):
    assert bool(audit.constant_prediction(kind, items)) is flagged


def _row(group: str, value: float, val: float | None, chosen: bool) -> dict:
    return {
        "task": "t",
        "method": "fedavg",
        "layers": "",
        "partition": "iid",
        "setting": "lr",
        "value": value,
        "val_metric": val,
        "chosen": chosen,
        "group": group,
        "run_id": f"{group}-{value}",
    }


def test_edge_and_tied_choices_are_named_and_an_inside_optimum_is_not():
    rows = [
        _row("edge", 1e-4, 0.5, False),
        _row("edge", 3e-4, 0.6, False),
        _row("edge", 1e-3, 0.7, True),
        _row("inside", 1e-4, 0.5, False),
        _row("inside", 3e-4, 0.7, True),
        _row("inside", 1e-3, 0.6, False),
        _row("tied", 1e-4, 0.4, True),
        _row("tied", 3e-4, 0.4, False),
        _row("tied", 1e-3, 0.4, False),
        _row("open", 1e-4, 0.4, True),
        _row("open", 3e-4, None, False),
        _row("open", 1e-3, 0.3, False),
    ]
    lines = audit.edge_choices(rows)
    assert len(lines) == 2
    assert "chose lr 0.001, the largest value tried" in lines[0]
    assert "tied on validation (0.400)" in lines[1]


def _stored_run(runs, run_id: str, items: list, lr: float) -> None:
    folder = runs / run_id
    folder.mkdir(parents=True)
    final = {
        "status": "ok",
        "task_kind": "ner",
        "metric": 0.0,
        "val_metric": 0.0,
        "rounds_run": 4,
        "stopped_early": True,
        "config": {"lr": lr},
    }
    (folder / "final.json").write_text(json.dumps(final))
    (folder / "test_items.json").write_text(json.dumps(items))
    (folder / "rounds.jsonl").write_text(json.dumps({"train_loss": 0.3}) + "\n")


def test_the_section_reads_stored_sweep_points_and_skips_runs_already_reported(tmp_path):
    runs = tmp_path / "runs"
    _stored_run(runs, "collapsed", [[[0, 0, 5]]], 3e-3)
    _stored_run(runs, "learned", [[[4, 1, 1]]], 1e-3)
    tuning_csv = tmp_path / "tuning.csv"
    tuning_csv.write_text(
        "task,method,layers,partition,epsilon,setting,value,val_metric,chosen,group,run_id\n"
        "t,layerskip,top:2,iid,,lr,0.001,0.6,True,g,learned\n"
        "t,layerskip,top:2,iid,,lr,0.003,0.0,False,g,collapsed\n"
    )
    lines = audit.section([], tuning_csv, runs)
    assert any(
        "sweep point `collapsed` (lr 0.003) finds none of the 5 test entities" in x and "stopped early" in x
        for x in lines
    )
    assert not any("`learned`" in x for x in lines)
    assert audit.section(
        [
            {
                "run_id": "collapsed",
                "status": "ok",
                "test_items": [[[0, 0, 5]]],
                "task_kind": "ner",
                "metric": 0.0,
                "config": {"lr": 3e-3},
            }
        ],
        tuning_csv,
        runs,
    )[4].startswith("- `collapsed`")
    assert audit.section([], tmp_path / "absent.csv", runs) == []


def test_a_sweep_point_cut_by_the_round_cap_is_named():
    rows = [
        {**_row("g", 1e-4, 0.6, False), "converged": False, "rounds_run": 20},
        {**_row("g", 3e-4, 0.7, True), "converged": True, "rounds_run": 12},
        {**_row("g", 1e-3, 0.5, False), "converged": True, "rounds_run": 9},
    ]
    lines = audit.unconverged_points(rows)
    assert len(lines) == 1 and "lr 0.0001 had not converged after 20 rounds (validation 0.600" in lines[0]


def test_a_choice_within_min_delta_of_the_runner_up_is_a_near_tie():
    rows = [
        _row("close", 1e-4, 0.700, True),
        _row("close", 3e-4, 0.698, False),
        _row("close", 1e-3, 0.5, False),
        _row("clear", 1e-4, 0.5, False),
        _row("clear", 3e-4, 0.72, True),
        _row("clear", 1e-3, 0.70, False),
        _row("tied", 1e-4, 0.4, True),
        _row("tied", 3e-4, 0.4, False),
        _row("tied", 1e-3, 0.3, False),
    ]
    close, tied = audit.near_ties(rows, margin=0.005)
    assert "lr 0.0001 beat 0.0003 on validation by 0.0020 (0.700 against 0.698)" in close
    assert "by 0.0000 (0.400 against 0.400)" in tied, "a tie of the best two is the nearest of ties"
    assert len(audit.near_ties(rows, margin=0.001)) == 1


def test_a_reported_round_won_by_a_hair_is_named_and_a_clear_win_is_not():
    def run(run_id, curve, best, role="reported"):
        history = [{"round": i + 1, "val_metric": v} for i, v in enumerate(curve)]
        return {"run_id": run_id, "status": "ok", "role": role, "history": history, "best_round": best, "config": {}}

    runs = [
        run("hair", [0.5, 0.7055869, 0.70, 0.7055931], 4),  # the NCBI LoRA case: +6e-6 moved the report
        run("clear", [0.5, 0.6, 0.7], 3),
        run("tuning", [0.5, 0.50001], 2, role="tuning"),  # chose a setting: not a reported number
        run("first", [0.7, 0.6], 1),  # nothing earlier to tie with
    ]
    (line,) = audit.hairline_best_rounds(runs, 0.005)
    assert line.startswith("- 1 of 3 reported runs took their reported round by a validation gain below their")
    assert "`hair` (round 4 over 2, +6.2e-06)" in line and "clear" not in line
    runs[0]["config"] = {"min_delta": 1e-6}  # the run's own margin, not the report's largest
    assert audit.hairline_best_rounds(runs, 0.005) == []
    assert audit.hairline_best_rounds(runs, 0.0) == []  # with no margin nothing is a near tie


def _seeded(method: str, seed: int, metric: float, role: str, partition: str = "iid", status: str = "ok") -> dict:
    config = {"method": method, "seed": seed, "lr": 1e-3, "partition": partition}
    run_id = f"{method}-{partition}-{seed}"
    return {"config": config, "metric": metric, "status": status, "role": role, "run_id": run_id, "history": []}


LIFTS = {"a": 0.03, "b": 0.02, "c": 0.025, "d": 0.01}  # the tuning seed's lead over its cell's mean


def _cells(lifts=LIFTS, partition="iid"):
    runs = []
    for method, lift in lifts.items():
        runs.append(_seeded(method, 0, 0.70 + lift, "tuning", partition))
        # reported 0.69, 0.69, 0.72: mean 0.70, median 0.69 (a median would move every lead by 1 point)
        runs += [_seeded(method, s, m, "reported", partition) for s, m in ((1, 0.69), (2, 0.69), (3, 0.72))]
    return runs


def test_the_tuning_seeds_lead_is_measured_over_distinct_cells():
    from bench.report import tuning_bias

    runs = _cells()
    twin = [dict(r, config=dict(r["config"], method="a-twin")) for r in runs if r["config"]["method"] == "a"]
    # same tuning score as a, other reported scores: a different cell, not a repeat
    kin = [dict(r, config=dict(r["config"], method="a-kin")) for r in runs if r["config"]["method"] == "a"]
    kin = [dict(r, metric=r["metric"] - 0.01) if r["role"] == "reported" else r for r in kin]
    one_seed = [_seeded("e", 0, 0.9, "tuning"), _seeded("e", 1, 0.5, "reported")]  # one reported seed: no mean
    failed = [_seeded("a", 4, 0.1, "reported", status="failed")]
    leads = sorted(lead for _, lead in tuning_bias.optimism(runs + twin + kin + one_seed + failed))
    assert leads == pytest.approx(sorted([*LIFTS.values(), 0.04]))  # the twin counts once, kin apart
    (line,) = tuning_bias.check(runs)
    assert "+2.1 [" in line and "over 4 distinct cells" in line and "(4 of 4 cells above)" in line
    assert "as the selection that keeps it out of the table would make it" in line and "By partition" not in line
    flipped = [dict(r, metric=1.4 - r["metric"]) if r["role"] == "tuning" else r for r in runs]  # below the mean
    assert "no lead established" in tuning_bias.check(flipped)[0]
    assert tuning_bias.check([r for r in runs if r["config"]["method"] != "d"])  # 3 cells: a line
    assert tuning_bias.check([r for r in runs if r["config"]["method"] not in "cd"]) == []  # 2 cells: none


def test_the_lead_is_split_by_partition_and_reaches_the_reports_checks(tmp_path):
    from bench.report import tuning_bias

    runs = _cells({"a": 0.0, "b": 0.002, "c": -0.001}) + _cells({"a": 0.03, "b": 0.04}, "dirichlet:0.5")
    (line,) = tuning_bias.check(runs)
    assert "By partition: dirichlet:0.5 +3.5 [" in line and "(2 of 2 cells above); iid +0.0 [" in line
    assert line in audit.section(runs, tmp_path / "tuning.csv", tmp_path)
