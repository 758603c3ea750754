"""What secure aggregation's clients receive from each other, and that it screens no update:
two claims of README.md's "## Secure aggregation and compressed uploads".

Every message a client receives passes through ClientParties.secagg (the client's side, which
a worker of every backend holds; the server and the network reach the clients only through
it). A spy on it inspects each message as it is delivered, in secure_sum's rounds (8 clients on
the complete graph, 24 on the sparse one, with a late and a dropped client) and in one engine
round (rounds.play_round: open_round, the masking, the unmasking) whose backend trains nothing
but hands each client a fixed update.

Mutation check (done, then the files restored): the network relaying each other survivor's
masked upload (its first 160 bytes, a sealed share's length) to every survivor as a share
(secagg_network.unmask) fails all three peer tests on the bytes check; secure_sum handing each
client its next peer's raw update (20 float64 values, a share's length) as a share fails the
two secure_sum tests on the bytes check; the server's unmasking request carrying survivors'
first masked values (a JSON key "hint", or a float among the dropped) fails all three on the
kind check. rounds.screen running faults.screen_norms on the masked uploads' norms under secagg
fails the screening test (the spy sees the call; the uniform norms reject no one); dropping
rounds.screen's secure branch fails it too (a TypeError: plain screening cannot read a masked
upload).
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from bench.config import ExperimentConfig
from bench.engine import faults, rounds
from bench.engine.worker import kept
from bench.federation.comm import GLOBAL, Result, tensor_bytes
from bench.federation.dp_ledger import DpLedger
from bench.federation.secagg_client import KEY_BYTES, NONCE_BYTES, ClientKit, ClientParties
from bench.federation.secagg_math import SHARE_BYTES, Quantiser
from bench.federation.secagg_network import secure_sum
from bench.registry import METHODS
from tests.secagg_helpers import COMPLETE, Graph

SEALED_BYTES = NONCE_BYTES + 2 * SHARE_BYTES + 16  # a pair of shares under ChaCha20-Poly1305 (16-byte tag)
SPARSE = Graph(24, 10, 6, {3}, {9})


def _pieces(values: np.ndarray) -> set[bytes]:
    """Every 8-byte piece of an update's usual encodings: each value as float64 or (64-bit)
    integer, each two consecutive values as float32 or 32-bit integers, little- and big-endian;
    all-zero pieces left out (a legitimate message may hold 8 zero bytes)."""
    values = np.asarray(values).ravel()
    if np.issubdtype(values.dtype, np.integer):
        forms = [values.astype("<u8"), values.astype("<i8"), values.astype("<u4"), values.astype(">u4")]
        forms += [values.astype(np.int64).astype("<i8")]
    else:
        forms = [values.astype("<f8"), values.astype(">f8"), values.astype("<f4"), values.astype(">f4")]
    out = set()
    for form in forms:
        raw = form.tobytes()
        out |= {raw[i : i + 8] for i in range(0, len(raw) - 7, form.itemsize)}
    return out - {bytes(8)}


class Watch:
    """The spy on the clients' side: each message a client receives, checked as it arrives
    against the kinds README names and every piece of every client's update known so far (its
    raw values from the start; its quantised and masked vectors once made)."""

    def __init__(self, monkeypatch, updates: dict[int, np.ndarray]):
        self.clients = set(updates)
        self.forbidden: set[bytes] = set().union(*(_pieces(u) for u in updates.values()))
        self.seen: list[tuple[str, int]] = []
        real_secagg, real_mask, real_encode = ClientParties.secagg, ClientKit.mask_update, Quantiser.encode
        watch, masking = self, []

        def secagg(parties, name, round_, per_client):
            for client, message in per_client.items():
                watch.check(name, client, message)
                watch.seen.append((name, client))
            return real_secagg(parties, name, round_, per_client)

        def mask_update(kit, *args, **kwargs):
            masking.append(kit.client)
            try:
                out = real_mask(kit, *args, **kwargs)
            finally:
                masking.pop()
            if hasattr(out, "vector"):
                watch.forbidden |= _pieces(out.vector)  # the masked upload: the server's, not a peer's
            return out

        def encode(quantiser, *args, **kwargs):
            out = real_encode(quantiser, *args, **kwargs)
            if masking:  # a client's quantised update, before its masks
                watch.forbidden |= _pieces(out)
            return out

        monkeypatch.setattr(ClientParties, "secagg", secagg)
        monkeypatch.setattr(ClientKit, "mask_update", mask_update)
        monkeypatch.setattr(Quantiser, "encode", encode)

    def check(self, name: str, client: int, message) -> None:
        where = f"step {name!r}, to client {client}"
        peers = self.clients - {client}
        if name == "advertise":  # the round starts: nothing but the call
            assert message is None, where
        elif name == "share_keys":  # its neighbours' public keys (c || s), and the threshold
            publics, threshold = message
            assert isinstance(threshold, int) and 1 <= threshold < len(self.clients), where
            assert set(publics) <= peers and all(len(k) == 2 * KEY_BYTES for k in publics.values()), where
        elif name == "receive_shares":  # the shares its neighbours sealed to it
            assert set(message) <= peers, where
            assert all(isinstance(b, bytes) and len(b) == SEALED_BYTES for b in message.values()), where
        elif name == "answer":  # the unmasking request: who survived, who dropped
            request = json.loads(message)
            assert set(request) == {"survivors", "dropped"}, where
            assert all(isinstance(c, int) and c in self.clients for c in request["survivors"] + request["dropped"])
        else:
            raise AssertionError(f"{where}: a kind of message README does not name")
        for blob in self._blobs(message, where):
            windows = {blob[i : i + 8] for i in range(len(blob) - 7)}
            assert not windows & self.forbidden, f"{where}: a piece of a client's update"

    def _blobs(self, message, where: str) -> list[bytes]:
        """The bytes in a message; no number in it but client ids and the threshold (an update's
        float values, or an array, would stop here)."""
        if message is None:
            return []
        if isinstance(message, bytes):
            return [message]
        if isinstance(message, int) and not isinstance(message, bool):
            assert 0 <= message < len(self.clients), f"{where}: the number {message}"
            return []
        assert isinstance(message, (dict, tuple, list)), f"{where}: a {type(message).__name__}"
        items = list(message.items()) if isinstance(message, dict) else [(None, v) for v in message]
        return [b for k, v in items for x in (k, v) for b in self._blobs(x, where)]

    def every_step_reached(self, clients) -> bool:
        return all((step, c) in self.seen for step in ClientParties.STEPS for c in clients)


@pytest.mark.parametrize("graph", [COMPLETE, SPARSE], ids=["complete-8", "sparse-24"])
def test_a_client_receives_keys_sealed_shares_and_requests_never_an_update(monkeypatch, graph):
    """README: "the server sees each update only masked, and other clients never receive an
    update (only the public keys and the shares sealed to them)". Every message each client of
    a secure_sum round receives is one of those kinds (and the unmasking request), holds no
    number but client ids and the threshold, and no 8 bytes of any client's raw, quantised or
    masked update; a late and a dropped client included."""
    rng = np.random.default_rng(5)
    updates = {c: rng.normal(0, 0.05, 500) for c in range(graph.n)}
    watch = Watch(monkeypatch, updates)
    quantiser = Quantiser(clip=1.0, total_weight=10.0 * graph.n)
    total, _, _ = secure_sum(
        updates,
        {c: 10.0 for c in updates},
        quantiser,
        1,
        0,
        graph.degree,
        graph.threshold,
        drop_after_masking=graph.dropped,
        late=graph.late,
    )
    summed = sum(10.0 * updates[c] for c in updates if c not in graph.late | graph.dropped)
    assert np.max(np.abs(total - summed)) <= graph.n / quantiser.scale  # the round worked
    survivors = set(updates) - graph.late - graph.dropped
    assert watch.every_step_reached(survivors)  # the spy saw each survivor's whole round


class FixedUpdates:
    """A serial backend without a model: 'training' adds each client's fixed update to its
    start; under secure aggregation the client masks it with its own kit, as bench.engine.worker
    does. The clients' side of secure aggregation is a real ClientParties."""

    def __init__(self, updates: dict[int, dict[str, np.ndarray]]):
        self.updates, self.parties = updates, ClientParties()

    def train(self, states, jobs, round_, residuals=None, secure=None, receive=kept):
        results = []
        for job in jobs:
            start, update = states[job.start], self.updates[job.client]
            state = {k: start[k] + torch.from_numpy(update[k]).float() for k in start}
            if secure is not None:
                state = self.parties.kit(job.client, secure).mask_update(update, len(job.examples), tensor_bytes(state))
            results.append(receive(Result(job.client, len(job.examples), state, 0.1, start=job.start)))
        return sorted(results, key=lambda r: r.client), set()

    def secagg(self, step, round_, per_client):
        return self.parties.secagg(step, round_, per_client)

    def evaluate_many(self, requests):
        return [{"metric": 0.0, "eval_s": 0.0} for _ in requests]


