"""A client's side of secure aggregation (bench.federation.secagg): its round secrets, the
pairwise seeds it agrees with its neighbours (X25519 + HKDF), and masking its update."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.federation.secagg_math import Quantiser, prg
from bench.seeding import stream

KEY_BYTES = 32


def _x25519():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    return X25519PrivateKey, X25519PublicKey


def _hkdf(secret: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


@dataclass
class Masked:
    """What a client sends in step 3: a masked vector, uniform mod 2^bits on its own."""

    client: int
    vector: np.ndarray
    plain_bytes: int = 0  # what the same update would have been in the clear (for the overhead)
    mask_s: float = 0.0  # the client's time to quantise and mask


@dataclass
class Refused:
    """What a client sends instead of a masked vector when its update is not finite: a NaN cast to
    fixed point would be counted silently, with its full weight. The protocol treats it as a
    client that dropped after sharing its keys."""

    client: int
    reason: str
    plain_bytes: int = 0
    mask_s: float = 0.0


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

    def mask_update(self, update: dict, weight: float, plain_bytes: int = 0) -> Masked | Refused:
        """n_i x update, tensor by tensor (zeros for tensors this client does not train), then
        one 0/1 slot per tensor saying which it trains, so the server can average each tensor
        over exactly its holders; quantised and masked here, on the client."""
        parts = [
            np.asarray(update[n], dtype=np.float64).ravel() if n in update else np.zeros(int(np.prod(shape)))
            for n, shape in zip(self.names, self.shapes)
        ]
        t0 = time.perf_counter()
        if not all(np.isfinite(p).all() for p in parts):
            return Refused(self.session.client, "non-finite update, refused before masking")
        if self.clip_norm is not None:  # DP-FedAvg's clipping happens here, on the client, before masking
            norm = float(np.sqrt(sum(float((np.asarray(v, dtype=np.float64) ** 2).sum()) for v in update.values())))
            factor = min(1.0, self.clip_norm / (norm + 1e-12))
            parts = [p * factor for p in parts]
            weight = 1.0
        held = np.array([1.0 if n in update else 0.0 for n in self.names])
        quantised = self.quantiser.encode(np.concatenate(parts), weight, held)
        masked = self.session.mask(quantised, self.peers, self.round_, self.quantiser.bits)
        masked.plain_bytes, masked.mask_s = plain_bytes, time.perf_counter() - t0
        return masked
