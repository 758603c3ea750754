"""`site`: the natural split, one client per hospital (or care unit).

With more clients than sites, each site gets clients in proportion to its size (at least one)
and is split IID among them. Fewer clients than sites is an error: merging hospitals would
hide the very heterogeneity this split exists to show.

Usage: `SitePartitioner().split(labels, sites, n_clients=6, seed=0)`.
"""

from __future__ import annotations

import numpy as np

from bench.data.redact import shown, shown_all
from bench.errors import BenchError
from partitions.base import MIN_CLIENT_SIZE, Partitioner, iid_split, register


def clients_per_site(sizes: dict[str, int], n_clients: int) -> dict[str, int]:
    """At least one each, the rest by largest remaining size per client (deterministic)."""
    count = {site: 1 for site in sizes}
    for _ in range(n_clients - len(sizes)):
        site = max(sorted(sizes), key=lambda s: sizes[s] / count[s])
        count[site] += 1
    return count


@register("site")
class SitePartitioner(Partitioner):
    def _split(self, labels, sites, n_clients, rng):
        names = sorted(set(sites.tolist()))
        if len(names) < 2:  # one site split IID would be an iid run under the name 'site'
            raise BenchError(
                f"partition 'site': the data has one site ({shown_all(names)}); the natural split needs two or "
                "more (hf: tasks name each example's hospital with --site-column)"
            )
        if n_clients < len(names):
            raise BenchError(
                f"partition 'site': --clients {n_clients} is fewer than the {len(names)} sites ({shown_all(names)})"
            )
        sizes = {s: int((sites == s).sum()) for s in names}
        parts = []
        for site, k in clients_per_site(sizes, n_clients).items():
            if sizes[site] < k * MIN_CLIENT_SIZE:
                raise BenchError(
                    f"partition 'site': site {shown(site)} has {sizes[site]} examples, too few for {k} clients"
                )
            parts += iid_split(np.flatnonzero(sites == site), k, rng)
        return parts
