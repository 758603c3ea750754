"""Server-side aggregation as short pure functions over tensors (after Flower's aggregate.py)."""

from __future__ import annotations

import torch

State = dict[str, torch.Tensor]


def weighted_average(updates: list[tuple[int, State]]) -> State:
    """Mean of each tensor weighted by sample count, accumulated in float32 (whatever the
    training dtype) in the given (sorted) order, so the result is the same on every backend."""
    total = sum(n for n, _ in updates)
    if total <= 0:
        raise ValueError("cannot aggregate updates with no samples")
    out = {}
    for name, first in updates[0][1].items():
        acc = torch.zeros_like(first, dtype=torch.float32)
        for n, state in updates:
            acc.add_(state[name].float(), alpha=n / total)
        out[name] = acc.to(first.dtype)
    return out


def weighted_average_partial(previous: State, updates: list[tuple[int, State]]) -> State:
    """Per tensor, the sample-weighted mean over exactly the updates that carry it; a tensor no
    client sent keeps its previous value (clients with smaller layer budgets send fewer)."""
    out = {}
    for name, old in previous.items():
        carriers = [(n, state) for n, state in updates if name in state]
        out[name] = weighted_average([(n, {name: s[name]}) for n, s in carriers])[name] if carriers else old
    return out
