"""`local`: the lower bound. Each client trains alone on its own data in the rounds it is sampled
in (as it would take part in federated training); nothing moves. The round's metric is the mean
of every client's model's scores (a client not yet sampled scores the initial model).
"""

from __future__ import annotations

from baselines.base import GLOBAL, Job, Method, register


@register("local")
class Local(Method):
    communicates = False
    streams_mean = False  # every client keeps its own state

    def round_jobs(self, clients, sampled):
        return [Job(c, clients[c], start=c) for c in sampled]

    def combine(self, states, results):
        # Every client starts from the global initial state (the server's fallback) and keeps its own after.
        untrained = {c: states[GLOBAL] for c in range(self.cfg.clients) if c not in states}
        return {**untrained, **states, **{r.client: r.state for r in results}}

    def eval_keys(self, states):
        return sorted(k for k in states if k != GLOBAL)

    def client_key(self, client):
        return client
