"""`local`: the lower bound. Each client trains alone on its own data for the same number of
rounds; nothing moves. The round's metric is the mean of the client models' test scores.
"""

from __future__ import annotations

from baselines.base import GLOBAL, Job, Method, register


@register("local")
class Local(Method):
    communicates = False

    def round_jobs(self, clients, sampled):
        return [Job(c, clients[c], start=c) for c in range(len(clients))]

    def combine(self, states, results):
        # Round 0 starts every client from the global initial state (the server's fallback).
        return {**states, **{r.client: r.state for r in results}}

    def eval_keys(self, states):
        return sorted(k for k in states if k != GLOBAL)

    def client_key(self, client):
        return client
