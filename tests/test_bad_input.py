"""CONTRACT, Errors: bad input ends with one line naming what and where, exit code 2, no
traceback, and nothing half-written. Each case here ended in a traceback (exit 1), was silently
accepted, or left partition.json behind until a contract check found it (2026-12-07)."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.store import load_runs
from tests.cli import bench_data, bench_run, run_all_main, run_main


def _one_line(done, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize(("spec", "says"), [("nope", "bad layer spec"), ("top:99", "K must be between 1 and 2")])
def test_a_bad_layer_spec_is_one_line_before_any_worker_or_file(tiny_corpus, tmp_path, spec, says):
    """Checked in the server against the model's shape (it was parsed in every worker first, so
    two local workers printed two tracebacks, and partition.json was already written)."""
    out = tmp_path / "run"
    data = tiny_corpus / "i2b2-2010"
    args = [
        "--task",
        "i2b2-2010",
        "--data-dir",
        data,
        "--method",
        "layerskip",
        "--layers",
        spec,
        "--model",
        "tiny-bert",
    ]
    _one_line(bench_run(*args, "--clients", 2, "--rounds", 1, "--workers", 2, "--out", out, check=False), says)
    assert not (out / "partition.json").exists()


def test_an_option_a_task_does_not_take_is_named():
    _one_line(
        bench_data("stats", "--task", "ncbi-disease", "--label-level", "type", "--json", check=False), "--label-level"
    )


@pytest.mark.parametrize(
    ("setting", "says"),
    [("defaults: {clients: two}", "clients must be a whole number"), ("defaults: {rounds: 1.5}", "rounds must be")],
)
def test_a_grid_value_of_the_wrong_type_is_named(tmp_path, setting, says):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        f"name: t\n{setting}\ntasks: [i2b2-2010]\nmethods:\n  - {{method: fedavg}}\npartitions: [iid]\nseeds: [0]\n"
    )
    _one_line(run_all_main("--grid", grid, "--out", tmp_path / "out", "--plan", check=False), says)
    grid.write_text(grid.read_text().replace(setting, "defaults: {}").replace("seeds: [0]", "seeds: [zero]"))
    _one_line(
        run_all_main("--grid", grid, "--out", tmp_path / "out", "--plan", check=False), "seed must be a whole number"
    )


def test_zero_workers_is_refused_not_read_as_one(tmp_path):
    args = ["--task", "ncbi-disease", "--method", "fedavg", "--workers", 0, "--out", tmp_path / "run"]
    _one_line(bench_run(*args, check=False), "workers must be >= 1, not 0")


def test_a_figure_in_a_missing_folder_is_named_before_the_work(tmp_path):
    """(A --secagg-transcript's folder is made instead: it often lies inside the run's own --out.)"""
    from partitions.__main__ import main as partitions_main

    show = ["show", "--task", "ncbi-disease", "--partition", "iid", "--clients", 3, "--json"]
    _one_line(run_main(partitions_main, *show, "--plot", tmp_path / "nowhere" / "p.png", check=False), "--plot")


def test_a_malformed_stored_run_is_named_by_file_and_line(tmp_path):
    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    (folder / "final.json").write_text('{"status": "ok",\n  bad')
    with pytest.raises(BenchError, match=r"r1/final\.json:2: malformed JSON"):
        load_runs(tmp_path / "runs")
    (folder / "final.json").write_text('{"status": "ok"}')
    (folder / "rounds.jsonl").write_text('{"round": 1}\n{not json\n')
    with pytest.raises(BenchError, match=r"r1/rounds\.jsonl:2: malformed JSON line"):
        load_runs(tmp_path / "runs")
