"""Secure aggregation after Bonawitz et al. 2017 ("Practical Secure Aggregation for Privacy-
Preserving Machine Learning") with SecAgg+'s sparse neighbour graph (Bell et al. 2020).

What each party sees: a client sees its own update and the public keys and secret shares it
is given; the server sees public keys, encrypted-in-transit shares (here: share bytes, counted),
masked vectors (uniform mod 2^bits on their own) and, after unmasking, only their sum.

Steps, per round, for clients that advertise keys:
1. Each client draws an X25519 key pair and a self-mask seed, and sends its public key.
2. Each client Shamir-shares its private key and its self-mask seed among its neighbours
   (threshold t over GF(2^521 - 1)).
3. A client quantises n_i x update (and n_i itself) to fixed point mod 2^bits, adds the PRG
   stream of its self-mask seed and, for every neighbour j, +/- the PRG stream of HKDF(X25519
   shared secret), + if i < j and - otherwise, and sends that masked vector.
4. The server asks the survivors for shares: of each survivor's self-mask seed (to remove its
   self mask) and of each dropped neighbour's private key (to rebuild and remove the pairwise
   masks that dropped client left in its neighbours' vectors). With fewer than t survivors
   holding shares of someone, the round fails (SecAggFailure).
Pairwise masks of two survivors cancel in the sum. Quantisation error per element of the
weighted sum is at most (clients / 2) / scale, with scale = 2^(bits-2) / (clip x W) and W
the bound on the total weight.

This module holds the round (the graph, SecureRound, the server's unmasking); the arithmetic is
in secagg_math and the client's side in secagg_client, both re-exported here.
"""

from __future__ import annotations

import hashlib

import numpy as np

from bench.federation.secagg_client import KEY_BYTES, ClientKit, ClientSession, Masked, pair_seed_from_private
from bench.federation.secagg_math import PRIME, SHARE_BYTES, Quantiser, prg, reconstruct, split_secret
from bench.seeding import stream

# callers import the protocol's names from here, wherever they are defined
__all__ = [
    "KEY_BYTES",
    "PRIME",
    "SHARE_BYTES",
    "ClientKit",
    "ClientSession",
    "Masked",
    "Quantiser",
    "SecAggFailure",
    "SecureRound",
    "neighbours",
    "pair_seed_from_private",
    "prg",
    "reconstruct",
    "secure_sum",
    "server_unmask",
    "split_secret",
]


class SecAggFailure(RuntimeError):
    """Too few survivors to unmask: the round's sum cannot be recovered."""


