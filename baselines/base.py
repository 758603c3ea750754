"""What a method is: which parameters train (and so move), the local objective, and how the
server combines updates. The base class is FedAvg; a new method overrides one hook.

The server keeps a dict of states: `"global"` for federated methods, one per client for
`local`. A round is: `round_jobs` says which clients train from which state, clients train,
`combine` folds their results back in.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.config import ExperimentConfig
from bench.errors import BenchError
from bench.federation.aggregate import weighted_average
from bench.federation.comm import GLOBAL, Job, Result, State
from bench.model.layers import LayerMap
from bench.registry import METHODS


class Method:
    """FedAvg (McMahan et al. 2017): every parameter trains and moves; sample-weighted mean."""

    name = ""
    # for single runs without --lr; grids choose every method's lr on validation (bench.protocol.tuning):
    # on the quick grid fedavg got 3e-4 on i2b2-2010 (bench/grids/tuned/quick.yaml)
    default_lr = 1e-4
    communicates = True
    partition_free = False  # True: pools every client's data, so the partition changes nothing
    supports_budgets = False  # True: honours per-client layer budgets (--client-budgets)
    added_param_markers: tuple[str, ...] = ()  # names of parameters the method adds (not the base model's)
    secure_aggregable = True  # combine is a per-tensor sample-weighted mean, which secure aggregation can compute
    streams_mean = True  # combine is weighted_average of every result: the server may sum updates as they arrive

    def __init_subclass__(cls, **kwargs):
        """A class that writes its own `combine` is taken not to be the weighted mean unless it
        says so: streaming, secure aggregation and DP-FedAvg compute the mean themselves and
        would skip its combine (a median or server-momentum baseline would run as FedAvg)."""
        super().__init_subclass__(**kwargs)
        if "combine" in cls.__dict__:
            for flag in ("secure_aggregable", "streams_mean"):
                if flag not in cls.__dict__:
                    setattr(cls, flag, False)

    def __init__(self, cfg: ExperimentConfig):
        if cfg.client_budgets is not None and not self.supports_budgets:
            raise BenchError(f"client_budgets: method {cfg.method!r} has no per-client layer budgets")
        self.cfg = cfg

    def resolve(self, task) -> tuple[ExperimentConfig, dict | None]:
        """Settings decided from the training data before the first round (e.g. a probe that
        picks layers); returns the config to train with and what was decided, for final.json."""
        return self.cfg, None

    # -- which parameters train (and so move) -------------------------------------------
    def configure(self, model: nn.Module, layers: LayerMap) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def describe(self) -> dict:
        """Extra facts for final.json (e.g. the chosen blocks)."""
        return {}

    # -- the local objective --------------------------------------------------------------
    def penalty(self, model: nn.Module, start: State) -> torch.Tensor | None:
        return None

    # -- the round structure ----------------------------------------------------------------
    def round_jobs(self, clients: list[np.ndarray], sampled: list[int]) -> list[Job]:
        return [Job(c, clients[c]) for c in sampled]

    def combine(self, states: dict, results: list[Result]) -> dict:
        return {GLOBAL: weighted_average([(r.n_samples, r.state) for r in results])}

    def eval_keys(self, states: dict) -> list:
        """The states whose test scores are averaged into the round's metric."""
        return [GLOBAL]

    def client_key(self, client: int) -> str | int:
        """The state a client is scored with on its own held-out slice."""
        return GLOBAL

    # -- cost, for plans made before anything runs (bench.protocol.plan) ------------------------------
    def train_flops_per_token(self, shape) -> float:
        """Forward (2 x params) and backward (4 x params: activations and weights) everywhere."""
        return 6.0 * shape.compute_params

    def trainable_params(self, shape) -> int:
        return shape.total_params

    def activation_blocks(self, shape) -> int:
        """Blocks whose activations a training step keeps for its backward pass: all of them
        when the gradient must reach the lowest block (every parameter, or adapters in every block)."""
        return shape.n_blocks


register = METHODS.register_class
