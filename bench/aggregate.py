"""Server-side aggregation as short pure functions over tensors (after Flower's aggregate.py)."""

from __future__ import annotations

import torch

State = dict[str, torch.Tensor]


def weighted_average(updates: list[tuple[int, State]]) -> State:
    """Mean of each tensor weighted by sample count, summed in the given (sorted) order."""
    total = sum(n for n, _ in updates)
    if total <= 0:
        raise ValueError("cannot aggregate updates with no samples")
    names = updates[0][1].keys()
    return {name: sum((n / total) * state[name].double() for n, state in updates).to(updates[0][1][name].dtype) for name in names}


def weighted_average_partial(previous: State, updates: list[tuple[int, State]]) -> State:
    """Per tensor, the sample-weighted mean over exactly the updates that carry it; a tensor no
    client sent keeps its previous value (clients with smaller layer budgets send fewer)."""
    out = {}
    for name, old in previous.items():
        carriers = [(n, state) for n, state in updates if name in state]
        out[name] = weighted_average([(n, {name: s[name]}) for n, s in carriers])[name] if carriers else old
    return out
