"""Local worker processes give the serial backend's numbers; a killed process loses only its
client; the default execution fills the cores without more workers than clients."""

import argparse
import gc
import json
import os
import subprocess
import sys

import pytest
import torch

from bench.compare.step_memory import private_dirty_kb
from bench.config import ExperimentConfig
from bench.engine import execution
from bench.engine.server import run_experiment
from bench.protocol.grid import expand
from bench.protocol.overrides import overridden
from tests.tiny import tiny_config


def run(tiny_corpus, out, **kw):
    cfg = tiny_config(tiny_corpus, **{"clients": 3, "rounds": 2, "cpus_per_worker": 1, "max_length": 48, **kw})
    final = run_experiment(cfg, out, progress=False)
    return final, [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]


def strip(lines):
    timings = ("wall_s", "paused_s", "compute_s", "secagg_client_s", "secagg_server_s")
    return [{k: v for k, v in line.items() if k not in timings} for line in lines]  # timings differ


# local: every client starts from its own state; secagg: each client's secrets live in the process that trains it
@pytest.mark.parametrize("method, secagg", [("fedavg", "off"), ("local", "off"), ("fedavg", "on")])
def test_local_processes_equal_serial_exactly(tiny_corpus, tmp_path, method, secagg):
    serial_final, serial = run(tiny_corpus, tmp_path / "serial", backend="serial", method=method, secagg=secagg)
    local_final, local = run(tiny_corpus, tmp_path / "local", workers=2, method=method, secagg=secagg)  # auto: local
    assert local_final["config"]["workers"] == 2
    assert strip(serial) == strip(local)
    assert (serial_final["metric"], serial_final["per_client"]) == (local_final["metric"], local_final["per_client"])


