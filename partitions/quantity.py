"""`quantity:ALPHA`: quantity skew; client sizes drawn from Dir(alpha), labels IID.

Usage: `QuantityPartitioner(1.0).split(labels, sites, n_clients=4, seed=0)`.
"""

from __future__ import annotations

import numpy as np

from partitions.base import Partitioner, register, resample


@register("quantity")
class QuantityPartitioner(Partitioner):
    takes_alpha = True

    def _split(self, labels, sites, n_clients, rng):
        def draw():
            order = rng.permutation(len(labels))
            shares = rng.dirichlet(np.full(n_clients, self.alpha))
            cuts = (np.cumsum(shares)[:-1] * len(order)).astype(int)
            return np.split(order, cuts)

        return resample(draw, n_clients, f"quantity:{self.alpha:g}")
