"""A choice at the edge of its sweep, probed one step beyond (bench.protocol.edge_probe), and what the
report's checks say about it (bench.report.audit)."""

from __future__ import annotations

import csv

import pytest

from bench.config import ExperimentConfig
from bench.protocol import edge_probe, tuning
from bench.protocol.grid import Cell
from bench.report import sweep_files
from bench.report.write import audit
from tests.cli import run_all_main


@pytest.mark.parametrize(
    ("tried", "chosen", "expected"),
    [
        ([3e-4, 1e-3, 3e-3], 3e-4, 1e-4),  # a 1-3-10 ladder stays on it
        ([3e-5, 1e-4, 3e-4], 3e-4, 1e-3),
        ([1e-3, 2e-3, 5e-3], 5e-3, 1e-2),  # so does 1-2-5
        ([1e-3, 1e-2, 1e-1], 1e-3, 1e-4),
        ([3e-4, 1e-3, 3e-3], 1e-3, None),  # inside: nothing to probe
        ([4, 8, 16], 16, 32),  # integers stay integers
        ([0.0, 0.5, 1.0], 1.0, 1.5),  # a range from zero steps arithmetically
        ([0.0, 0.01, 0.1], 0.0, None),  # and never below zero
        ([1e-4, 1e-3], 1e-3, None),  # two points give no ratio worth trusting
    ],
)
def test_one_step_beyond_the_edge(tried, chosen, expected):
    found = edge_probe.beyond(tried, chosen)
    assert found == pytest.approx(expected) if expected is not None else found is None
    assert type(found) is type(expected) or expected is None


def _row(group: str, value: float, val: float | None, chosen: bool, run_id: str) -> dict:
    return {
        "task": "conll",
        "method": "fedavg",
        "layers": "",
        "partition": "iid",
        "epsilon": None,
        "setting": "lr",
        "value": value,
        "val_metric": val,
        "chosen": chosen,
        "group": group,
        "run_id": run_id,
    }


def _points(values: list[float]) -> list[tuning.SweepPoint]:
    base = ExperimentConfig(task="conll", method="fedavg", seed=3)
    return tuning.sweep_points([Cell("x", base, {"lr": values})])


def test_probes_move_only_the_edge_setting_of_the_chosen_point_and_skip_ties_and_inside_choices():
    points = _points([1e-4, 3e-4, 1e-3])
    ids = [p.cell.run_id for p in points]
    group = points[0].group
    edge = [
        _row(group, p.values[0][1], v, c, p.cell.run_id)
        for p, v, c in zip(points, [0.5, 0.6, 0.7], [False, False, True])
    ]
    ((row, cell),) = edge_probe.probes(points, edge)
    chosen = points[2].cell.config
    assert row["run_id"] == ids[2] and cell.config.lr == pytest.approx(3e-3)
    assert cell.config.with_settings(lr=chosen.lr) == chosen, "only lr moves"
    assert cell.run_id not in ids and cell.config.seed == 3
    inside = [dict(r, val_metric=v, chosen=c) for r, v, c in zip(edge, [0.5, 0.7, 0.6], [False, True, False])]
    assert edge_probe.probes(points, inside) == []
    tied = [dict(r, val_metric=0.4, chosen=i == 0) for i, r in enumerate(edge)]
    assert edge_probe.probes(points, tied) == [], "a tie is reported as a tie, not probed"


@pytest.mark.parametrize(
    ("probe_val", "says"), [(0.65, "the choice holds"), (0.75, "under-tuned"), (None, "--probe-edges")]
)
def test_the_check_says_what_the_probe_found(tmp_path, probe_val, says):
    rows = [_row("g", 1e-4, 0.5, False, "a"), _row("g", 3e-4, 0.6, False, "b"), _row("g", 1e-3, 0.7, True, "c")]
    probe = {
        **{k: rows[2][k] for k in ("task", "method", "layers", "partition", "epsilon", "setting", "group")},
        "chosen": 1e-3,
        "chosen_val_metric": 0.7,
        "probe": 3e-3,
        "probe_val_metric": probe_val,
        "verdict": edge_probe.verdict(0.7, probe_val),
        "run_id": "d",
    }
    (tmp_path / "edge_probes.csv").write_text(_csv([probe]))
    (line,) = audit.edge_choices(rows, sweep_files.read_probes(tmp_path / "edge_probes.csv"))
    assert "chose lr 0.001, the largest value tried" in line and says in line
    if probe_val is not None:
        assert f"scored validation {probe_val:.3f} against 0.700" in line


