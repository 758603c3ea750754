"""What worker actors ask of Ray where GPUs are shared: fail fast where Ray would wait for ever
(actors or tasks asking for more GPU than a cluster on this machine has stay pending, with no
output: no autoscaler adds GPUs to it), and reserve a GPU actor's CPUs by its GPU share."""

from __future__ import annotations

import math

from bench.engine.ray_start import cluster_address
from bench.errors import BenchError


def require_gpus(ray, need: float, what: str, shut_down: bool) -> None:
    """Raise a one-line BenchError when `need` GPUs (summed over what must run at once) exceed
    what Ray found; shut the cluster down first when this process started it."""
    found = ray.cluster_resources().get("GPU", 0.0)
    if need > found + 1e-9:
        if shut_down:
            ray.shutdown()
        raise BenchError(
            f"{what} asks for {need:g} GPU(s) at once, but Ray found {found:g} on this machine; "
            "use --gpus-per-worker 0 to run on the CPU"
        )


def actor_cpus(ray, cfg) -> float:
    """The CPUs one worker actor reserves: `cpus_per_worker` where given. An actor with a GPU
    share reserves that share of a node's cores per GPU (the fewest over the cluster's live GPU
    nodes), so a node's GPUs, not its cores, bound how many actors it runs: reserving the run's
    thread count instead (the node's cores over the run's workers), four quarter-GPU actors took
    every core of a node, and one cell filled a node of eight GPUs. A CPU actor reserves its
    threads, or one CPU on a cluster at an address (`--ray-address` or RAY_ADDRESS). A GPU actor
    runs as many torch threads as whole cores it reserves, at least one (RayBackend)."""
    if cfg.cpus_per_worker:
        return cfg.cpus_per_worker
    if cfg.gpus_per_worker > 0:
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("GPU")]
        per_gpu = min((r["CPU"] / r["GPU"] for r in nodes if r.get("CPU")), default=1.0)
        share = per_gpu * cfg.gpus_per_worker
        # whole cores where a share holds one; below that the fraction (Ray takes 1e-4 steps),
        # since rounding it up to a core would leave the node's last GPU shares waiting for ever
        return int(share) if share >= 1 else max(1e-4, math.floor(share * 1e4) / 1e4)
    return 1 if cluster_address(cfg.ray_address) else cfg.threads_per_worker
