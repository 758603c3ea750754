"""Grid files, run_all.py, the results store, resume after SIGKILL, and report-only."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.protocol.grid import expand, load_grid
from tests.cli import run_all_main

ROOT = Path(__file__).resolve().parents[1]


FULL = '[{method: centralized}, {method: fedavg}, {method: layerskip, layers: "top:1"}]'


def grid_file(
    tmp_path: Path,
    data_dir: Path,
    rounds: int = 2,
    extra: str = "",
    methods: str = FULL,
    partitions: str = '[iid, "dirichlet:0.5"]',
) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(f"""name: t
defaults: {{model: tiny-bert, clients: 2, rounds: {rounds}, max_length: 48, data_dir: "{data_dir}"}}
tasks: [i2b2-2010]
methods: {methods}
partitions: {partitions}
seeds: [0]
{extra}""")
    return path


def run_all(*args, check=True):
    """`python run_all.py ARGS`, in this process (tests.cli: the subprocess's imports are most of a tiny grid's time)."""
    return run_all_main(*args, check=check)


def metrics(out: Path) -> dict:
    with open(out / "summary.csv") as f:
        return {r["run_id"]: (r["metric"], r["bytes_up_total"], r["status"]) for r in csv.DictReader(f)}


MACHINE_KEYS = {"host", "git", "execution", "prefix_cache", "pid"}  # where and how fast it ran, not what it computed


def _without_timing(value):
    """A stored record with the fields that describe the machine or the clock left out."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in MACHINE_KEYS and not k.endswith("_s")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def records(out: Path) -> dict:
    """Every run's final.json and rounds.jsonl, timing left out."""
    runs = sorted((out / "runs").glob("*/final.json"))
    return {
        p.parent.name: (
            _without_timing(json.loads(p.read_text())),
            [_without_timing(json.loads(line)) for line in (p.parent / "rounds.jsonl").read_text().splitlines()],
        )
        for p in runs
    }


def test_expand_dedupes_partition_free_methods(tiny_corpus, tmp_path):
    _, grid = load_grid(str(grid_file(tmp_path, tiny_corpus / "i2b2-2010")))
    cells = expand(grid)
    assert len(cells) == 5  # centralized once, the two federated methods under both partitions
    assert len({c.run_id for c in cells}) == 5


def test_the_sweep_runs_on_tune_seed_and_only_its_winners_are_tuning_runs(tiny_corpus, tmp_path):
    from bench.protocol import tuning

    path = grid_file(tmp_path, tiny_corpus, methods="[{method: fedavg, tune: {lr: [0.001, 0.01]}}]", partitions="[iid]")
    path.write_text(path.read_text().replace("seeds: [0]", "seeds: [0, 1, 2, 3]\ntune_seed: 2"))
    cells = expand(load_grid(str(path))[1])
    points = tuning.sweep_points(cells)
    assert len(points) == 2 and {p.cell.config.seed for p in points} == {2}
    assert tuning.tuning_runs(cells, {c.run_id: c for c in cells}) == {c.run_id for c in cells if c.config.seed == 2}
    path.write_text(path.read_text().replace("tune_seed: 2\n", ""))
    assert {p.cell.config.seed for p in tuning.sweep_points(expand(load_grid(str(path))[1]))} == {0}  # the first
    path.write_text(path.read_text().replace("seeds: [0, 1, 2, 3]", "seeds: [3, 1, 2]"))
    cells = expand(load_grid(str(path))[1])
    assert {p.cell.config.seed for p in tuning.sweep_points(cells)} == {3}  # the first as written, not the smallest
    assert tuning.tuning_seed(cells) == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        ("colour: red", "unknown key\\(s\\) colour"),
        ("overrides: [{match: {task: i2b2-2010}, set: {roundz: 3}}]", "unknown key\\(s\\) in override: roundz"),
        ("tune_seed: 5", "tune_seed 5 is not one of seeds \\[0\\]"),
        ("studies: {a: {methods: [fedavg], seedz: [1]}}", "unknown key\\(s\\) in study 'a': seedz"),
        ("studies: {b: {methods: [{method: lora, lora_rnak: 4}]}}", "unknown key\\(s\\) in method 'lora': lora_rnak"),
    ],
)
def test_bad_grid_keys_are_named(tiny_corpus, tmp_path, extra, message):
    with pytest.raises(BenchError, match=message):
        _, grid = load_grid(str(grid_file(tmp_path, tiny_corpus, extra=extra)))
        expand(grid)


