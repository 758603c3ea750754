"""This host's training throughput, measured once in a few seconds and cached: what `--plan`
quotes for a CPU before the grid's own runs or a pilot have measured a shape.

A stated figure cannot serve: the old one (0.25 TFLOP/s) was about 10x what one thread of this
project's machine delivers on minilm (0.02-0.03 measured), so a newcomer's first plan was off by
an order of magnitude. The probe trains a BERT block of minilm's width on a batch of the NCBI
study's shape with one torch thread (the local backend runs one-thread workers) and counts FLOPs
as the planner does (6 x parameters per token); the host figure is that times its cores."""

from __future__ import annotations

import json
import os
import platform
import time

from bench.store import atomic_write_json, cache_root

HIDDEN, HEADS, FFN = 384, 12, 1536  # minilm's block
BATCH, TOKENS = 16, 64  # the NCBI study's batch
PROBE_SECONDS = 2.0


def cache_path():
    return cache_root() / "host_speed.json"


def measure_thread_tflops(seconds: float = PROBE_SECONDS) -> float:
    """TFLOP/s of one torch thread training a transformer block (forward, backward, AdamW)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        block = torch.nn.TransformerEncoderLayer(HIDDEN, HEADS, FFN, dropout=0.0, batch_first=True)
        optimizer = torch.optim.AdamW(block.parameters(), lr=1e-4)
        x = torch.randn(BATCH, TOKENS, HIDDEN)
        params = sum(p.numel() for p in block.parameters())

        def step():
            optimizer.zero_grad()
            block(x).square().mean().backward()
            optimizer.step()

        step()  # allocations and kernels chosen outside the timing
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return 6.0 * params * BATCH * TOKENS * steps / elapsed / 1e12


def all_cores_tflops() -> float:
    """This CPU's rate measured now: one thread's times the cores (an upper bound, as cores may not scale)."""
    return measure_thread_tflops() * (os.cpu_count() or 1)


def host_tflops(host: str) -> tuple[float, str]:
    """(TFLOP/s of this host's cores, how it is known): cached per host, else measured now."""
    path = cache_path()
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if host not in stored:
        per_thread = measure_thread_tflops()
        stored[host] = {"per_thread_tflops": per_thread, "cores": os.cpu_count() or 1, "measured": time.time()}
        atomic_write_json(path, stored)
    entry = stored[host]
    total = entry["per_thread_tflops"] * entry["cores"]
    return total, (
        f"{total:.3f} TFLOP/s for this CPU, measured here ({entry['per_thread_tflops']:.3f} per thread x "
        f"{entry['cores']} cores, a minilm-width block; cached in {path})"
    )


def host_key() -> str:
    """This host as the caches key it (host speed, pilots): its name, and its GPU or its core count."""
    try:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    except Exception:  # noqa: BLE001 - a planner without torch still plans
        device = "unknown"
    return f"{platform.node()}|{device}"