def _engine_round(updates: dict[int, dict[str, np.ndarray]], secagg: str) -> tuple[dict, dict]:
    """One round of rounds.play_round (fedavg, every client, 10 examples each) from a zero model;
    -> (the new global state, the round line)."""
    n = len(updates)
    cfg = ExperimentConfig(task="i2b2-2010", method="fedavg", model="tiny-bert", clients=n, rounds=1, secagg=secagg)
    task = types.SimpleNamespace(clients=[np.arange(10 * c, 10 * c + 10) for c in range(n)])
    backend = FixedUpdates(updates)
    ctx = rounds.RoundContext(cfg, METHODS.get("fedavg")(cfg), backend, task, DpLedger(cfg, None, {}), {})
    start = {k: torch.zeros(v.shape) for k, v in updates[0].items()}
    states, line = rounds.play_round(0, ctx, {GLOBAL: start})
    return states[GLOBAL], line


def _layer_updates(n: int, scale: dict[int, float] | None = None) -> dict[int, dict[str, np.ndarray]]:
    rng = np.random.default_rng(9)
    return {
        c: {k: (scale or {}).get(c, 1.0) * rng.normal(0, 1e-3, shape) for k, shape in (("w", (6, 5)), ("b", (5,)))}
        for c in range(n)
    }


