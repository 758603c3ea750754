"""`iid`: equal-size random split; every client's label mix matches the whole."""

from __future__ import annotations

import numpy as np

from partitions.base import Partitioner, iid_split, register


@register("iid")
class IidPartitioner(Partitioner):
    """Usage: `IidPartitioner().split(labels, sites, n_clients=4, seed=0)`."""

    def _split(self, labels, sites, n_clients, rng):
        return iid_split(np.arange(len(labels)), n_clients, rng)
