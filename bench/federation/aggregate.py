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


class RunningMean:
    """weighted_average of updates that arrive in any order, without holding them all.

    The weights (client -> samples) are known before any update arrives. Each update is added
    once every client before it in sorted order is in, with the same float32 accumulation and
    the same alpha as weighted_average, so the mean is the same bits; only an update that
    arrived before one of its predecessors waits in memory, and only until that one is in.
    """

    def __init__(self, weights: dict[int, int]):
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("cannot aggregate updates with no samples")
        self.order = sorted(weights)
        self.alpha = {client: n / total for client, n in weights.items()}
        self.waiting: dict[int, State] = {}
        self.added = 0
        self.most_waiting = 0  # the most updates held at once (for the memory measurement)
        self.acc: State | None = None
        self.dtypes: dict[str, torch.dtype] = {}

    def add(self, client: int, state: State) -> None:
        if client not in self.alpha or client in self.waiting or client in self.order[: self.added]:
            raise ValueError(f"client {client} is not expected in this mean, or came twice")
        self.waiting[client] = state
        self.most_waiting = max(self.most_waiting, len(self.waiting))
        while self.added < len(self.order) and self.order[self.added] in self.waiting:
            client = self.order[self.added]
            state = self.waiting.pop(client)
            if self.acc is None:
                self.acc = {name: torch.zeros_like(t, dtype=torch.float32) for name, t in state.items()}
                self.dtypes = {name: t.dtype for name, t in state.items()}
            for name, acc in self.acc.items():
                acc.add_(state[name].float(), alpha=self.alpha[client])
            self.added += 1

    @property
    def complete(self) -> bool:
        return self.added == len(self.order)

    def result(self) -> State:
        if not self.complete:
            raise ValueError(f"{len(self.order) - self.added} of {len(self.order)} updates have not arrived")
        return {name: acc.to(self.dtypes[name]) for name, acc in self.acc.items()}
