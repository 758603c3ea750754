"""The secure-aggregation phase of a round: the server opens a SecureRound among the clients
reached; the clients, in the workers that train them (the backend is the network), draw their
secrets and exchange keys through it, mask their updates there, and answer the unmasking
request; the server unmasks only the sum."""

from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import torch

from bench.engine.sampling import poisson_clients
from bench.errors import BenchError
from bench.federation.budgets import blocks_for
from bench.federation.comm import GLOBAL
from bench.federation.lone_round import Noised
from bench.federation.secagg import Quantiser, SecAggFailure, SecureRound
from bench.federation.secagg_client import MaskLayout, Refused
from bench.federation.secagg_math import unflatten
from bench.federation.secagg_network import key_exchange, unmask
from bench.federation.secagg_transcript import NOISED, Transcript


class Withheld(Exception):
    """Under Poisson client sampling, a draw whose clients' budgets leave a tensor to fewer than
    max(2, t) of them: no one trains that round, and DP-FedAvg releases its noise alone (the
    draw and the budgets are public, so withholding says nothing about the data)."""


@dataclasses.dataclass(frozen=True)
class SecurePhase:
    """The server's round, and the public layout the clients mask to; no server round when the
    round reached one client under client-level DP (layout.lone: that client adds the noise)."""

    server: SecureRound | None
    layout: MaskLayout


def holdings(names: list[str], jobs: list, info: dict) -> dict[int, frozenset]:
    """The tensors each of the round's clients trains (a client with a layer budget: the head and
    the top blocks of its budget; the others every tensor they are sent). Public: the budgets are."""
    prefix, blocks = info.get("block_prefix"), info.get("blocks")
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.") if prefix else None

    def held(job) -> frozenset:
        if job.budget is None or not blocks or pattern is None:
            return frozenset(names)
        mine = set(blocks_for(job.budget, blocks))
        return frozenset(n for n in names if (m := pattern.match(n)) is None or int(m.group(1)) in mine)

    return {job.client: held(job) for job in jobs}


def open_round(ctx, r: int, reached: list, global_state: dict) -> SecurePhase | None:
    """Steps 1-2 of secure aggregation among the clients that received the model, or None. Under
    client-level DP the clients clip their updates (weight 1) and the server adds the noise to
    the unmasked sum: the server never sees a single update, but must be trusted to add noise;
    a round that reached one client is a lone round (bench.federation.lone_round). A tensor that
    fewer than max(2, t) of the reached clients train (by their --client-budgets) would tell the
    server about each of them: with a fixed K of N it stops the run (the budgets cannot work),
    under client-level DP's Poisson draw the round is Withheld (after dropouts or late uploads
    the round fails instead, by the server round's own check)."""
    cfg, dp = ctx.cfg, ctx.dp
    if cfg.secagg == "off":
        return None
    bound = float(len(reached)) if dp.client_level else float(sum(len(j.examples) for j in reached))
    names = list(global_state)
    layout = MaskLayout(
        names,
        [tuple(global_state[n].shape) for n in names],
        Quantiser(cfg.secagg_clip, bound, cfg.secagg_bits),
        dp.clip_norm,
    )
    if dp.client_level and len(reached) == 1:
        return SecurePhase(None, dataclasses.replace(layout, lone=dp.lone_noise(r)))
    held = holdings(names, reached, ctx.info)
    server = SecureRound(
        [j.client for j in reached],
        r,
        cfg.seed,
        layout.quantiser,
        layout.names,
        layout.shapes,
        transcript=cfg.secagg_transcript,
        holdings=held,
    )
    counts = {n: sum(n in tensors for tensors in held.values()) for n in names}
    few = [n for n, k in counts.items() if k < server.min_holders]
    if few and poisson_clients(cfg):  # this draw's clients only: another round's may cover every block
        raise Withheld(f"{len(few)} of {len(names)} tensors have fewer holders than {server.min_holders} in this draw")
    if few:
        raise BenchError(
            f"--secagg on: round {r + 1}: {len(few)} of {len(names)} tensors have fewer holders than "
            f"{server.min_holders} (max(2, threshold {server.threshold}); fewest: {min(counts.values())}); give "
            f"--client-budgets a file in which every block is trained by at least {server.min_holders} clients, or no budgets"
        )
    key_exchange(server, ctx.backend)
    return SecurePhase(server, layout)


def aggregate(ctx, secure: SecurePhase, states: dict, results: list, late: list, r: int) -> tuple[dict, dict]:
    """Steps 3-4: unmask the sum and take each tensor's weighted mean over the clients that train
    it (under client-level DP: the noisy mean over the expected K); a round without enough
    survivors changes nothing and says so."""
    t0, dp = time.perf_counter(), ctx.dp
    line = {"secagg_client_s": round(sum(getattr(res.state, "mask_s", 0.0) for res in results), 3)}
    if secure.server is None:
        states, lone = lone_aggregate(ctx, secure.layout, states, results, late, r)
        return states, {**line, **lone}
    try:
        sums, weights, costs = unmask(
            secure.server, ctx.backend, [res.state for res in results], [res.state for res in late]
        )
    except SecAggFailure as e:  # nothing is summed; what was sent is counted
        return failed_round(ctx, states, r), {**line, "secagg_failed": str(e), **getattr(e, "costs", {})}
    old = states[GLOBAL]
    if dp.client_level:  # the clients clipped before masking; the server adds the noise
        summed = {n: torch.from_numpy(sums[n]) for n in old}  # noisy_mean takes it to float32
        new = dp.noisy_mean(old, summed, r)
    else:
        new = {
            n: (old[n].float() + torch.from_numpy(sums[n] / weights[n]).float()).to(old[n].dtype)
            if weights[n] > 0.5
            else old[n]
            for n in old
        }
    return {**states, GLOBAL: new}, {**line, **costs, "secagg_server_s": round(time.perf_counter() - t0, 3)}


def failed_round(ctx, states: dict, r: int) -> dict:
    """A round without a sum: the model as it was, or under client-level DP the model plus the
    round's noise alone, as DP-FedAvg releases every round (an unchanged model would show the
    round failed, and a client's refusal of a non-finite update decides that from its data)."""
    if not ctx.dp.client_level:
        return states
    old = states[GLOBAL]
    return {**states, GLOBAL: ctx.dp.noisy_mean(old, {n: torch.zeros_like(v) for n, v in old.items()}, r)}


def lone_aggregate(ctx, layout: MaskLayout, states: dict, results: list, late: list, r: int) -> tuple[dict, dict]:
    """A lone round's end: the one client's noised upload over the expected K, no noise added
    here (it is in the upload); a late, lost or refused upload fails the round (failed_round)."""
    transcript = Transcript(ctx.cfg.secagg_transcript, r)
    for res in results + late:  # what the server received, as it received it (a refusal: empty)
        payload = res.state.vector.astype("<f4").tobytes() if isinstance(res.state, Noised) else b""
        transcript.record(NOISED, "to_server", res.client, "server", payload)
    transcript.flush()
    line = {"secagg_lone_round": True, "secagg_bytes_up": 0, "secagg_bytes_down": 0}
    arrived = [res.state for res in results if isinstance(res.state, Noised)]
    if not arrived:
        refused = [res.state.reason for res in results if isinstance(res.state, Refused)]
        why = f"its one client refused its update: {refused[0]}" if refused else "its one client sent no update in time"
        return failed_round(ctx, states, r), {**line, "secagg_failed": why}
    summed = unflatten(arrived[0].vector.astype(np.float64), layout.names, layout.shapes)
    return {**states, GLOBAL: ctx.dp.mean(states[GLOBAL], summed)}, line
