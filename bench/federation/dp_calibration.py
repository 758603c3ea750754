"""How much noise a DP run needs: the noise multiplier that keeps every privacy unit within
`--dp-epsilon` over the planned work (RDP accountant, as Opacus computes it), or the one given.
Sample level: calibrated for the client that needs the most noise, and for every set of clients
that share a unit (their mechanisms composed); client level: for K/N and the rounds."""

from __future__ import annotations

import functools

from bench.errors import BenchError
from bench.federation.dp_accounting import composed_epsilon
from bench.federation.privacy import DpPlan, client_level, client_rate, sample_rate, steps_per_round


@functools.lru_cache(maxsize=256)  # the same shared set and work asked again (every training client composed)
def _calibrate_composed(target: float, delta: float, work: tuple[tuple[float, int], ...], low: float) -> float:
    """The least noise multiplier (at least `low`) at which the mechanisms of `work` ((rate,
    steps) each) composed spend at most `target`, bisected as Opacus's get_noise_multiplier does."""

    def spent(sigma: float) -> float:
        return composed_epsilon([[(sigma, rate, steps)] for rate, steps in work], delta)

    if spent(low) <= target:
        return low
    high = 2 * low
    while (eps_high := spent(high)) > target:
        low, high = high, 2 * high
        if high > 1e6:
            raise BenchError(f"--dp-epsilon {target}: cannot be reached by units shared between clients")
    while target - eps_high > 0.005:
        mid = (low + high) / 2
        if (eps := spent(mid)) < target:
            high, eps_high = mid, eps
        else:
            low = mid
    return high


@functools.lru_cache(maxsize=256)  # clients of one size (an iid split) ask the same: a bisection of ~0.1 s steps
def _calibrate(target: float, delta: float, rate: float, steps: int) -> float:
    from opacus.accountants.utils import get_noise_multiplier

    try:
        return float(
            get_noise_multiplier(
                target_epsilon=target,
                target_delta=delta,
                sample_rate=rate,
                steps=steps,
                accountant="rdp",
                epsilon_tolerance=0.005,
            )
        )
    except ValueError as e:
        raise BenchError(f"--dp-epsilon {target}: cannot be reached ({e})") from None


def plan(cfg, client_rows: dict[int, int], participation: dict[int, int], shared_holders: tuple = ()) -> DpPlan | None:
    """The DP settings of a run, or None without DP.

    `client_rows[c]` is client c's number of training rows, `participation[c]` the rounds it
    is sampled in (known in advance: sampling depends only on seed and round), `shared_holders`
    the sets of clients that hold rows of one unit (bench.engine.unit_holders).
    """
    if cfg.dp_epsilon is None and cfg.noise_multiplier is None:
        return None
    if client_level(cfg):
        rate, steps = client_rate(cfg), cfg.rounds
        sigma = cfg.noise_multiplier or _calibrate(cfg.dp_epsilon, cfg.dp_delta, rate, steps)
        return DpPlan("client", sigma, cfg.client_clip, cfg.dp_delta, cfg.dp_epsilon, "client", cfg.secure_rng)
    work = {
        c: (sample_rate(n, cfg.batch_size), participation[c] * steps_per_round(n, cfg.batch_size, cfg.local_epochs))
        for c, n in client_rows.items()
        if participation.get(c, 0) > 0
    }
    if cfg.noise_multiplier is not None:
        sigma = cfg.noise_multiplier
    else:
        sigma = max(_calibrate(cfg.dp_epsilon, cfg.dp_delta, rate, steps) for rate, steps in work.values())
        for holders in shared_holders:  # a shared unit spends at each of its clients: composed
            group = tuple(work[c] for c in holders if c in work)
            if len(group) > 1:
                sigma = _calibrate_composed(cfg.dp_epsilon, cfg.dp_delta, group, sigma)
    return DpPlan(
        "sample",
        sigma,
        cfg.max_grad_norm,
        cfg.dp_delta,
        cfg.dp_epsilon,
        cfg.dp_unit,
        cfg.secure_rng,
        shared_holders,
        cfg.max_length if cfg.dp_fixed_shape else None,
        cfg.dp_unit_max_rows,
    )
