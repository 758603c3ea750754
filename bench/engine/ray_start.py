"""Connecting a process to Ray: the cluster at an address; else one already running on this
machine (`ray start --head`, or RAY_ADDRESS), joined as it is, since Ray refuses resource
arguments when it connects to one; else a cluster started here."""

from __future__ import annotations


def connect(ray, address: str | None, local: dict) -> bool:
    """Connect to Ray; True when this process started the cluster (then its workers share this
    machine's files, and `local`, e.g. num_cpus, sized it)."""
    quiet = {"log_to_driver": False, "configure_logging": False}
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
    return False
