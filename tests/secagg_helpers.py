"""Secure aggregation's attacker, shared by tests/test_secagg_attack.py (which says what it
tries and why it must fail) and tests/test_secagg_randomness.py: `attack` reads a server
transcript, with colluding clients' secrets if any, and guesses each client's update;
`attack_round` runs one seeded round and attacks it."""

import itertools
import json

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.federation import secagg_client, secagg_network
from bench.federation.secagg_client import (
    KEY_BYTES,
    ClientKit,
    ClientParties,
    ClientParty,
    agreed_key,
    pair_seed_from_private,
    read_answer,
    share_header,
    unseal,
)
from bench.federation.secagg_math import SHARE_BYTES, Quantiser, prg, reconstruct
from bench.federation.secagg_network import secure_sum
from bench.federation.secagg_transcript import read_transcript, unpack_vector

DIM, BITS = 4000, 32


class Graph:
    """One round's shape: n clients, each with `degree` neighbours, `threshold` shares to open a
    secret; `late` deliver after the deadline, `dropped` never deliver."""

    def __init__(self, n: int, degree: int, threshold: int, late: set[int], dropped: set[int]):
        self.n, self.degree, self.threshold, self.late, self.dropped = n, degree, threshold, late, dropped


COMPLETE = Graph(8, 7, 4, {5}, {6})


def _consistent(shares: dict[int, int], threshold: int) -> int | None:
    """The secret, if two different threshold-sized subsets of the shares agree on it."""
    holders = sorted(shares)
    if len(holders) <= threshold:
        return None
    subsets = list(itertools.islice(itertools.combinations(holders, threshold), 2))
    values = {reconstruct({h: shares[h] for h in subset}) for subset in subsets}
    return values.pop() if len(values) == 1 else None


def _pair(plain: bytes) -> tuple[int, int]:
    """A share as sealed between two clients: (its `s` key share, its self-mask seed share)."""
    return int.from_bytes(plain[:SHARE_BYTES], "big"), int.from_bytes(plain[SHARE_BYTES:], "big")


def signed(values: np.ndarray) -> np.ndarray:
    """BITS-bit values read as two's-complement integers (a quantised update's sign back)."""
    signed = values.astype(np.int64)
    return np.where(signed >= 2 ** (BITS - 1), signed - 2**BITS, signed).astype(np.float64)


def attack(
    messages: list[dict], threshold: int, colluders: dict | None = None, length: int | None = DIM
) -> dict[int, np.ndarray]:
    """Client -> the attacker's best guess of its quantised update (its first `length` values;
    None: all, the held slots included), from the server's view, and with `colluders` (client ->
    its ClientParty) also every secret those clients hold."""
    publics = {
        m["sender"]: m["payload"] for m in messages if m["kind"] == "public_key" and m["direction"] == "to_server"
    }
    linked: dict[int, set[int]] = {}  # the graph, as the server relays it: who sends shares to whom
    for m in messages:
        if m["kind"] == "encrypted_share" and m["direction"] == "to_server":
            linked.setdefault(m["sender"], set()).add(m["receiver"])
            linked.setdefault(m["receiver"], set()).add(m["sender"])
    vectors = {m["sender"]: unpack_vector(m["payload"], BITS) for m in messages if m["kind"] == "masked_vector"}
    self_seeds, s_keys = {}, {}
    answered: dict[int, dict[int, int]] = {}
    for m in messages:  # what unmasking hands the server (survivors' seeds, dropped clients' keys)
        if m["kind"] == "unmask_response":
            for owner, share in read_answer(m["payload"]).items():
                answered.setdefault(owner, {})[m["sender"]] = share
    asked = next(m for m in messages if m["kind"] == "unmask_request")
    request = json.loads(asked["payload"])
    round_ = asked["round"] - 1  # the protocol's round (keys and headers are bound to it); lines count from 1
    for owner, shares in answered.items():  # a survivor's seed, or a dropped (or late) client's key
        secret = reconstruct(shares).to_bytes(KEY_BYTES, "big")
        (self_seeds if owner in request["survivors"] else s_keys)[owner] = secret
    opened: dict[int, dict[int, tuple[int, int]]] = {}
    for k, party in (colluders or {}).items():  # a colluder's own keys, and the shares sealed to it, opened
        s_keys[k], self_seeds[k] = party._s.private_bytes_raw(), party._self_seed
        for owner, sealed in party._held.items():
            plain = unseal(party._channel(owner), sealed, share_header(party.round_, owner, k))
            opened.setdefault(owner, {})[k] = _pair(plain)
    # colluders rebuild a key (checked against its public half) and a seed from whatever shares they
    # hold, not trusting the stated threshold: too few interpolate to a uniform field element, which
    # matches no public key and fits 32 bytes with probability 2^-265
    for owner, shares in opened.items():
        key = reconstruct({h: s[0] for h, s in shares.items()})
        raw = key.to_bytes(KEY_BYTES, "big") if key < 2 ** (8 * KEY_BYTES) else None
        if (
            raw
            and X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw() == publics[owner][KEY_BYTES:]
        ):
            s_keys.setdefault(owner, raw)
        seed = reconstruct({h: s[1] for h, s in shares.items()})
        if seed < 2 ** (8 * KEY_BYTES):
            self_seeds.setdefault(owner, seed.to_bytes(KEY_BYTES, "big"))
    for m in messages:  # the relayed shares, opened under the channel a known `s` key would agree
        if m["kind"] != "encrypted_share" or m["direction"] != "to_server":
            continue  # (the server rebuilds dropped and late clients' `s` keys; shares are sealed under `c`)
        owner, holder = m["sender"], m["receiver"]
        for known, other in ((owner, holder), (holder, owner)):
            if known not in s_keys:
                continue
            private = X25519PrivateKey.from_private_bytes(s_keys[known])
            channel = agreed_key(private, publics[other][KEY_BYTES:], "shares", round_)
            try:
                plain = unseal(channel, m["payload"], share_header(round_, owner, holder))
            except InvalidTag:
                continue
            opened.setdefault(owner, {})[holder] = _pair(plain)
    for m in messages:  # the relayed shares, read as if unsealed
        if m["kind"] == "encrypted_share" and m["direction"] == "to_server" and len(m["payload"]) >= 2 * SHARE_BYTES:
            # a share already opened above stays
            opened.setdefault(m["sender"], {}).setdefault(m["receiver"], _pair(m["payload"][: 2 * SHARE_BYTES]))
    for owner, shares in opened.items():
        key = _consistent({h: s[0] for h, s in shares.items()}, threshold)
        seed = _consistent({h: s[1] for h, s in shares.items()}, threshold)
        if key is not None and key < 2 ** (8 * KEY_BYTES):
            s_keys.setdefault(owner, key.to_bytes(KEY_BYTES, "big"))
        if seed is not None and seed < 2 ** (8 * KEY_BYTES):
            self_seeds.setdefault(owner, seed.to_bytes(KEY_BYTES, "big"))
    guesses, modulus = {}, 2**BITS
    for c, y in vectors.items():
        own = prg(self_seeds[c], len(y), BITS) if c in self_seeds else np.zeros(len(y), dtype=np.uint64)
        pairs = np.zeros(len(y), dtype=np.uint64)
        for p in linked.get(c, ()):
            if not (c in s_keys or p in s_keys):
                continue
            seed = (
                pair_seed_from_private(s_keys[c], publics[p][KEY_BYTES:], round_)
                if c in s_keys
                else pair_seed_from_private(s_keys[p], publics[c][KEY_BYTES:], round_)
            )
            stream = prg(seed, len(y), BITS)
            pairs = (pairs + stream) % modulus if c < p else (pairs + modulus - stream) % modulus
        # every combination of the masks it can compute; the right one leaves small values
        candidates = [signed((y + 2 * modulus - own * a - pairs * b) % modulus) for a in (0, 1) for b in (0, 1)]
        guesses[c] = min(candidates, key=lambda v: float(np.median(np.abs(v))))[:length]
    return guesses


