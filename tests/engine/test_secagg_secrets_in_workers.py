"""Where secure aggregation's client secrets are drawn: in the worker process that trains the
client, never in the server's. README ("Who sees what"): under the local and Ray backends a
client's secrets and its training live in one process, the one `client mod workers` names.

The server here is this (pytest) process. Every way a client's round secrets come into being is
watched in it (the `drawn_here` fixture, tests/engine/conftest.py; the Ray backend's check is in
test_backends.py): X25519PrivateKey.generate (both key pairs), the `os.urandom` that
bench.federation.secagg_client draws the self-mask seed (and the share-sealing nonces) with, and
the `secrets.randbelow` that bench.federation.secagg_math draws the Shamir coefficients with.
Each draw is recorded with its process id and passed on, so a run goes on either way and a
test can say what was drawn here. The local backend's workers are forked from its fork server
(bench.engine.fork_server), a fresh interpreter started by exec: they do not inherit this
process's patches, and their draws are not recorded here. Under the serial backend the worker is
this process: that run is the positive control, showing the watch sees a client's draws when
they happen here.

Mutation check (done): with the local backend drawing the secrets itself (a ClientParties in the
server, each client's masking kit shipped to its worker with the job), the run still gives the
same numbers, and the local test fails on the draws it records.
"""

import json
import os

from bench.engine.server import run_experiment
from bench.federation.secagg_transcript import read_transcript
from tests.tiny import tiny_config

CLIENTS = 3


def _secure_round(tiny_corpus, out, **kw) -> list[dict]:
    """One round of fedavg under --secagg on (tiny-bert, 3 clients); -> the server's transcript."""
    cfg = tiny_config(
        tiny_corpus,
        clients=CLIENTS,
        train_subsample=60,
        cpus_per_worker=1,
        secagg="on",
        secagg_transcript=str(out / "transcript.jsonl"),
        **kw,
    )
    final = run_experiment(cfg, out / "run", progress=False)
    (line,) = [json.loads(x) for x in (out / "run/rounds.jsonl").read_text().splitlines()]
    assert final["status"] == "ok" and "secagg_failed" not in line and line["secagg_bytes_up"] > 0
    assert line["clients"] == list(range(CLIENTS))  # every client's masked update was summed
    return read_transcript(out / "transcript.jsonl")


def _advertised(messages: list[dict]) -> set:
    return {m["sender"] for m in messages if m["kind"] == "public_key" and m["direction"] == "to_server"}


def test_the_server_process_draws_no_clients_secret_under_the_local_backend(tiny_corpus, tmp_path, drawn_here):
    """Two worker processes run the three clients; every client advertised keys, shared them,
    masked and answered (the round summed all three), and this process drew none of it."""
    messages = _secure_round(tiny_corpus, tmp_path, backend="local", workers=2)
    assert _advertised(messages) == set(range(CLIENTS))
    assert drawn_here == [], f"client secrets drawn in the server process {os.getpid()}: {drawn_here}"


def test_the_watch_sees_secrets_drawn_in_this_process_under_the_serial_backend(tiny_corpus, tmp_path, drawn_here):
    """Positive control: with the worker in this process, every client's two key pairs, its
    self-mask seed and its Shamir coefficients are seen drawn here."""
    messages = _secure_round(tiny_corpus, tmp_path, backend="serial")
    assert _advertised(messages) == set(range(CLIENTS))
    kinds = [what for what, pid in drawn_here if pid == os.getpid()]
    assert kinds.count("x25519") == 2 * CLIENTS
    assert kinds.count("urandom") >= CLIENTS and kinds.count("shamir") > 0
