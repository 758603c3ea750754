"""What moves between server and clients, and its exact size."""

from __future__ import annotations

import torch

State = dict[str, torch.Tensor]


def tensor_bytes(state: State) -> int:
    """Payload bytes: every element of every tensor at its stored width (no pickling overhead)."""
    return sum(t.numel() * t.element_size() for t in state.values())


def detach_state(model: torch.nn.Module, names: list[str]) -> State:
    """A CPU copy of the named parameters, the form in which updates travel."""
    params = dict(model.named_parameters())
    return {n: params[n].detach().to("cpu", copy=True).contiguous() for n in names}


def load_state(model: torch.nn.Module, state: State) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))