def test_a_killed_process_loses_its_client_and_is_restarted(tiny_corpus, tmp_path, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("BENCH_CHAOS_KILL", f"1:1:{marker}")  # round 2 (index 1), client 1
    final, lines = run(tiny_corpus, tmp_path / "run", workers=2, rounds=3)
    assert marker.exists() and final["status"] == "ok"
    assert lines[1]["lost"] == [1] and 1 not in lines[1]["clients"]
    assert lines[2]["lost"] == [] and lines[2]["clients"] == [0, 1, 2]  # the restarted process trains again


def test_default_execution_fills_cores_not_beyond_clients(monkeypatch):
    monkeypatch.delenv("BENCH_WORKERS", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU host's choice, on a GPU host too
    monkeypatch.setattr(execution, "usable_cores", lambda: 8)
    fed = execution.choose(ExperimentConfig(task="conll", method="fedavg", clients=20, clients_per_round=5))
    assert (fed.workers, fed.threads_per_worker, fed.resolved_backend) == (5, 1, "local")
    central = execution.choose(ExperimentConfig(task="conll", method="centralized", clients=20))
    assert (central.workers, central.threads_per_worker, central.resolved_backend) == (1, 8, "serial")
    # README: Ray stays the backend for GPUs (fractional placement), and for a named cluster
    on_gpus = ExperimentConfig(task="conll", method="fedavg", workers=4, gpus_per_worker=0.25)
    assert on_gpus.resolved_backend == "ray" and on_gpus.with_settings(workers=1).resolved_backend == "serial"
    assert ExperimentConfig(task="conll", method="fedavg", workers=2, ray_address="h:6379").resolved_backend == "ray"
    assert fed.run_id == ExperimentConfig(task="conll", method="fedavg", clients=20, clients_per_round=5).run_id
    monkeypatch.setenv("BENCH_WORKERS", "1")
    assert execution.choose(ExperimentConfig(task="conll", method="fedavg")).workers == 1


def test_one_evaluation_cut_across_processes_scores_as_one(tiny_corpus, tmp_path, monkeypatch):
    from bench.engine import scoring

    monkeypatch.setattr(scoring, "SPLIT_FROM", 2)  # every request of 2+ examples is cut in two
    serial_final, serial = run(tiny_corpus, tmp_path / "serial", backend="serial")
    local_final, local = run(tiny_corpus, tmp_path / "local", workers=2)
    assert strip(serial) == strip(local)
    timeless = lambda scores: {k: v for k, v in scores.items() if k != "eval_s"}  # noqa: E731
    assert timeless(serial_final["scores"]) == timeless(local_final["scores"])
    assert serial_final["per_client"] == local_final["per_client"]


def test_prediction_shares_cut_large_requests_and_balance_small_ones():
    from bench.engine.scoring import prediction_shares

    shares = prediction_shares([300, 10, 20, 5], 2)
    assert shares[0][0] == (0, slice(0, None, 2)) and shares[1][0] == (0, slice(1, None, 2))
    small = {j: i for i, share in enumerate(shares) for j, part in share if part == slice(None)}
    assert small == {1: 0, 2: 1, 3: 0}  # each to the process with the least work so far
    assert prediction_shares([300], 1) == [[(0, slice(None))]]


def test_each_client_goes_back_to_the_process_that_trained_it():
    """README: clients are dealt with affinity, each to the process holding its prefix-cache rows.
    Two rounds through the real dealer, with pipes for processes that answer at once."""
    import multiprocessing

    import numpy as np

    from bench.engine.local_backend import LocalBackend
    from bench.federation.comm import GLOBAL, Job

    pipes = [multiprocessing.Pipe() for _ in range(2)]
    backend = object.__new__(LocalBackend)  # the dealer alone: no processes started
    backend.affinity, backend.conns = {}, [parent for parent, _ in pipes]
    sent: list[tuple[int, int]] = []  # (process, client) in the order dealt

    def send(i, name, args, states):
        sent.append((i, args[0][0].client))
        pipes[i][1].send_bytes(b"done")

    backend._send = send
    backend._receive = lambda i: backend.conns[i].recv_bytes() and []
    jobs = {c: Job(c, np.arange(0)) for c in range(4)}

    backend._deal({GLOBAL: b""}, [jobs[c] for c in range(4)], None, None, None, 1)
    first = {c: i for i, c in sent}
    assert sorted(first) == [0, 1, 2, 3] and set(first.values()) == {0, 1}
    sent.clear()
    backend._deal({GLOBAL: b""}, [jobs[c] for c in (3, 2, 1, 0)], None, None, None, 2)  # another order
    assert {c: i for i, c in sent} == first


def test_grid_cells_run_one_at_a_time_get_the_default_execution(monkeypatch):
    monkeypatch.delenv("BENCH_WORKERS", raising=False)
    monkeypatch.setattr(execution, "usable_cores", lambda: 2)
    grid = {
        "_path": "test.yaml",
        "defaults": {"clients": 4},
        "tasks": ["conll"],
        "methods": [{"method": "fedavg"}, {"method": "centralized"}, {"method": "lora", "backend": "serial"}],
        "partitions": ["iid"],
        "seeds": [0],
    }
    cells = expand(grid)
    args = argparse.Namespace(model=None, data_dir=None, parallel=1, ray_address=None)
    chosen = {c.config.method: c.config for c in overridden(cells, args)}
    assert (chosen["fedavg"].workers, chosen["fedavg"].resolved_backend) == (2, "local")
    assert (chosen["centralized"].workers, chosen["centralized"].threads_per_worker) == (1, 2)
    assert chosen["lora"].workers == 1 and chosen["lora"].backend == "serial"  # the grid chose: left alone
    assert [c.run_id for c in overridden(cells, args)] == [c.run_id for c in cells]
    parallel = overridden(cells, argparse.Namespace(model=None, data_dir=None, parallel=2, ray_address=None))
    assert all(c.config.workers == 1 for c in parallel)  # --parallel sizes cells itself (bench.engine.cells)


def _collected_dirty_kb(queue):
    """In a worker forked like the backend's: the private memory a full collection copies."""
    before = private_dirty_kb()
    gc.collect()
    queue.put((gc.get_freeze_count(), private_dirty_kb() - before))


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="Linux /proc only")
def test_workers_fork_from_a_frozen_heap_so_a_full_collection_copies_little():
    from bench.engine.fork_server import PRELOAD, context

    assert PRELOAD[-1] == "bench.engine.freeze_imports"  # freezes after every other import
    forking = context()
    queue = forking.Queue()
    worker = forking.Process(target=_collected_dirty_kb, args=(queue,))
    worker.start()
    frozen, copied_kb = queue.get(timeout=120)
    worker.join()
    assert frozen > 100_000  # the preloaded modules' objects (about 425,000 here)
    assert copied_kb < 20_000  # unfrozen, this collection copied about 113 MB of shared pages


MAIN_SCRIPT = """
import json, os, sys
with open(os.environ["RUN_LOG"], "a") as log:  # one line each time this script's code runs
    log.write(f"{os.getpid()}\\n")
ARGS = sys.argv[1:]


def report(queue):  # defined here: a child must unpickle it from the parent's main
    queue.put([ARGS, os.environ.get("BENCH_FORK_SERVER_MAIN")])


if __name__ == "__main__":
    from bench.engine import fork_server
    fork_server.warm_up()
    forking = fork_server.context()
    queue = forking.Queue()
    workers = [forking.Process(target=report, args=(queue,)) for _ in range(2)]
    for w in workers:
        w.start()
    seen = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join()
    print(json.dumps({"pid": os.getpid(), "seen": seen, "exit": [w.exitcode for w in workers]}))
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_the_parents_main_runs_once_in_the_fork_server_not_in_every_worker(tmp_path, how):
    (tmp_path / "main_script.py").write_text(MAIN_SCRIPT)
    log = tmp_path / "runs.log"
    start = [str(tmp_path / "main_script.py")] if how == "script" else ["-m", "main_script"]
    done = subprocess.run(
        [sys.executable, *start, "--flag"],
        env={**os.environ, "RUN_LOG": str(log)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["exit"] == [0, 0] and found["seen"] == [[["--flag"], None]] * 2  # the parent's argv; no variable left
    runs = log.read_text().split()
    # the parent and the fork server; multiprocessing alone runs it in each of the 2 workers instead
    assert len(runs) == 2 and runs[0] == str(found["pid"])
