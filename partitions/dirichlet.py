"""`dirichlet:ALPHA`: label skew as in Hsu, Qi and Brown 2019 (arXiv:1909.06335).

For each label, client shares are drawn from Dir(alpha) and that label's examples are dealt
out in those shares. Small alpha: each client sees few labels; large alpha: close to IID.

For NER a sentence has many tags, so its label is its dominant entity type, or `O` for a
sentence without entities (`TaskData.partition_labels`); `partitions show` reports the
resulting per-client entity-type histograms.

Usage: `DirichletPartitioner(0.5).split(labels, sites, n_clients=4, seed=0)`.
"""

from __future__ import annotations

import numpy as np

from partitions.base import Partitioner, register, resample


@register("dirichlet")
class DirichletPartitioner(Partitioner):
    takes_alpha = True

    def _split(self, labels, sites, n_clients, rng):
        classes = sorted(set(labels.tolist()))

        def draw():
            parts = [[] for _ in range(n_clients)]
            for label in classes:
                idx = rng.permutation(np.flatnonzero(labels == label))
                shares = rng.dirichlet(np.full(n_clients, self.alpha))
                cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
                for client, chunk in enumerate(np.split(idx, cuts)):
                    parts[client].extend(chunk.tolist())
            return parts

        return resample(draw, n_clients, f"dirichlet:{self.alpha:g}")
