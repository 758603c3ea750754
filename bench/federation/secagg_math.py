"""The arithmetic under secure aggregation (bench.federation.secagg): Shamir sharing over
GF(2^521 - 1), the PRG mask streams, fixed point mod 2^bits for weighted updates, and the flat
layout an update travels in (its tensors in the round's order)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

PRIME = 2**521 - 1  # a Mersenne prime: the Shamir field holds any 32-byte secret
SHARE_BYTES = 66  # one field element (521 bits)


def prg(seed: bytes, length: int, bits: int) -> np.ndarray:
    """A mask stream: `length` integers uniform in [0, 2^bits), the ChaCha20 keystream of a
    32-byte seed (a cryptographic PRG: its outputs do not reveal its state), 8 bytes per value
    with the low `bits` kept (2^bits divides 2^64, so they stay uniform)."""
    keystream = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor().update(bytes(8 * length))
    return np.frombuffer(keystream, dtype="<u8") & np.uint64(2**bits - 1)


def split_secret(secret: int, holders: list[int], threshold: int) -> dict[int, int]:
    """Shamir shares of `secret` for each holder (evaluated at x = holder + 1); the polynomial's
    other coefficients are uniform over the whole field, from the operating system's entropy."""
    assert 0 <= secret < PRIME
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
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

    @property
    def held_scale(self) -> float:
        # the 0/1 "trains this tensor" slots are never clipped: their weighted sum is at most W
        return 2.0 ** (self.bits - 2) / self.total_weight

    def encode(self, values: np.ndarray, weight: float, held: np.ndarray | None = None) -> np.ndarray:
        """Update values clipped to [-clip, clip]; `held` slots (0/1, appended) on their own scale."""
        q = np.round(np.clip(values, -self.clip, self.clip) * weight * self.scale).astype(np.int64)
        if held is not None:
            q = np.concatenate([q, np.round(np.asarray(held) * weight * self.held_scale).astype(np.int64)])
        return (q % 2**self.bits).astype(np.uint64)

    def decode(self, total: np.ndarray, held: int = 0) -> np.ndarray:
        """The signed sums back in update units; the last `held` slots in weight units."""
        signed = total.astype(np.int64)
        signed = np.where(signed >= 2 ** (self.bits - 1), signed - 2**self.bits, signed)
        out = signed / self.scale
        if held:
            out[-held:] = signed[-held:] / self.held_scale
        return out


def flat_parts(update: dict, names: list[str], shapes: list) -> list[np.ndarray]:
    """An update's tensors in the layout's order, flat float64 (zeros for a tensor it lacks)."""
    return [
        np.asarray(update[n], dtype=np.float64).ravel() if n in update else np.zeros(int(np.prod(shape)))
        for n, shape in zip(names, shapes)
    ]


def unflatten(vector: np.ndarray, names: list[str], shapes: list) -> dict[str, np.ndarray]:
    """A flat vector in the layout's order back into its tensors (anything after them is left)."""
    out, at = {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        out[name] = vector[at : at + size].reshape(shape)
        at += size
    return out