def attack_round(
    tmp_path, monkeypatch, mutation: str | None, colluding: set[int] = frozenset(), graph: Graph = COMPLETE
):
    """One secure round on `graph` (a seeded update per client, its transcript in `tmp_path`),
    with `mutation` ("no_self_mask", "no_pair_masks", "no_encryption", "shares_under_s_keys") switching a protection
    off, attacked with `colluding` clients' secrets: (the attack's guesses, the true quantised
    updates). `attack` is looked up here at call time, so a test may wrap it."""
    if mutation == "no_self_mask":
        monkeypatch.setattr(ClientKit, "self_mask", lambda self, length: np.zeros(length, dtype=np.uint64))
    if mutation == "no_pair_masks":
        monkeypatch.setattr(ClientKit, "pair_masks", lambda self, length: np.zeros(length, dtype=np.uint64))
    if mutation == "shares_under_s_keys":  # the channel agreed from the keys unmasking rebuilds
        monkeypatch.setattr(
            ClientParty, "_channel", lambda self, peer: agreed_key(self._s, self._peers[peer][1], "shares", self.round_)
        )
    if mutation == "no_encryption":
        monkeypatch.setattr(secagg_client, "seal", lambda key, plain, header: plain)
        monkeypatch.setattr(secagg_client, "unseal", lambda key, sealed, header: sealed)
    n, late, dropped = graph.n, graph.late, graph.dropped
    rng = np.random.default_rng(11)
    updates = {c: rng.normal(0, 0.05, DIM) for c in range(n)}
    weights = {c: 10.0 for c in range(n)}
    quantiser = Quantiser(clip=1.0, total_weight=10.0 * n, bits=BITS)
    path = tmp_path / "transcript.jsonl"
    made: list[ClientParties] = []  # the clients' side of the round, for the colluders' secrets

    class Recorded(ClientParties):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(secagg_network, "ClientParties", Recorded)
    total, _, costs = secure_sum(
        updates,
        weights,
        quantiser,
        1,
        0,
        graph.degree,
        graph.threshold,
        drop_after_masking=dropped,
        late=late,
        transcript=str(path),
    )
    summed = sum(weights[c] * updates[c] for c in range(n) if c not in late | dropped)
    if mutation is None:  # the protocol works (a mutation may break the sum: the attack is what it checks)
        assert np.max(np.abs(total - summed)) <= n / quantiser.scale
    truth = {c: np.round(updates[c] * weights[c] * quantiser.scale) for c in range(n)}
    colluders = {k: made[0].parties[k] for k in colluding}
    return attack(read_transcript(path), costs["threshold"], colluders), truth  # the round's t: public
