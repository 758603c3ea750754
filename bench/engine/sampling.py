"""Who trains in which round: client sampling from (seed, round), and the work it plans."""

from __future__ import annotations

import numpy as np

from bench.config import ExperimentConfig
from bench.federation.dp_ledger import client_level, client_rate
from bench.seeding import secret_stream, stream


def poisson_clients(cfg: ExperimentConfig) -> bool:
    """Client-level DP is accounted for Poisson sampling, so clients are drawn that way under it."""
    return client_level(cfg) and cfg.per_round < cfg.clients


def sample_clients(cfg: ExperimentConfig, round_: int) -> list[int]:
    """Clients for this round, from (seed, round) alone so a resumed run samples the same: K of
    N without replacement, or, under client-level DP, each client with probability K/N (the
    sampling its accountant assumes; a round may then have any number of clients, even none;
    from OS entropy under --secure-rng, so a resumed round draws anew)."""
    rng = stream("client_sampling", cfg.seed, round_)
    if poisson_clients(cfg):
        # amplification by sampling assumes the sample is secret: under --secure-rng not from the seed
        draw = secret_stream() if cfg.secure_rng else rng
        return np.flatnonzero(draw.random(cfg.clients) < client_rate(cfg)).tolist()
    return sorted(rng.choice(cfg.clients, size=cfg.per_round, replace=False).tolist())


def planned_work(cfg: ExperimentConfig, method, task) -> tuple[dict[int, int], dict[int, int], dict]:
    """Each training client's rows, the rounds it will train in and its examples (for DP
    calibration; a pooled method's one job holds every client's examples)."""
    rows, rounds, examples = {}, {}, {}
    for r in range(cfg.rounds):
        for job in method.round_jobs(task.clients, sample_clients(cfg, r)):
            rows[job.client] = len(task.train.rows(job.examples))
            rounds[job.client] = rounds.get(job.client, 0) + 1
            examples[job.client] = job.examples
    return rows, rounds, examples