def test_bad_grid_cli_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [i2b2-2010]\nmethods: [{method: fedavgg}]\npartitions: [iid]\n")
    proc = run_all("--grid", bad, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "did you mean 'fedavg'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_grid_report_and_sigkill_resume(tiny_corpus, tmp_path):
    # LoRA first: the kill lands in its second cell, so a LoRA run is continued from its checkpoint (#31)
    methods = '[{method: lora}, {method: layerskip, layers: "top:1"}]'
    grid = grid_file(tmp_path, tiny_corpus / "i2b2-2010", rounds=3, methods=methods)
    reference = tmp_path / "reference"
    run_all("--grid", grid, "--out", reference)
    for name in (
        "summary.csv",
        "report.md",
        "tables/main.md",
        "tables/main.csv",
        "tables/main.tex",
        "figures/metric_vs_round.png",
        "figures/metric_vs_bytes.pdf",
        "figures/metric_vs_alpha.png",
        "figures/partition_i2b2-2010_dirichlet-0.5.png",
    ):
        assert (reference / name).is_file(), name
    assert len(metrics(reference)) == 4 and all(s == "ok" for _, _, s in metrics(reference).values())

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_all.py"), "--grid", str(grid), "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.time() + 120
    target = None
    while time.time() < deadline and target is None:  # wait until the 2nd cell has a checkpoint, then kill
        done = [p for p in (killed / "runs").glob("*/final.json")] if (killed / "runs").is_dir() else []
        ckpts = [p.parent for p in (killed / "runs").glob("*/checkpoint.pt")] if done else []
        target = next((d for d in ckpts if not (d / "final.json").exists()), None)
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target is not None and not (target / "final.json").exists(), "the kill came too late to interrupt a cell"
    assert "__lora__" in target.name  # the interrupted cell is a LoRA one
    finished = {p: p.stat().st_mtime_ns for p in (killed / "runs").glob("*/final.json")}
    run_all("--grid", grid, "--out", killed, "--resume")
    assert metrics(killed) == metrics(reference)
    assert records(killed) == records(reference)  # every stored number, per round included, not only the metric
    assert finished and all(p.stat().st_mtime_ns == t for p, t in finished.items()), "a finished cell was run again"

    for f in (killed / "figures").iterdir():
        f.unlink()
    stored = {p: p.stat().st_mtime_ns for p in (killed / "runs").rglob("*") if p.is_file()}
    run_all("--grid", grid, "--out", killed, "--report-only")
    after = {p: p.stat().st_mtime_ns for p in (killed / "runs").rglob("*") if p.is_file()}
    assert after == stored, "--report-only trains nothing and writes no run file"  # (was a 30 s timer)
    assert (killed / "figures" / "metric_vs_round.png").is_file()
    for name in (
        "metric_vs_bytes.pdf",
        "partition_i2b2-2010_dirichlet-0.5.pdf",
    ):  # no creation date: same numbers, same bytes
        assert (killed / "figures" / name).read_bytes() == (reference / "figures" / name).read_bytes(), name


def studies_grid(tmp_path: Path, data_dir: Path, b: str, extra: str = "", a_feeds: str = "") -> Path:
    """A one-round grid of two studies: `a` is FedAvg at a fixed lr, `b` the given method entry."""
    path = tmp_path / "s.yaml"
    path.write_text(f"""name: s
defaults: {{model: tiny-bert, clients: 2, rounds: 1, max_length: 48, data_dir: "{data_dir}"}}
tasks: [i2b2-2010]
partitions: [iid]
seeds: [0]
{extra}
studies:
  a: {{{a_feeds}methods: [{{method: fedavg, lr: 0.01}}]}}
  b: {{feeds: the b table, methods: [{b}]}}
""")
    return path


def summary_methods(path: Path) -> list[str]:
    with open(path) as f:
        return sorted(r["method"] for r in csv.DictReader(f))


def test_a_study_run_reports_the_whole_grid_not_only_its_own_cells(tiny_corpus, tmp_path):
    """`--study b` once rewrote DIR/summary.csv and DIR/report.md over b's cells alone, so the
    grid's report showed whichever study ran last; now DIR/ is every study's."""
    grid = studies_grid(tmp_path, tiny_corpus / "i2b2-2010", '{method: layerskip, layers: "top:1", lr: 0.01}')
    out = tmp_path / "o"
    run_all("--grid", grid, "--out", out, "--study", "a")
    run_all("--grid", grid, "--out", out, "--study", "b")
    assert summary_methods(out / "summary.csv") == ["fedavg", "layerskip"]
    (out / "summary.csv").unlink()
    run_all("--grid", grid, "--out", out, "--study", "a", "--report-only")  # the whole grid's report, at once
    assert summary_methods(out / "summary.csv") == ["fedavg", "layerskip"]
    for study, method in (("a", "fedavg"), ("b", "layerskip")):
        assert summary_methods(out / "studies" / study / "summary.csv") == [method]
    # a study's own report says what it feeds and that the grid's report reads it beside the others
    assert "Feeds the b table: the grid's report" in (out / "studies" / "b" / "report.md").read_text()
    assert "Feeds" not in (out / "studies" / "a" / "report.md").read_text()


def test_a_study_run_beside_another_studys_stale_sweep_record_still_reports_itself(tiny_corpus, tmp_path):
    """Study b's sweep record was made over other values than the grid now lists: the whole grid
    cannot be reported (its one-line reason is a warning), but study a, which ran, reports itself,
    and DIR/ is not rewritten over a's cells alone."""
    grid = studies_grid(
        tmp_path,
        tiny_corpus / "i2b2-2010",
        "{method: lora, tune: {lr: [0.001, 0.01]}}",
        extra="tuned: tuned.yaml",
        a_feeds="feeds: the a table, ",
    )
    (tmp_path / "tuned.yaml").write_text(
        "sweep: {grid: s, tune: {lora r8: {lr: [0.1, 1.0]}}, points: {}}\nchoices: []\n"
    )
    out = tmp_path / "o"
    done = run_all("--grid", grid, "--out", out, "--study", "a")
    assert "only study a's report was rebuilt" in done.stderr and "other values" in done.stderr
    assert summary_methods(out / "studies" / "a" / "summary.csv") == ["fedavg"]
    assert not (out / "summary.csv").exists()
    # a's report does not send its reader to a grid report that was not rebuilt
    assert (
        "Feeds the a table: the grid's report (../../report.md) was not rebuilt with it this time"
        in (out / "studies" / "a" / "report.md").read_text()
    )


def test_privacy_utility_in_report(tiny_corpus, tmp_path):
    grid = grid_file(
        tmp_path,
        tiny_corpus / "i2b2-2010",
        rounds=1,
        partitions="[iid]",
        methods='[{method: layerskip, layers: "list:1"}]',
        extra="dp_epsilons: [4, null]",
    )
    out = tmp_path / "out"
    run_all("--grid", grid, "--out", out)
    assert (out / "figures" / "privacy_utility.png").is_file()
    rows = list(csv.DictReader(open(out / "summary.csv")))
    spent = sorted(float(r["epsilon"]) if r["epsilon"] else float("inf") for r in rows)
    assert spent[0] <= 4.0 and spent[1] == float("inf")  # one DP run within its target, one without DP
    assert all(r["blocks"] == "1" for r in rows)
    table = (out / "tables" / "main.md").read_text()
    assert "ε target" in table and "| 4 (sample, per row) |" in table  # grouped by the target, spent shown beside it


def test_a_cell_two_studies_tune_differently_is_an_error(tiny_corpus, tmp_path):
    studies = """studies:
  a: {methods: [{method: fedavg, tune: {lr: [0.001, 0.01]}}]}
  b: {methods: [{method: fedavg, tune: {lr: [0.002, 0.02]}}]}
"""
    path = grid_file(tmp_path, tiny_corpus, methods="[{method: fedavg}]", partitions="[iid]", extra=studies)
    with pytest.raises(BenchError, match="studies a and b share a cell .* different values"):
        expand(load_grid(str(path))[1])
    path.write_text(path.read_text().replace("[0.002, 0.02]", "[0.001, 0.01]"))
    assert len(expand(load_grid(str(path))[1])) == 1  # the same ranges: one shared cell


def test_plan_counts_cells_whose_sweep_finished_under_new_settings_though_the_tuned_file_is_older(
    tiny_corpus, tmp_path
):
    """Mid re-sweep (the grid's settings changed, the `tuned` file still the old sweep's, which
    names other groups): --plan counts a cell done once its group's new sweep has finished and
    the chosen value has run, as --tune will choose, instead of 0 done."""
    import re

    path = grid_file(
        tmp_path,
        tiny_corpus / "i2b2-2010",
        rounds=1,
        methods="[{method: fedavg, tune: {lr: [0.001, 0.01]}}]",
        partitions="[iid]",
        extra="tuned: tuned.yaml\n",
    )
    path.write_text(path.read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    out = tmp_path / "out"
    run_all("--grid", path, "--out", out, "--tune")
    tuned = tmp_path / "tuned.yaml"
    assert (
        "distinct cells: 2 (a cell shared by studies counted once), 2 done"
        in run_all("--grid", path, "--out", out, "--plan").stdout
    )
    # the file as an older sweep under other settings wrote it: its groups are other groups
    tuned.write_text(re.sub(r"group: \S+", "group: 0123456789", tuned.read_text()))
    plan = run_all("--grid", path, "--out", out, "--plan").stdout
    assert "distinct cells: 2 (a cell shared by studies counted once), 2 done" in plan
