"""Cells of a grid in parallel: each cell is a Ray task that reserves its own resources, on this
machine or on a running cluster (`--ray-address`), so a grid fills every GPU of every node and a
node that joins picks up work. At most `parallel` cells are in flight; a free slot takes the next
cell. Each task writes its cell's folder in the store (atomically, as a serial run does), so the
store must be on a filesystem every node sees (one machine, or a shared mount on a cluster).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path

from bench.engine.ray_gpus import require_gpus
from bench.engine.ray_start import cluster_address, connect


def _resources(cfg) -> dict:
    """What a cell holds while it runs. A cell that starts its own Ray actors holds nothing
    itself: its actors reserve the CPUs and GPUs, and a task that held them too would wait for
    itself. A cell with local worker processes holds all their threads and every worker's GPU
    share (the sum the GPU check counts; Ray takes a share above one GPU only in whole GPUs)."""
    if cfg.resolved_backend == "ray":
        return {"num_cpus": 0, "num_gpus": 0}
    gpus = cfg.workers * cfg.gpus_per_worker
    return {"num_cpus": cfg.workers * (cfg.cpus_per_worker or 1), "num_gpus": math.ceil(gpus) if gpus > 1 else gpus}


def _sized(cell, parallel: int, ray_address: str | None):
    """A CPU cell on this machine that names no thread count gets an equal share of the cores,
    and holds exactly that share: `parallel` cells x their threads = the cores, never more."""
    cfg = cell.config
    if ray_address or cfg.cpus_per_worker or cfg.gpus_per_worker or cfg.workers > 1:
        return cell
    share = max(1, (os.cpu_count() or 1) // parallel)
    return dataclasses.replace(cell, config=cfg.with_settings(workers=1, cpus_per_worker=share))  # same run id


def _call(run_one: Callable, cell):
    return run_one(cell)


def run_cells_parallel(
    cells: list, run_one: Callable, parallel: int, ray_address: str | None, progress
) -> dict[str, str]:
    """run_id -> status ("ok", "skipped", "failed", "crashed") for every cell, `parallel` at a
    time. `progress(cell, status)` hears of each end and may return cells to run next (ahead of
    the queue)."""
    import ray

    owns = not ray.is_initialized()
    if owns:
        connect(ray, ray_address, {"num_cpus": os.cpu_count(), "include_dashboard": False})
    # the largest cell must fit this machine's GPUs, or it waits for ever
    if not cluster_address(ray_address) and cells:
        need = max(c.config.workers * c.config.gpus_per_worker for c in cells)
        require_gpus(ray, need, "a cell of this grid", shut_down=owns)
    task = ray.remote(max_retries=0)(_call)
    queue, running, statuses = list(cells), {}, {}
    try:
        while queue or running:
            while queue and len(running) < parallel:
                cell = _sized(queue.pop(0), parallel, ray_address)
                options = {**_resources(cell.config), "scheduling_strategy": "SPREAD"}
                running[task.options(**options).remote(run_one, cell)] = cell
            done, _ = ray.wait(list(running), num_returns=1)
            cell = running.pop(done[0])
            try:
                statuses[cell.run_id] = ray.get(done[0])
            except ray.exceptions.RayError:  # the process running the cell died: the others go on
                statuses[cell.run_id] = "crashed"  # --resume continues it from its last checkpoint
            queue[:0] = progress(cell, statuses[cell.run_id]) or []
    finally:
        if owns:
            ray.shutdown()
    return statuses


def cpu_kind() -> dict:
    """The processor's model and a digest of its feature flags: float rounding in training follows
    the kernels they select, so two runs of one seed agree bit for bit only on the same kind."""
    import hashlib

    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "flags") and key.strip() not in info:
                info[key.strip()] = value.strip()
    except OSError:
        return {"cpu_model": None, "cpu_flags_sha": None}
    flags = info.get("flags")
    return {
        "cpu_model": info.get("model name"),
        "cpu_flags_sha": hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else None,
    }


def node_identity() -> dict:
    """Where this process runs: host name, and the Ray node id when inside a Ray cluster."""
    import platform
    import sys

    host = {"hostname": platform.node(), "pid": os.getpid(), "ray_node_id": None, **cpu_kind()}
    if "ray" in sys.modules:  # only ask Ray if this process already uses it
        import ray

        if ray.is_initialized():
            host["ray_node_id"] = ray.get_runtime_context().get_node_id()
    return host
