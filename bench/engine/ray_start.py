"""Connecting a process to Ray: the cluster at an address (`--ray-address`, else RAY_ADDRESS);
else one already running on this machine (`ray start --head`), joined as it is and named on
stderr, since Ray refuses resource arguments when it connects to one; else a cluster started
here. An address where no cluster answers is one line naming it (exit 2), not the minutes Ray
retries: a closed port took Ray over 3 minutes here, a silent host 20 s of retries."""

from __future__ import annotations

import os
import socket
import sys

from bench.errors import BenchError

CONNECT_SECONDS = 5.0  # a TCP connection to a cluster's head that has not opened by then is not coming


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
        if why := unreachable(address):
            raise BenchError(f"--ray-address {address}: no Ray cluster answers there ({why})")
        try:
            ray.init(address=address, **quiet)
        except ConnectionError as e:  # a port that opens but is no Ray head: Ray's retries end here
            raise BenchError(f"--ray-address {address}: no Ray cluster answers there ({e})") from e
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


def unreachable(address: str) -> str | None:
    """Why a TCP connection to a cluster's `host:port` (or `ray://host:port`) does not open within
    CONNECT_SECONDS, or None when it opens. Addresses Ray resolves itself ("auto", "local") pass."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except TimeoutError:
        return f"no answer in {CONNECT_SECONDS:g} s"
    except OSError as e:  # refused, no route, unknown host
        return e.strerror or type(e).__name__
    return None
