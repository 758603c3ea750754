"""A run's DP state: its plan, the accountants each round's spend is recorded in, the epsilon spent."""

from __future__ import annotations

import dataclasses

import torch

from bench.federation import dp_accounting, fixed_shape, privacy
from bench.federation.lone_round import LoneNoise
from bench.federation.privacy import DpPlan, client_level, client_rate
from bench.seeding import seed_of


def spent_epsilon(accountants: dict, dp: DpPlan | None) -> float | None:
    """The largest epsilon any accountant (a client's, or the server's) has spent so far, or any
    unit that several clients share has spent over their accountants composed."""
    if dp is None:
        return None
    alone = [dp_accounting.epsilon_of(h, dp.delta) for h in accountants.values()]
    shared = [
        dp_accounting.composed_epsilon([accountants.get(c, []) for c in holders], dp.delta)
        for holders in dp.shared_holders
    ]
    return max(alone + shared, default=0.0)


class DpLedger:
    """The DP plan of a run (None without DP) and its accountants: client (or "server") -> list
    of (sigma, rate, steps), the dict the checkpoint keeps. Under client-level DP it also draws
    the server's noise, from (seed, round)."""

    def __init__(self, cfg, plan: DpPlan | None, accountants: dict):
        self.plan = plan
        self.accountants = accountants  # filled in place: the run's checkpoint holds this dict
        self.client_level = client_level(cfg)
        self.clip_norm = plan.max_grad_norm if self.client_level else None  # what each client clips its update to
        self._rate, self._expected, self._seed = client_rate(cfg), cfg.per_round, cfg.seed

    def record(self, trained: list) -> None:
        """Record this round's privacy spend where it happened: each DP-SGD client's (sigma, rate,
        batches drawn), or the server's DP-FedAvg step at the client sampling rate."""
        if self.client_level:
            self.accountants.setdefault("server", []).append((self.plan.noise_multiplier, self._rate, 1))
        for res in trained:
            if res.dp_steps is not None:
                self.accountants.setdefault(res.client, []).append(res.dp_steps)

    def epsilon(self) -> float | None:
        """Epsilon spent so far (the most any accountant has), or None without DP."""
        return spent_epsilon(self.accountants, self.plan)

    def summary(self) -> dict | None:
        """final.json's `dp`: the plan and every accountant's history."""
        if self.plan is None:
            return None
        summary = {
            **dataclasses.asdict(self.plan),
            "shared_holders": [list(s) for s in self.plan.shared_holders],  # as final.json reads back
            "accountants": {str(k): v for k, v in self.accountants.items()},
        }
        if self.plan.fixed_length is not None:  # every client's steps can overflow: their sum bounds eta
            steps = sum(s for c, history in self.accountants.items() if c != "server" for _, _, s in history)
            summary["timing_delta"] = fixed_shape.timing_delta(self.plan.delta, self.epsilon() or 0.0, steps)
        return summary

    def fedavg(self, global_state: dict, client_states: list[dict], r: int) -> dict[str, torch.Tensor]:
        """DP-FedAvg of round r's updates (clipped, over the expected K, plus noise)."""
        return privacy.dp_fedavg(global_state, client_states, self.plan, self._expected, self._noise_seed(r))

    def noisy_mean(self, global_state: dict, summed: dict, r: int) -> dict[str, torch.Tensor]:
        """DP-FedAvg's server half on a sum of clipped updates seen only as a secure-aggregation sum."""
        return privacy.noisy_mean(global_state, summed, self.plan, self._expected, self._noise_seed(r))

    def lone_noise(self, r: int) -> LoneNoise:
        """The noise a round's only client adds under secure aggregation (bench.federation.lone_round):
        the server's own draw for the round in seeded runs, the client's OS entropy under --secure-rng."""
        std = self.plan.noise_multiplier * self.plan.max_grad_norm
        return LoneNoise(std, None if self.plan.secure_rng else self._noise_seed(r))

    def mean(self, global_state: dict, summed: dict) -> dict[str, torch.Tensor]:
        """A sum the clients already noised (a lone round), over the expected K: no noise added here."""
        return {n: v + torch.from_numpy(summed[n] / self._expected).to(v.dtype) for n, v in global_state.items()}

    def _noise_seed(self, r: int) -> int:
        return seed_of("dp_server_noise", self._seed, r)
