"""A run started beside a Ray cluster already running (the README's `ray start --head`, then
`run_all.py --pilot --plan`) joins that cluster: named by RAY_ADDRESS it is joined at that
address; found by Ray itself (its record of a `ray start` on this machine), Ray refuses the
resource arguments a cluster started here is sized with, and the run joins it instead. RAY_ADDRESS
counts as `--ray-address` in the GPU check and the actors' CPU reservation too (the tests on a
running cluster: test_running_cluster.py)."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.tiny import tiny_config

ray = pytest.importorskip("ray")


class _RayWithACluster:
    """Ray as `ray start --head` leaves it: init with resource arguments is refused (Ray 2.60's
    message), init at "auto" joins. (Joining a test-made Cluster by "auto" runs no actors, so the
    real path was checked by hand: `ray start --head`, then an actor through connect, 2026-12-06.)"""

    def __init__(self):
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(kwargs)
        if "num_cpus" in kwargs:
            raise ValueError("When connecting to an existing cluster, num_cpus and num_gpus must not be provided.")

    def nodes(self):
        return [{"Alive": True}, {"Alive": False}]


def test_a_cluster_ray_finds_by_itself_is_joined_and_named(monkeypatch, capsys):
    from bench.engine.ray_start import connect

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _RayWithACluster()
    assert connect(fake, None, {"num_cpus": 2}) is False
    assert [c.get("address") for c in fake.calls] == [None, "auto"] and "num_cpus" not in fake.calls[1]
    assert "joined the Ray cluster already running here (1 node(s))" in capsys.readouterr().err

    class Broken(_RayWithACluster):
        def init(self, **kwargs):
            raise ValueError("some other refusal")

    with pytest.raises(ValueError, match="some other refusal"):  # only the known refusal is taken as a cluster
        connect(Broken(), None, {"num_cpus": 2})


def test_ray_address_is_the_flags_default(monkeypatch):
    """The commands read RAY_ADDRESS as their --ray-address: a grid's cells go to that cluster
    (run_all's parallel path), a single run picks the Ray backend, as with the flag."""
    import run_all
    from bench.compare.patience_check import _parser as patience_parser
    from bench.run import build_parser

    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    run = build_parser().parse_args(["--task", "i2b2-2010", "--method", "fedavg", "--out", "o"])
    assert run.ray_address == "head:6379"
    assert run_all.parser().parse_args(["--grid", "quick"]).ray_address == "head:6379"
    assert patience_parser().parse_args(["--grid", "quick", "--patience", "5"]).ray_address == "head:6379"
    assert (
        build_parser()
        .parse_args(["--task", "i2b2-2010", "--method", "fedavg", "--out", "o", "--ray-address", "other:1"])
        .ray_address
        == "other:1"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_no_cluster_answers_is_one_line_not_minutes_of_retries(monkeypatch):
    """Ray retried a closed port for over 3 minutes here, and a port that accepts and stays silent
    for over 9; a closed port is refused at once, a port that answers but is no Ray head once Ray
    says so or JOIN_SECONDS pass: each one line naming the address (exit 2)."""
    from bench.engine.ray_start import connect
    from bench.errors import BenchError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _RayWithACluster()
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(
        BenchError, match=rf"^--ray-address {address}: no Ray cluster answers there \(Connection refused\)$"
    ):
        connect(fake, address, {"num_cpus": 2})
    monkeypatch.setenv("RAY_ADDRESS", f"ray://{address}")  # the variable is the flag's default: checked alike
    with pytest.raises(BenchError, match="no Ray cluster answers there"):
        connect(fake, None, {"num_cpus": 2})
    assert fake.calls == []  # Ray was never asked

    class NotAHead(_RayWithACluster):
        def init(self, **kwargs):
            raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    with socket.socket() as listening:  # something answers, but no Ray
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        open_address = f"127.0.0.1:{listening.getsockname()[1]}"
        with pytest.raises(BenchError, match=f"--ray-address {open_address}: no Ray cluster answers there .Failed"):
            connect(NotAHead(), open_address, {})

        class Silent(_RayWithACluster):
            def init(self, **kwargs):
                threading.Event().wait(600)  # Ray's retries against a port that accepts and says nothing

        monkeypatch.setattr("bench.engine.ray_start.JOIN_SECONDS", 0.5)
        with pytest.raises(BenchError, match=rf"^--ray-address {open_address}: .*\(not joined within 0.5 s\)$"):
            connect(Silent(), open_address, {})


def test_an_ipv6_head_is_reached_as_ray_writes_it():
    from bench.engine.ray_start import unreachable

    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket(socket.AF_INET6) as listening:
        try:
            listening.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        listening.listen()
        port = listening.getsockname()[1]
        assert unreachable(f"[::1]:{port}") is None and unreachable(f"ray://[::1]:{port}") is None
    assert unreachable(f"[::1]:{port}") == "Connection refused"


def test_a_run_given_a_dead_address_exits_2_and_writes_nothing(tiny_corpus, tmp_path):
    from tests.cli import bench_run

    out = tmp_path / "out"
    proc = bench_run(
        "--task", "i2b2-2010", "--method", "fedavg", "--model", "tiny-bert", "--rounds", "1",
        "--data-dir", tiny_config(tiny_corpus).data_dir, "--out", out,
        "--ray-address", f"127.0.0.1:{_closed_port()}", check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --ray-address 127.0.0.1:")
