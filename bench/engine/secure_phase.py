"""The secure-aggregation phase of a round: open a SecureRound among the clients reached, unmask its sum."""

from __future__ import annotations

import time

import torch

from bench.config import ExperimentConfig
from bench.errors import BenchError
from bench.federation.comm import GLOBAL
from bench.federation.dp_ledger import DpLedger
from bench.federation.secagg import Quantiser, SecAggFailure, SecureRound


def open_round(
    cfg: ExperimentConfig, method, dp: DpLedger, r: int, reached: list, global_state: dict
) -> SecureRound | None:
    """Steps 1-2 of secure aggregation among the clients that received the model, or None. Under
    client-level DP the clients clip their updates (weight 1) and the server adds the noise to
    the unmasked sum: the server never sees a single update, but must be trusted to add noise."""
    if cfg.secagg == "off":
        return None
    if not (method.communicates and method.secure_aggregable):
        raise BenchError(f"--secagg on: method {cfg.method!r} does not aggregate a weighted mean of uploads")
    bound = float(len(reached)) if dp.client_level else float(sum(len(j.examples) for j in reached))
    quantiser = Quantiser(cfg.secagg_clip, bound, cfg.secagg_bits)
    names = list(global_state)
    return SecureRound(
        [j.client for j in reached],
        r,
        cfg.seed,
        quantiser,
        names,
        [tuple(global_state[n].shape) for n in names],
        clip_norm=dp.clip_norm,
    )


def aggregate(secure: SecureRound, states: dict, results: list, dp: DpLedger, r: int) -> tuple[dict, dict]:
    """Step 4: unmask the sum and take each tensor's weighted mean over the clients that train it
    (under client-level DP: the noisy mean over the expected K); a round without enough survivors
    changes nothing and says so."""
    t0 = time.perf_counter()
    line = {"secagg_client_s": round(sum(getattr(res.state, "mask_s", 0.0) for res in results), 3)}
    try:
        sums, weights, costs = secure.close([res.state for res in results])
    except SecAggFailure as e:  # the model stays; what was sent is counted
        return states, {**line, "secagg_failed": str(e), **getattr(e, "costs", {})}
    old = states[GLOBAL]
    if dp.client_level:  # the clients clipped before masking; the server adds the noise
        summed = {n: torch.from_numpy(sums[n]).to(old[n].dtype) for n in old}
        new = dp.noisy_mean(old, summed, r)
    else:
        new = {
            n: (old[n].float() + torch.from_numpy(sums[n] / weights[n]).float()).to(old[n].dtype)
            if weights[n] > 0.5
            else old[n]
            for n in old
        }
    return {**states, GLOBAL: new}, {**line, **costs, "secagg_server_s": round(time.perf_counter() - t0, 3)}
