"""What moves between server and clients (a job out, a result back, tensors), and its exact size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

State = dict[str, torch.Tensor]
GLOBAL = "global"


@dataclass(frozen=True)
class Job:
    """One client's local training in one round: who, on which examples, from which state."""

    client: int
    examples: np.ndarray
    start: str | int = GLOBAL
    budget: int | float | None = None  # layer budget (blocks, or a share of them); None: all


@dataclass
class Result:
    client: int
    n_samples: int
    state: State
    loss: float | None  # None under DP: computed on private data outside the mechanism
    dp_steps: tuple | None = None  # (noise multiplier, sample rate, steps) for the accountant
    train_s: float = 0.0  # seconds inside local training, for the engine-overhead measure
    start: str | int = GLOBAL  # the state this client started from (to measure its update)
    residual: State | None = None  # compressed uploads with error feedback: what the client kept back


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


def state_sha256(state: State) -> str:
    """The bits of a state (its tensors by name): two sides that end on the same digest trained
    the same weights, not only weights that score alike."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
