"""Adaptive layer selection (`--layers auto:K`): a cheap federated probe picks the blocks.

Each client runs one pass over (at most `probe_rows` of) its own data with every block
trainable and reports one number per block: the mean squared gradient norm of that block's
parameters, an empirical-Fisher proxy for how much the task wants the block to change. Only
those numbers leave a client (n_blocks floats, counted in bytes). The server averages them
weighted by sample counts and picks the K highest-scoring blocks.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.engine.training import collate
from bench.errors import BenchError
from bench.model.build import build_model
from bench.model.layers import discover_layers
from bench.seeding import seed_of

PROBE_ROWS = 128


def block_scores(
    model, layers, encoded, rows: np.ndarray, kind: str, pad_id: int, batch_size: int, seed: int
) -> np.ndarray:
    """One client's per-block mean squared gradient norm over one pass of its data."""
    names = {b: set(layers.block_params(model, b)) for b in range(layers.n_blocks)}
    wanted = set().union(*names.values()) | set(layers.head)
    saved = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in wanted)
    rows = np.random.default_rng(seed).permutation(rows)[:PROBE_ROWS]
    scores = np.zeros(layers.n_blocks)
    model.train()
    torch.manual_seed(seed)
    batches = 0
    for start in range(0, len(rows), batch_size):
        model.zero_grad(set_to_none=True)
        model(**collate(encoded, rows[start : start + batch_size].tolist(), pad_id, kind, "cpu")).loss.backward()
        params = dict(model.named_parameters())
        for b, block in names.items():
            scores[b] += sum(float((params[n].grad ** 2).sum()) for n in block if params[n].grad is not None)
        batches += 1
    model.zero_grad(set_to_none=True)
    for n, p in model.named_parameters():
        p.requires_grad_(saved[n])
    return scores / max(batches, 1)


def choose_blocks(client_scores: list[np.ndarray], weights: list[int], k: int) -> tuple[list[int], list[float]]:
    """Sample-weighted mean of the clients' scores, and the K best blocks (ties: the higher block)."""
    mean = np.average(np.stack(client_scores), axis=0, weights=np.asarray(weights, dtype=float))
    order = sorted(range(len(mean)), key=lambda b: (-mean[b], -b))
    return sorted(order[:k]), [float(x) for x in mean]


def resolve_auto_layers(cfg, task) -> tuple[object, dict]:
    """Replace `auto:K` with the probe's choice (`list:...`); returns (config, what the probe saw)."""
    import dataclasses

    try:
        k = int(cfg.layers.split(":", 1)[1])
    except ValueError:
        raise BenchError(f"bad layer spec {cfg.layers!r}: expected auto:K") from None
    model, _ = build_model(cfg.model, task.kind, len(task.output_labels), cfg.seed, cfg.dtype)
    layers = discover_layers(model)
    if not 1 <= k <= layers.n_blocks:
        raise BenchError(f"layer spec {cfg.layers!r}: K must be between 1 and {layers.n_blocks} for this model")
    scores, weights = [], []
    for client, examples in enumerate(task.clients):
        rows = task.train.rows(examples)
        seed = seed_of("layer_probe", cfg.seed, client)
        scores.append(
            block_scores(model, layers, task.train.encoded, rows, task.kind, task.pad_id, cfg.batch_size, seed)
        )
        weights.append(len(examples))
    chosen, mean = choose_blocks(scores, weights, k)
    probe = {
        "requested": cfg.layers,
        "chosen_blocks": chosen,
        "block_scores": mean,
        "probe_bytes_up": len(task.clients) * layers.n_blocks * 4,
    }
    return dataclasses.replace(cfg, layers="list:" + ",".join(map(str, chosen))), probe
