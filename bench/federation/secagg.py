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
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from bench.seeding import stream

PRIME = 2**521 - 1  # a Mersenne prime: the Shamir field holds any 32-byte secret
SHARE_BYTES = 66  # one field element (521 bits)
KEY_BYTES = 32


class SecAggFailure(RuntimeError):
    """Too few survivors to unmask: the round's sum cannot be recovered."""


def _x25519():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    return X25519PrivateKey, X25519PublicKey


def _hkdf(secret: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def prg(seed: bytes, length: int, bits: int) -> np.ndarray:
    """A mask stream: `length` integers uniform in [0, 2^bits), from a 32-byte seed."""
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    return rng.integers(0, 2**bits, size=length, dtype=np.uint64)


def split_secret(secret: int, holders: list[int], threshold: int, rng: np.random.Generator) -> dict[int, int]:
    """Shamir shares of `secret` for each holder (evaluated at x = holder + 1)."""
    coefficients = [secret] + [int.from_bytes(rng.bytes(65), "big") % PRIME for _ in range(threshold - 1)]
    return {h: sum(c * pow(h + 1, k, PRIME) for k, c in enumerate(coefficients)) % PRIME for h in holders}


def reconstruct(shares: dict[int, int]) -> int:
    """The secret from at least `threshold` shares (Lagrange interpolation at 0)."""
    total = 0
    xs = {h: h + 1 for h in shares}
    for h, y in shares.items():
        num, den = 1, 1
        for g in shares:
            if g != h:
                num = num * (-xs[g]) % PRIME
                den = den * (xs[h] - xs[g]) % PRIME
        total = (total + y * num * pow(den, PRIME - 2, PRIME)) % PRIME
    return total


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


@dataclass
class Quantiser:
    """Fixed point mod 2^bits for weighted updates: values clipped to [-clip, clip], times the
    client's weight, times `scale`; the sum of every client's stays inside the signed range."""

    clip: float
    total_weight: float  # an upper bound on the sum of weights (public: the clients' sizes)
    bits: int = 32

    @property
    def scale(self) -> float:
        # the largest possible sum, clip x W x scale, is a quarter of the modulus: rounding can
        # never carry it past the signed range (at 2^(bits-1) - 1 exactly, it did)
        return 2.0 ** (self.bits - 2) / (self.clip * self.total_weight)

    def encode(self, values: np.ndarray, weight: float) -> np.ndarray:
        q = np.round(np.clip(values, -self.clip, self.clip) * weight * self.scale).astype(np.int64)
        return (q % 2**self.bits).astype(np.uint64)

    def decode(self, total: np.ndarray) -> np.ndarray:
        signed = total.astype(np.int64)
        signed = np.where(signed >= 2 ** (self.bits - 1), signed - 2**self.bits, signed)
        return signed / self.scale


@dataclass
class Masked:
    """What a client sends in step 3: a masked vector, uniform mod 2^bits on its own."""

    client: int
    vector: np.ndarray
    plain_bytes: int = 0  # what the same update would have been in the clear (for the overhead)
    mask_s: float = 0.0  # the client's time to quantise and mask


@dataclass
class ClientSession:
    """One client's secrets for one round; they never leave the client except as shares."""

    client: int
    private_key: bytes
    self_seed: bytes
    public_key: bytes = b""
    held_shares: dict = field(default_factory=dict)  # owner -> (share of private key, share of self seed)

    @classmethod
    def start(cls, client: int, round_: int, seed: int) -> ClientSession:
        """Fresh secrets from the client's own stream (seeded, so a run is reproducible)."""
        private_cls, _ = _x25519()
        rng = stream("secagg_client", seed, round_, client)
        key = private_cls.from_private_bytes(rng.bytes(KEY_BYTES))
        return cls(client, key.private_bytes_raw(), rng.bytes(KEY_BYTES), key.public_key().public_bytes_raw())

    def pair_seed(self, other_public: bytes, round_: int) -> bytes:
        private_cls, public_cls = _x25519()
        secret = private_cls.from_private_bytes(self.private_key).exchange(public_cls.from_public_bytes(other_public))
        return _hkdf(secret, f"fedskip-secagg round {round_}".encode())

    def mask(self, quantised: np.ndarray, peers: dict[int, bytes], round_: int, bits: int) -> Masked:
        out = (quantised + prg(self.self_seed, len(quantised), bits)) % 2**bits
        for peer, public in peers.items():
            stream = prg(self.pair_seed(public, round_), len(quantised), bits)
            out = (out + stream) % 2**bits if self.client < peer else (out + 2**bits - stream) % 2**bits
        return Masked(self.client, out.astype(np.uint64))


def pair_seed_from_private(private_key: bytes, other_public: bytes, round_: int) -> bytes:
    """The server's view after rebuilding a dropped client's private key from shares."""
    return ClientSession(-1, private_key, b"").pair_seed(other_public, round_)


def _digest(items) -> int:
    return int(hashlib.sha256(repr(items).encode()).hexdigest()[:8], 16)


@dataclass
class ClientKit:
    """What one client needs to mask its update: its own session, its neighbours' public keys
    (relayed by the server), and the layout every client agrees on."""

    session: ClientSession
    peers: dict[int, bytes]
    round_: int
    names: list[str]
    shapes: list[tuple[int, ...]]
    quantiser: Quantiser
    clip_norm: float | None = None  # client-level DP: the client clips its whole update to this L2 norm, weight 1

    def mask_update(self, update: dict, weight: float, plain_bytes: int = 0) -> Masked:
        """n_i x update, tensor by tensor (zeros for tensors this client does not train), then
        one 0/1 slot per tensor saying which it trains, so the server can average each tensor
        over exactly its holders; quantised and masked here, on the client."""
        parts = [
            np.asarray(update[n], dtype=np.float64).ravel() if n in update else np.zeros(int(np.prod(shape)))
            for n, shape in zip(self.names, self.shapes)
        ]
        t0 = time.perf_counter()
        if self.clip_norm is not None:  # DP-FedAvg's clipping happens here, on the client, before masking
            norm = float(np.sqrt(sum(float((np.asarray(v, dtype=np.float64) ** 2).sum()) for v in update.values())))
            factor = min(1.0, self.clip_norm / (norm + 1e-12))
            parts = [p * factor for p in parts]
            weight = 1.0
        held = np.array([1.0 if n in update else 0.0 for n in self.names])
        quantised = self.quantiser.encode(np.concatenate(parts + [held]), weight)
        masked = self.session.mask(quantised, self.peers, self.round_, self.quantiser.bits)
        masked.plain_bytes, masked.mask_s = plain_bytes, time.perf_counter() - t0
        return masked


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
        self.round_, self.quantiser, self.names, self.shapes, self.clip_norm = (
            round_,
            quantiser,
            names,
            shapes,
            clip_norm,
        )
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
        arrived = {m.client: m for m in masked}
        total = self.quantiser.decode(
            server_unmask(
                arrived,
                self.sessions,
                self.graph,
                self.publics,
                self.round_,
                self.threshold,
                self.quantiser.bits,
                self.length,
            )
        )
        sums, weights, at = {}, {}, 0
        for i, (name, shape) in enumerate(zip(self.names, self.shapes)):
            size = int(np.prod(shape))
            sums[name] = total[at : at + size].reshape(shape)
            weights[name] = float(total[self.length - len(self.names) + i])
            at += size
        links = sum(len(v) for v in self.graph.values())
        answered = sum(len(self.graph[c]) for c in arrived)  # step 4: one share per neighbour from each survivor
        protocol_up = (
            len(self.graph) * KEY_BYTES
            + links * 2 * SHARE_BYTES
            + answered * SHARE_BYTES
            + len(arrived) * self.length * self.quantiser.bits // 8
        )
        costs = {
            "secagg_bytes_up": protocol_up - sum(m.plain_bytes for m in arrived.values()),
            "secagg_bytes_down": links * KEY_BYTES + links * 2 * SHARE_BYTES,
        }
        return sums, weights, costs


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
