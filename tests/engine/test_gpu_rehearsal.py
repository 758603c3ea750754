"""GPU sharing rehearsed without a GPU (no GPU has been lent to this project): Ray is started with
one logical GPU, and `--gpus-per-worker 0.25` must co-schedule four workers on it, each alive at
once with the CUDA_VISIBLE_DEVICES Ray gives it; the worker's device and cache dtype follow what
CUDA reports; the default execution takes the GPUs CUDA reports."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from bench.config import ExperimentConfig
from bench.engine import execution
from bench.engine.worker import placement
from tests.tiny import tiny_config


@pytest.mark.parametrize(
    ("cuda", "share", "dtype", "expected"),
    [
        (True, 0.25, "float32", ("cuda", torch.float16)),
        (True, 0.25, "bfloat16", ("cuda", torch.bfloat16)),  # never squeezed into float16's range
        (True, 0.0, "float32", ("cpu", torch.float32)),  # no GPU share: the CPU, whatever CUDA says
        (False, 0.25, "bfloat16", ("cpu", torch.bfloat16)),  # a share of a GPU CUDA cannot see: the model's dtype
    ],
)
def test_the_device_and_cache_dtype_follow_what_cuda_reports(monkeypatch, cuda, share, dtype, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert placement(ExperimentConfig(task="conll", method="fedavg", gpus_per_worker=share, dtype=dtype)) == expected


def test_the_default_execution_takes_one_worker_per_gpu_cuda_reports(monkeypatch):
    monkeypatch.delenv("BENCH_WORKERS", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen = execution.choose(ExperimentConfig(task="conll", method="fedavg", clients=4))
    assert (chosen.workers, chosen.gpus_per_worker) == (2, 1.0)


def _ray_workers(corpus, workers: int, **extra) -> ExperimentConfig:
    """FedAvg on the tiny corpus, one client per Ray worker, each holding a quarter of a GPU."""
    return tiny_config(corpus, clients=workers, backend="ray", workers=workers, gpus_per_worker=0.25, rounds=3, **extra)


def test_four_workers_share_one_logical_gpu_at_once(tiny_corpus, tmp_path, monkeypatch):
    import ray

    from bench.engine.prepare import prepare_task
    from bench.engine.ray_backend import RayBackend

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = _ray_workers(tiny_corpus, 4, prefix_cache="off")  # the paper grid's shape: no cpus_per_worker
    ray.init(num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # a GPU node's cores: a quarter each would not fit
    try:
        backend = RayBackend(cfg, prepare_task(cfg))
        seen = ray.get(
            [
                w.__ray_call__.remote(
                    lambda me: (os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), me.device, torch.get_num_threads())
                )
                for w in backend.workers
            ],
            timeout=120,  # actors that ask for more CPUs than the node has wait for ever
        )
        assert len({pid for pid, *_ in seen}) == 4  # four processes, all alive at once
        assert {gpu for _, gpu, _, _ in seen} == {"0"}  # each told to use the one GPU
        # the device CUDA reports: the CPU on a host without one (a GPU host's logical GPU is its GPU 0)
        assert {device for _, _, device, _ in seen} == {"cuda" if torch.cuda.is_available() else "cpu"}
        assert ray.available_resources().get("GPU", 0.0) == pytest.approx(0.0)  # the GPU is fully shared out
        assert ray.available_resources().get("CPU", 0.0) == pytest.approx(0.0)  # two cores per quarter GPU
        # each runs as many torch threads as cores it reserves (2), not its node's cores over the
        # run's workers (its own os.cpu_count, 2 here, // 4 = 1; 64 // 4 = 16 on a real node)
        assert [threads for *_, threads in seen] == [2, 2, 2, 2]
    finally:
        ray.shutdown()


def test_a_gpu_share_on_a_machine_with_no_gpu_is_one_clear_error_not_a_hang(tiny_corpus, tmp_path, monkeypatch):
    """Ray would keep actors that ask for 0.25 GPU pending for ever where it found none (seen:
    `run_all.py --grid paper --pilot` on a CPU host waited with no output)."""
    import ray

    from bench.engine.prepare import prepare_task
    from bench.engine.ray_backend import RayBackend
    from bench.errors import BenchError

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # whatever this machine has, Ray is to see no GPU
    cfg = _ray_workers(tiny_corpus, 2)
    with pytest.raises(BenchError, match=r"--workers 2 x --gpus-per-worker 0.25 asks for 0.5 GPU.* Ray found 0 "):
        RayBackend(cfg, prepare_task(cfg))
    assert not ray.is_initialized()  # the cluster it started is shut down again


def test_the_gpu_check_counts_every_worker_and_leaves_a_cluster_it_did_not_start():
    from bench.engine.ray_gpus import require_gpus
    from bench.errors import BenchError

    class FakeRay:  # a cluster with one GPU that another process started
        shut = False

        def cluster_resources(self):
            return {"CPU": 4.0, "GPU": 1.0}

        def shutdown(self):
            self.shut = True

    ray = FakeRay()
    require_gpus(ray, 4 * 0.25, "four quarter-GPU workers", shut_down=False)  # fits exactly
    with pytest.raises(BenchError, match=r"asks for 1.5 GPU\(s\) at once, but Ray found 1 "):
        require_gpus(ray, 2 * 0.75, "two workers", shut_down=False)  # each share fits, the two do not
    assert not ray.shut


def test_a_local_cell_in_a_parallel_grid_holds_every_workers_gpu_share():
    from bench.engine.cells import _resources

    def cfg(workers, share, backend="local"):
        return SimpleNamespace(resolved_backend=backend, workers=workers, gpus_per_worker=share, cpus_per_worker=1)

    assert _resources(cfg(4, 0.25)) == {"num_cpus": 4, "num_gpus": 1.0}  # what the GPU check counts
    assert _resources(cfg(1, 0.5))["num_gpus"] == 0.5
    assert _resources(cfg(6, 0.25))["num_gpus"] == 2  # Ray takes more than one GPU in whole GPUs only
    assert _resources(cfg(4, 0.25, "ray")) == {"num_cpus": 0, "num_gpus": 0}  # its actors hold them


def test_a_gpu_actor_reserves_its_share_of_a_nodes_cores_per_gpu():
    """So a node's GPUs bound its actors: 4 quarter-GPU actors on a 64-core node of 8 GPUs hold 8
    cores, not all 64 (the cores over the run's workers), and 8 cells share the node."""
    from bench.config import ExperimentConfig
    from bench.engine.ray_gpus import actor_cpus

    def nodes(*specs):
        alive = [{"Alive": True, "Resources": {"CPU": c, "GPU": g} if g else {"CPU": c}} for c, g in specs]
        return SimpleNamespace(nodes=lambda: [*alive, {"Alive": False, "Resources": {"CPU": 1.0, "GPU": 8.0}}])

    def cfg(**settings):
        return ExperimentConfig(task="conll", method="fedavg", workers=4, **settings)

    assert actor_cpus(nodes((64.0, 8.0)), cfg(gpus_per_worker=0.25)) == 2
    assert actor_cpus(nodes((64.0, 8.0), (16.0, 4.0), (96.0, 0)), cfg(gpus_per_worker=0.25)) == 1  # fits each
    assert actor_cpus(nodes((64.0, 8.0)), cfg(gpus_per_worker=1.0)) == 8
    assert actor_cpus(nodes((2.0, 4.0)), cfg(gpus_per_worker=0.25)) == 0.125  # a fraction, not a whole core
    assert actor_cpus(nodes((64.0, 8.0), (0.0, 8.0)), cfg(gpus_per_worker=0.25)) == 2  # a node of no CPUs runs none
    assert actor_cpus(nodes((64.0, 8.0)), cfg(gpus_per_worker=0.25, cpus_per_worker=3)) == 3  # given: kept
    assert actor_cpus(nodes((64.0, 8.0)), cfg(ray_address="h:1")) == 1  # a CPU actor on a cluster at an address
    assert actor_cpus(nodes((64.0, 8.0)), cfg()) == cfg().threads_per_worker  # a CPU actor on this machine
