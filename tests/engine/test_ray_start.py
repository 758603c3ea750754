"""A run started beside a Ray cluster already running on this machine (the README's `ray start
--head`, then `run_all.py --pilot --plan`) joins that cluster: Ray finds it by itself and refuses
the resource arguments a cluster started here is sized with."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_config

ray = pytest.importorskip("ray")


def test_a_run_joins_the_cluster_running_on_this_machine(tiny_corpus, tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    from bench.engine.prepare import prepare_task
    from bench.engine.ray_backend import RayBackend

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(tiny_corpus, backend="ray", workers=1, cpus_per_worker=1, prefix_cache="off")
    task = prepare_task(cfg)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # as `ray start --head` leaves it findable
    try:
        backend = RayBackend(cfg, task)
        assert ray.cluster_resources()["CPU"] == 1.0  # the running cluster, not one sized here
        assert backend.info() and backend.initial_state()  # its worker answers
        backend.close()
        assert not ray.is_initialized()  # disconnected at close
    finally:
        ray.shutdown()
        cluster.shutdown()
