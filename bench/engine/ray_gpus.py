"""Fail fast where Ray would wait for ever: actors or tasks asking for more GPU than a cluster on
this machine has stay pending, with no output (no autoscaler adds GPUs to it)."""

from __future__ import annotations

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