def neighbours(clients: list[int], degree: int, seed: int) -> dict[int, list[int]]:
    """SecAgg+'s graph: clients on a seeded random ring, each linked to `degree` // 2 on either
    side (everyone, when the degree reaches n - 1)."""
    order = stream("secagg_graph", seed).permutation(clients).tolist()
    n = len(order)
    if degree >= n - 1:
        return {c: [d for d in clients if d != c] for c in clients}
    half = max(1, degree // 2)
    links: dict[int, set[int]] = {c: set() for c in clients}
    for i, c in enumerate(order):
        for step in range(1, half + 1):
            d = order[(i + step) % n]
            links[c].add(d)
            links[d].add(c)
    return {c: sorted(v) for c, v in links.items()}


def _digest(items) -> int:
    return int(hashlib.sha256(repr(items).encode()).hexdigest()[:8], 16)


class SecureRound:
    """One round of the protocol among the clients that received the model. Steps 1-2 (keys and
    shares) happen at `open`; each client masks with its kit (step 3); `close` unmasks the sum of
    whatever masked vectors arrived (step 4) and returns the per-tensor weighted means."""

    def __init__(
        self,
        clients: list[int],
        round_: int,
        seed: int,
        quantiser: Quantiser,
        names: list[str],
        shapes: list[tuple[int, ...]],
        degree: int | None = None,
        threshold: int | None = None,
        clip_norm: float | None = None,
    ):
        self.round_, self.quantiser, self.clip_norm = round_, quantiser, clip_norm
        self.names, self.shapes = names, shapes
        n = len(clients)
        self.degree = min(n - 1, degree or max(8, 2 * int(np.ceil(np.log2(max(n, 2))))))
        self.threshold = threshold or self.degree // 2 + 1  # default: a majority of each client's neighbours
        self.graph = neighbours(clients, self.degree, _digest((seed, round_)))
        self.sessions = {c: ClientSession.start(c, round_, seed) for c in clients}  # each client's own secrets
        self.publics = {c: s.public_key for c, s in self.sessions.items()}  # step 1: relayed by the server
        rng = stream("secagg_shares", seed, round_)
        for c, s in self.sessions.items():  # step 2: shares to neighbours, relayed by the server
            key_shares = split_secret(int.from_bytes(s.private_key, "big"), self.graph[c], self.threshold, rng)
            seed_shares = split_secret(int.from_bytes(s.self_seed, "big"), self.graph[c], self.threshold, rng)
            for holder in self.graph[c]:
                self.sessions[holder].held_shares[c] = (key_shares[holder], seed_shares[holder])
        self.length = sum(int(np.prod(s)) for s in shapes) + len(names)

    def kit(self, client: int) -> ClientKit:
        return ClientKit(
            self.sessions[client],
            {p: self.publics[p] for p in self.graph[client]},
            self.round_,
            self.names,
            self.shapes,
            self.quantiser,
            self.clip_norm,
        )

    def close(self, masked: list[Masked]) -> tuple[dict[str, np.ndarray], dict[str, float], dict]:
        """(tensor -> summed weighted update, tensor -> summed weight, costs); SecAggFailure when
        too few survivors hold shares."""
        arrived = {m.client: m for m in masked if isinstance(m, Masked)}  # a Refused client counts as dropped
        try:
            unmasked = server_unmask(
                arrived,
                self.sessions,
                self.graph,
                self.publics,
                self.round_,
                self.threshold,
                self.quantiser.bits,
                self.length,
            )
        except SecAggFailure as e:  # keys, shares and masked vectors were sent all the same
            e.costs = self._costs(arrived, answered=False)
            raise
        total = self.quantiser.decode(unmasked, held=len(self.names))
        sums, weights, at = {}, {}, 0
        for i, (name, shape) in enumerate(zip(self.names, self.shapes)):
            size = int(np.prod(shape))
            sums[name] = total[at : at + size].reshape(shape)
            weights[name] = float(total[self.length - len(self.names) + i])
            at += size
        return sums, weights, self._costs(arrived, answered=True)

    def _costs(self, arrived: dict, answered: bool) -> dict:
        """The protocol's bytes beyond the plain updates: keys, shares, masked vectors (and, when the
        round got that far, the survivors' unmasking answers)."""
        links = sum(len(v) for v in self.graph.values())
        answers = sum(len(self.graph[c]) for c in arrived) if answered else 0  # one share per neighbour
        protocol_up = (
            len(self.graph) * KEY_BYTES
            + links * 2 * SHARE_BYTES
            + answers * SHARE_BYTES
            + len(arrived) * self.length * self.quantiser.bits // 8
        )
        return {
            "secagg_bytes_up": protocol_up - sum(m.plain_bytes for m in arrived.values()),
            "secagg_bytes_down": links * KEY_BYTES + links * 2 * SHARE_BYTES,
        }


def secure_sum(
    updates: dict[int, np.ndarray],
    weights: dict[int, float],
    quantiser: Quantiser,
    round_: int,
    seed: int,
    degree: int,
    threshold: int | None = None,
    drop_after_masking: set[int] = frozenset(),
) -> tuple[np.ndarray, float, dict]:
    """The protocol on plain vectors: those in `drop_after_masking` share keys but never deliver.
    Returns (the weighted sum, the summed weight, costs) or raises SecAggFailure."""
    dim = len(next(iter(updates.values())))
    secure = SecureRound(sorted(updates), round_, seed, quantiser, ["v"], [(dim,)], degree, threshold)
    masked = [
        secure.kit(c).mask_update({"v": updates[c]}, weights[c]) for c in sorted(updates) if c not in drop_after_masking
    ]
    sums, held, costs = secure.close(masked)
    return sums["v"], held["v"], {**costs, "threshold": secure.threshold}


def server_unmask(
    masked: dict[int, Masked],
    sessions: dict,
    graph: dict,
    publics: dict,
    round_: int,
    threshold: int,
    bits: int,
    length: int,
) -> np.ndarray:
    """Step 4 on the server: sum the masked vectors, then remove the survivors' self masks and
    the dropped clients' pairwise masks from shares the survivors hand in."""
    assert all(isinstance(m, Masked) for m in masked.values()), (
        "secure aggregation: the server takes masked vectors only"
    )
    survivors = sorted(masked)
    dropped = sorted(set(graph) - set(masked))
    total = np.zeros(length, dtype=np.uint64)
    for m in masked.values():
        total = (total + m.vector) % 2**bits
    for c in survivors + dropped:
        shares = {h: sessions[h].held_shares[c] for h in graph[c] if h in masked}
        if len(shares) < threshold:
            raise SecAggFailure(f"client {c}: {len(shares)} surviving neighbours hold shares, {threshold} needed")
        if c in masked:  # a survivor: its self mask goes
            seed = reconstruct({h: s[1] for h, s in shares.items()}).to_bytes(KEY_BYTES, "big")
            total = (total + 2**bits - prg(seed, length, bits)) % 2**bits
        else:  # dropped after sharing: its pairwise masks with survivors go
            private = reconstruct({h: s[0] for h, s in shares.items()}).to_bytes(KEY_BYTES, "big")
            for peer in graph[c]:
                if peer not in masked:
                    continue
                stream = prg(pair_seed_from_private(private, publics[peer], round_), length, bits)
                # peer added -stream if peer > c (c < peer means c added +, peer added -)
                total = (total + stream) % 2**bits if c < peer else (total + 2**bits - stream) % 2**bits
    return total
