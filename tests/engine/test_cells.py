"""A grid's cells as Ray tasks on a two-node cluster: same results as a serial grid, on both nodes,
including cells that start their own Ray actors inside the cluster (the paper grid's shape)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_all_main

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


def _comparable(value):
    """A result without what legitimately differs between executions: timings, host, and whether
    the prefix cache was found on disk (which cell builds it first depends on scheduling)."""
    if isinstance(value, dict):
        return {
            k: _comparable(v)
            for k, v in value.items()
            if not k.endswith("_s") and k not in ("host", "prefix_cache_reuse", "prefix_cache")
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _results(out: Path) -> dict:
    found = {}
    for folder in sorted((out / "runs").iterdir()):
        final = json.loads((folder / "final.json").read_text())
        rounds = [json.loads(x) for x in (folder / "rounds.jsonl").read_text().splitlines()]
        found[folder.name] = (_comparable(final), _comparable(rounds), final["host"])
    return found


def test_grid_cells_spread_over_a_two_node_cluster(tiny_corpus, tmp_path):
    from ray.cluster_utils import Cluster

    grid = """name: t
defaults: {clients: 2, rounds: 1, max_length: 32, cpus_per_worker: 1}
tasks: [i2b2-2010]
methods: [{method: fedavg%s}, {method: layerskip, layers: "top:1"}]
partitions: [iid, "dirichlet:0.5"]
seeds: [0]
"""
    (tmp_path / "g.yaml").write_text(grid % "")
    # the paper grid's shape on the cluster: a cell whose task starts its own Ray actors (two, one a
    # node: each node has one CPU), inside the cluster the driver joined; execution only, same run ids
    (tmp_path / "cluster.yaml").write_text(grid % ", workers: 2, backend: ray")

    # the README's cluster command, with this test's grid, data root, model and address
    command = ["--data-dir", str(tiny_corpus), "--model", "tiny-bert"]

    def run(*extra):  # a process of its own: Ray connects it to the cluster, not this test process
        return subprocess.run(
            [sys.executable, str(ROOT / "run_all.py"), *command, *extra],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            timeout=600,
        )

    run_all_main("--grid", tmp_path / "g.yaml", *command, "--out", tmp_path / "serial")  # in this process (tests.cli)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        proc = run(
            "--grid", str(tmp_path / "cluster.yaml"), "--out", str(tmp_path / "cluster"),
            "--parallel", "2", "--ray-address", cluster.address,
        )  # fmt: skip
    finally:
        cluster.shutdown()
    assert "4 cells (4 ok)" in proc.stdout
    serial, spread = _results(tmp_path / "serial"), _results(tmp_path / "cluster")
    assert len(serial) == 4 and serial.keys() == spread.keys()
    for run_id in serial:
        (final, lines, _), (spread_final, spread_lines, _) = serial[run_id], spread[run_id]
        if "fedavg" in run_id:  # the actors' cell: two Ray actors, necessarily one on each node
            assert spread_final.pop("execution").startswith("execution: 2 worker(s), Ray actors"), run_id
            final.pop("execution")
            for settings in (final["config"], spread_final["config"]):
                settings.pop("workers"), settings.pop("backend")
        assert (final, lines) == (spread_final, spread_lines), run_id
    nodes = {host["ray_node_id"] for _, _, host in spread.values()}
    assert len(nodes) == 2 and None not in nodes  # cells ran on both nodes


def _dies_on_b(cell):
    import os

    if cell.run_id == "b":
        os._exit(1)  # the process running this cell dies, as under the OOM killer
    return "ok"


def test_a_cell_whose_process_dies_is_reported_and_the_others_finish():
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", cpus_per_worker=1)
    cells = [SimpleNamespace(run_id=name, config=cfg) for name in ("a", "b", "c")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seen = []
        statuses = run_cells_parallel(cells, _dies_on_b, 2, None, lambda cell, status: seen.append(cell.run_id))
    finally:
        ray.shutdown()
    assert statuses == {"a": "ok", "b": "crashed", "c": "ok"} and sorted(seen) == ["a", "b", "c"]


def test_follow_up_cells_jump_the_queue(tmp_path, monkeypatch):
    """A tuning group's seeds run as soon as its last sweep point ends, before the next group's
    points; a follow-up that is already stored is skipped (and may release its own)."""
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.protocol import runner

    order = []
    monkeypatch.setattr(runner, "run_cell", lambda cell, runs, resume: order.append(cell.run_id) or "ok")
    cfg = ExperimentConfig(task="conll", method="fedavg")  # not an hf: source: nothing to load first
    cell = lambda name: SimpleNamespace(run_id=name, config=cfg)  # noqa: E731
    (tmp_path / "stored").mkdir()
    (tmp_path / "stored" / "final.json").write_text("{}")
    follow = {"a2": ["seed-a", "stored"], "stored": ["after-stored"]}
    runner.run_cells(
        [cell("a1"), cell("a2"), cell("b1")],
        tmp_path,
        False,
        "test",
        then=lambda c, status: [cell(n) for n in follow.get(c.run_id, [])],
    )
    assert order == ["a1", "a2", "seed-a", "after-stored", "b1"]


def test_parallel_cells_run_the_follow_ups_progress_returns():
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", cpus_per_worker=1)
    cell = lambda name: SimpleNamespace(run_id=name, config=cfg)  # noqa: E731
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        statuses = run_cells_parallel(
            [cell("a"), cell("b")],
            lambda c: "ok",
            2,
            None,
            lambda c, status: [cell("seed-a")] if c.run_id == "a" else [],
        )
    finally:
        ray.shutdown()
    assert statuses == {"a": "ok", "b": "ok", "seed-a": "ok"}


def _holds_for_a_while(log_dir: str, cell) -> str:
    """Write when this cell started and ended (wall clock), holding it 2 s in between."""
    import time

    start = time.time()
    time.sleep(2.0)
    Path(log_dir, cell.run_id).write_text(f"{start} {time.time()}")
    return "ok"


def test_a_nodes_gpus_bound_how_many_gpu_cells_run_at_once(tmp_path):
    """Four one-GPU cells, four slots, a node of two (logical) GPUs and cores to spare: two run at
    a time, so a grid never puts two cells' models on one GPU it did not share out."""
    import functools
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", workers=1, gpus_per_worker=1.0, cpus_per_worker=1)
    cells = [SimpleNamespace(run_id=f"cell{i}", config=cfg) for i in range(4)]
    ray.init(num_cpus=8, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_one = functools.partial(_holds_for_a_while, str(tmp_path))
        statuses = run_cells_parallel(cells, run_one, 4, None, lambda cell, status: [])
    finally:
        ray.shutdown()
    assert set(statuses.values()) == {"ok"}
    spans = [tuple(map(float, (tmp_path / c.run_id).read_text().split())) for c in cells]
    at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)  # cells running at each start
    assert at_once == 2
