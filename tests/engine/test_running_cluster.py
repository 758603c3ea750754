"""Runs beside a Ray cluster already running, two nodes of one CPU each: a grid's cells spread over
both nodes with the same results as a serial grid, including cells that start their own Ray actors
inside the cluster (the paper grid's shape); a run's workers sit on both nodes; a run named the
cluster by RAY_ADDRESS joins it rather than starting one sized here.

One cluster serves the module (starting one took about 7 s here), and only the module: while it
runs, Ray's record of it would let another test's ray.init() find it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_all_main
from tests.engine.test_backends import run, strip
from tests.tiny import tiny_config

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_cluster():
    """The head (with a resource only this cluster has, so a test can tell it joined this one) and
    a second node."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"already_running": 1}})
    try:
        cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        cluster.shutdown()


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


def test_grid_cells_spread_over_a_two_node_cluster(running_cluster, tiny_corpus, tmp_path):
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

    def grid_command(*extra):  # a process of its own: Ray connects it to the cluster, not this test process
        return subprocess.run(
            [sys.executable, str(ROOT / "run_all.py"), *command, *extra],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            timeout=600,
        )

    run_all_main("--grid", tmp_path / "g.yaml", *command, "--out", tmp_path / "serial")  # in this process (tests.cli)
    proc = grid_command(
        "--grid", str(tmp_path / "cluster.yaml"), "--out", str(tmp_path / "cluster"),
        "--parallel", "2", "--ray-address", running_cluster.address,
    )  # fmt: skip
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


def test_a_run_places_its_workers_on_both_nodes(running_cluster, tiny_corpus, tmp_path, monkeypatch):
    from bench.engine.prepare import prepare_task
    from bench.engine.ray_backend import RayBackend

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))  # this process's token cache
    address = running_cluster.address
    try:
        ray.init(address=address)
        lines = run(tiny_corpus, tmp_path / "cluster", backend="ray", workers=2, ray_address=address)
        assert len(ray.nodes()) == 2 and len(lines) == 2
        serial = run(tiny_corpus, tmp_path / "serial", backend="serial")
        assert strip(lines) == strip(serial)
        # one CPU per node and one per actor: the two workers sit on different nodes, asked of them
        cfg = tiny_config(tiny_corpus, backend="ray", workers=2, cpus_per_worker=1, ray_address=address)
        backend = RayBackend(cfg, prepare_task(cfg))
        where = [w.__ray_call__.remote(lambda me: ray.get_runtime_context().get_node_id()) for w in backend.workers]
        nodes = ray.get(where, timeout=120)
        backend.close()
        assert len(set(nodes)) == 2, nodes
    finally:
        ray.shutdown()


def test_a_run_joins_the_cluster_named_by_ray_address(running_cluster, tiny_corpus, tmp_path, monkeypatch):
    from bench.engine.prepare import prepare_task
    from bench.engine.ray_backend import RayBackend
    from bench.engine.ray_gpus import actor_cpus

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))  # this process's (the cluster's actors started before)
    cfg = tiny_config(tiny_corpus, backend="ray", workers=1, cpus_per_worker=1, prefix_cache="off")
    task = prepare_task(cfg)
    monkeypatch.setenv("RAY_ADDRESS", running_cluster.address)
    try:
        backend = RayBackend(cfg, task)
        assert ray.cluster_resources().get("already_running") == 1.0  # the running cluster, not one sized here
        assert backend.info() and backend.initial_state()  # its worker answers
        backend.close()
        assert not ray.is_initialized()  # disconnected at close
        # RAY_ADDRESS counts as --ray-address in the rest too: a CPU actor reserves one core, not its
        # threads (two here), and a GPU share is
        # not refused for want of GPUs where Ray found the cluster (an autoscaler may add them)
        monkeypatch.setattr("bench.config.os.cpu_count", lambda: 4)
        cpu = tiny_config(tiny_corpus, backend="ray", workers=2, prefix_cache="off")
        assert cpu.threads_per_worker == 2 and actor_cpus(ray, cpu) == 1
        gpu = tiny_config(tiny_corpus, backend="ray", workers=1, gpus_per_worker=0.25, prefix_cache="off")
        pending = RayBackend(gpu, task)  # Ray holds its actor until a GPU joins; nothing raised
        for worker in pending.workers:
            ray.kill(worker)
    finally:
        ray.shutdown()
