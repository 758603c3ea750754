"""Connecting a process to Ray: the cluster at an address (`--ray-address`, else RAY_ADDRESS);
else one already running on this machine (`ray start --head`), joined as it is and named on
stderr, since Ray refuses resource arguments when it connects to one; else a cluster started
here. An address where no cluster answers is one line naming it (exit 2), not the minutes Ray
retries (here a closed port kept it retrying for over 3 minutes, a port that accepts and stays
silent for over 9): a closed or unknown one at once, any other once JOIN_SECONDS have passed."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from bench.errors import BenchError

CONNECT_SECONDS = 5.0  # a TCP connection to a cluster's head that has not opened by then is not coming
JOIN_SECONDS = 60.0  # joining a live cluster took seconds here; Ray's own retries run for minutes


def _not_the_sigterm_warning(record: logging.LogRecord) -> bool:
    """Ray's warning that a thread's ray.init sets no SIGTERM handler: _init_within sets it."""
    return not record.getMessage().startswith("SIGTERM handler is not set")


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
            _init_within(ray, JOIN_SECONDS, address=address, **quiet)
        except (ConnectionError, TimeoutError) as e:  # a port that opens but is no Ray head
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


def _init_within(ray, seconds: float, **kwargs) -> None:
    """ray.init, or TimeoutError after `seconds`: its retries cannot be cut short from outside, so
    it runs in a daemon thread, left behind when the run then ends with the error. Ray sets its
    driver's SIGTERM handler (exit, so that ray.shutdown runs) only from the main thread: set here."""
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    logging.getLogger("ray._private.worker").addFilter(_not_the_sigterm_warning)  # once: a filter is added once
    thread = threading.Thread(target=join, name="ray-connect", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"not joined within {seconds:g} s")
    if failure:
        raise failure[0]


def unreachable(address: str) -> str | None:
    """Why a TCP connection to a cluster's `host:port` (or `ray://host:port`) does not open within
    CONNECT_SECONDS, or None when it opens. Addresses Ray resolves itself ("auto", "local") pass."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:  # an IPv6 host comes bracketed ("[::1]:6379"), as Ray writes it
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except TimeoutError:
        return f"no answer in {CONNECT_SECONDS:g} s"
    except OSError as e:  # refused, no route, unknown host
        return e.strerror or type(e).__name__
    return None
