"""Ray and serial give the same numbers (on a two-node cluster too: test_running_cluster.py)."""

import json

import pytest

from bench.engine.server import run_experiment
from tests.tiny import tiny_config

ray = pytest.importorskip("ray")


def run(tiny_corpus, out, **kw):
    cfg = tiny_config(tiny_corpus, clients=3, rounds=2, cpus_per_worker=1, max_length=48, **kw)
    run_experiment(cfg, out, progress=False)
    return [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]


def strip(lines):
    timings = ("wall_s", "paused_s", "compute_s", "secagg_client_s", "secagg_server_s")
    return [{k: v for k, v in line.items() if k not in timings} for line in lines]  # timings differ


def test_ray_equals_serial_exactly(tiny_corpus, tmp_path, drawn_here):
    """With secure aggregation: each client's secrets live in the actor that trains it, so the
    driver (the server's process) draws none of them (tests/engine/conftest.py's watch; the serial
    run, whose worker is this process, is its positive control)."""
    serial = run(tiny_corpus, tmp_path / "serial", backend="serial", secagg="on")
    assert [what for what, _ in drawn_here].count("x25519") == 2 * 3 * 2  # 2 key pairs, 3 clients, 2 rounds
    drawn_here.clear()
    try:
        distributed = run(tiny_corpus, tmp_path / "ray", backend="ray", workers=2, secagg="on")
    finally:
        ray.shutdown()
    assert drawn_here == [], f"client secrets drawn in the driver: {drawn_here}"
    assert strip(serial) == strip(distributed)