def test_a_probe_of_another_choice_is_not_quoted(tmp_path):
    """A stale edge_probes.csv (the sweep was redone and chose otherwise) says nothing."""
    rows = [_row("g", 1e-4, 0.7, True, "a"), _row("g", 3e-4, 0.6, False, "b"), _row("g", 1e-3, 0.5, False, "c")]
    probe = {"group": "g", "setting": "lr", "chosen": 1e-3, "probe": 3e-3, "probe_val_metric": 0.9}
    (line,) = audit.edge_choices(rows, {("g", "lr"): probe})
    assert "the best may lie outside the range" in line and "0.900" not in line


def _csv(rows: list[dict]) -> str:
    from bench.store import to_csv

    return to_csv(rows, edge_probe.PROBE_COLUMNS)


def test_probe_edges_runs_the_probe_and_the_report_says_whether_the_choice_held(tiny_corpus, tmp_path):
    """End to end on the tiny corpus: two rounds of tiny-bert choose an edge of this range (the
    smallest lr, here); --probe-edges runs one step beyond it on the sweep's seed, writes its
    validation metric to edge_probes.csv, and the report's checks quote it. No choice changes."""
    grid = tmp_path / "g.yaml"
    data_dir = tiny_corpus / "i2b2-2010"
    grid.write_text(f"""name: t
defaults: {{model: tiny-bert, clients: 2, rounds: 2, max_length: 48, data_dir: "{data_dir}", test_every: 0}}
tasks: [i2b2-2010]
methods: [{{method: fedavg}}]
partitions: [iid]
seeds: [0]
tune: {{lr: [1.0e-4, 3.0e-4, 1.0e-3]}}
""")
    out = tmp_path / "out"
    run = ["--grid", grid, "--out", out]
    run_all_main(*run)
    before = list(csv.DictReader(open(out / "tuning.csv")))
    labels = {r["run_id"]: r["convergence"] for r in csv.DictReader(open(out / "summary.csv"))}
    # each point's label is the report's (converged / capped / dead), not only the run's own flag
    assert all(r["convergence"] == labels[r["run_id"]] != "" for r in before if r["run_id"] in labels)
    assert {r["convergence"] for r in before} <= {"converged", "capped", "dead"}
    chosen = next(r for r in before if r["chosen"] == "True")
    assert float(chosen["value"]) in (1e-4, 1e-3), f"the range was meant to choose an edge: {before}"
    (probe,) = list(csv.DictReader(open(out / "edge_probes.csv")))
    assert probe["verdict"] == "not run" and float(probe["probe"]) == pytest.approx(
        3e-5 if float(chosen["value"]) == 1e-4 else 3e-3
    )
    run_all_main(*run, "--probe-edges")
    (probe,) = list(csv.DictReader(open(out / "edge_probes.csv")))
    assert (out / "runs" / probe["run_id"] / "final.json").is_file()
    held = float(probe["probe_val_metric"]) <= float(probe["chosen_val_metric"])
    assert probe["verdict"] == ("choice holds" if held else "beyond wins")
    report = (out / "report.md").read_text()
    assert f"one step beyond, {probe['probe']}, scored validation {float(probe['probe_val_metric']):.3f}" in report
    assert list(csv.DictReader(open(out / "tuning.csv"))) == before, "the probe changes no choice"
    plan = run_all_main(*run, "--plan").stdout
    assert "edge probes (--probe-edges): 1 due (choices at an edge of their range so far), 1 run" in plan


def test_a_lora_check_names_its_rank():
    """Two LoRA ranks sweep the same lr range and may choose differently: a check that said
    'lora' for r32's choice read as r8's (helper review of results/ncbi, 2026-12-07)."""
    rows = [
        dict(_row("g", v, s, c, i), method="lora", lora_rank="32")
        for v, s, c, i in [(1e-3, 0.7, True, "a"), (3e-3, 0.6, False, "b"), (1e-2, 0.5, False, "c")]
    ]
    (line,) = audit.edge_choices(rows, {})
    assert line.startswith("- conll lora r32 (iid): chose lr 0.001, the smallest value tried")
    (plain,) = audit.edge_choices([dict(r, method="fedavg", lora_rank="") for r in rows], {})
    assert plain.startswith("- conll fedavg (iid): ")
