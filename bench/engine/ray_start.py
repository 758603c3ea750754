"""Connecting a process to Ray: the cluster at an address (`--ray-address`, else RAY_ADDRESS);
else one already running on this machine (`ray start --head`), joined as it is and named on
stderr, since Ray refuses resource arguments when it connects to one; else a cluster started
here."""

from __future__ import annotations

import os
import sys


def cluster_address(given: str | None) -> str | None:
    """The cluster address a run was given: `--ray-address`, else RAY_ADDRESS (so the two are one
    everywhere: connecting, the GPU check, the actors' CPU reservation)."""
    return given or os.environ.get("RAY_ADDRESS") or None


def connect(ray, address: str | None, local: dict) -> bool:
    """Connect to Ray; True when this process started the cluster (then its workers share this
    machine's files, and `local`, e.g. num_cpus, sized it)."""
    quiet = {"log_to_driver": False, "configure_logging": False}
    address = cluster_address(address)
    if address:
        ray.init(address=address, **quiet)
        return False
    try:
        ray.init(**quiet, **local)
        return True
    except ValueError as e:  # Ray found a running cluster and will not resize it
        if "existing cluster" not in str(e):
            raise
    ray.init(address="auto", **quiet)
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    print(f"joined the Ray cluster already running here ({nodes} node(s)); --ray-address names one", file=sys.stderr)
    return False
