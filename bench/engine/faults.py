"""Faults a long grid meets: clients that drop out or miss the deadline, and bad updates.

Dropout and stragglers are simulated from (seed, round, client) alone, so a resumed or re-run
round drops the same clients. A straggler trains but reports after the deadline: it received
the model (bytes down count) but its update is not aggregated (no bytes up).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.seeding import stream

NORM_OUTLIER = 10.0  # an update this many times the median update norm is rejected


def absent_clients(cfg, round_: int, clients: list[int]) -> tuple[set[int], set[int]]:
    """(dropped, stragglers) among this round's sampled clients."""
    dropped, late = set(), set()
    for c in clients:
        u = stream("faults", cfg.seed, round_, c).random(2)
        if u[0] < cfg.dropout:
            dropped.add(c)
        elif u[1] < cfg.straggler_frac:
            late.add(c)
    return dropped, late


def update_norm(state: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> float:
    """L2 norm of state - start; NaN or Inf when any element is (so it doubles as the check)."""
    per_tensor = torch.stack([torch.linalg.vector_norm(state[k] - start[k]) for k in state])
    return float(torch.linalg.vector_norm(per_tensor))


def screen_norms(norms: dict[int, float], outliers: bool = True) -> dict[int, str]:
    """The updates to reject (client -> why), from their norms alone: NaN or Inf, or (with
    `outliers`) a norm far beyond the median of the finite ones (once there are three to take a
    median of). Client-level DP screens without outliers: whether one client is rejected would
    depend on the others' raw updates, beyond the clip its noise is sized for, and the reason
    would record raw norms."""
    rejected = {c: "non-finite values" for c, norm in norms.items() if not np.isfinite(norm)}
    finite = {c: norm for c, norm in norms.items() if c not in rejected}
    if outliers and len(finite) >= 3:
        median = float(np.median(list(finite.values())))
        for c, norm in finite.items():
            if median > 0 and norm > NORM_OUTLIER * median:
                rejected[c] = f"update norm {norm:.3g} > {NORM_OUTLIER:g} x median {median:.3g}"
    return rejected


def screen_updates(results: list, starts: dict, outliers: bool = True) -> tuple[list, dict[int, str]]:
    """Drop updates with NaN/Inf, or (with `outliers`) a norm far beyond the others; say why for each."""
    rejected = screen_norms({res.client: update_norm(res.state, starts[res.start]) for res in results}, outliers)
    return [res for res in results if res.client not in rejected], rejected