def test_in_an_engine_round_a_client_receives_no_update_either(monkeypatch):
    """The same README claim through the engine's round (secure_phase opens the round and
    unmasks through the backend, as with real workers): every message the clients receive
    passes the same checks, and the round's mean is the clients' (it worked)."""
    updates = _layer_updates(5)
    watch = Watch(monkeypatch, {c: np.concatenate([u["w"].ravel(), u["b"]]) for c, u in updates.items()})
    new, line = _engine_round(updates, "on")
    assert "secagg_failed" not in line and watch.every_step_reached(range(5))
    mean = {k: sum(u[k] for u in updates.values()) / 5 for k in ("w", "b")}
    assert all(np.allclose(new[k].numpy(), mean[k], atol=1e-6) for k in mean)


def _spy_screening(monkeypatch) -> list[str]:
    calls = []
    for name in ("screen_norms", "screen_updates"):
        real = getattr(faults, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(faults, name, spy)
    return calls


def test_outlier_screening_is_off_under_secure_aggregation(monkeypatch):
    """README: "Outlier screening is off under secagg (no single update is visible)." One engine
    round of 4 clients where client 0's update is 100x the others' (norm far beyond
    faults.NORM_OUTLIER x the median): under secagg nothing is rejected, no screening function
    is called, and the mean includes client 0's update. Positive control: the same round without
    secagg calls the screening and rejects client 0."""
    updates = _layer_updates(4, {0: 100.0})
    calls = _spy_screening(monkeypatch)
    new, line = _engine_round(updates, "on")
    assert line["rejected"] == {} and calls == [] and "secagg_failed" not in line
    assert line["clients"] == [0, 1, 2, 3]
    mean = {k: sum(u[k] for u in updates.values()) / 4 for k in ("w", "b")}
    assert all(np.allclose(new[k].numpy(), mean[k], atol=1e-6) for k in mean)

    _, plain = _engine_round(updates, "off")
    assert calls and list(plain["rejected"]) == ["0"] and "x median" in plain["rejected"]["0"]
