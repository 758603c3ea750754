"""A client's side of secure aggregation (bench.federation.secagg): its round secrets, drawn from
the operating system's entropy and held only here; the shares it seals for its neighbours; the
seeds it masks with; its answers to the server's unmasking request.

Two X25519 key pairs per client and round, as in Bonawitz et al.: `c` agrees the keys that seal
shares between two clients (ChaCha20-Poly1305 under HKDF(X25519)), `s` agrees the pairwise mask
seeds. Only `s` is ever rebuilt by the server (for a client that dropped), so the shares sealed
under `c` stay sealed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bench.federation.secagg_math import PRIME, SHARE_BYTES, Quantiser, flat_parts, prg, split_secret

KEY_BYTES = 32
NONCE_BYTES = 12
OWNER_BYTES = 4  # a client id in an unmasking answer


def agreed_key(private: X25519PrivateKey, other_public: bytes, purpose: str, round_: int) -> bytes:
    """HKDF(X25519(own private, other's public)): the same 32 bytes on both ends."""
    secret = private.exchange(X25519PublicKey.from_public_bytes(other_public))
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"fedskip-secagg {purpose} {round_}".encode()
    ).derive(secret)


def pair_seed_from_private(private_key: bytes, other_public: bytes, round_: int) -> bytes:
    """A pairwise mask seed from one end's raw `s` private key (the server's view after rebuilding
    a dropped client's key from shares)."""
    return agreed_key(X25519PrivateKey.from_private_bytes(private_key), other_public, "masks", round_)


def seal(key: bytes, plaintext: bytes, header: bytes) -> bytes:
    """Authenticated encryption: nonce || ChaCha20-Poly1305(plaintext), bound to the header."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, header)


def unseal(key: bytes, sealed: bytes, header: bytes) -> bytes:
    return ChaCha20Poly1305(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], header)


def share_header(round_: int, owner: int, holder: int) -> bytes:
    return f"share {round_} {owner}->{holder}".encode()


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


class ClientParty:
    """One client's secrets for one round, from os.urandom / X25519PrivateKey.generate: never
    derived from the run's seed, never handed to a server object. Masks cancel exactly, so the
    run's numbers do not depend on them."""

    def __init__(self, client: int, round_: int):
        self.client, self.round_ = client, round_
        self._c = X25519PrivateKey.generate()  # seals shares
        self._s = X25519PrivateKey.generate()  # agrees pairwise masks
        self._self_seed = os.urandom(KEY_BYTES)
        self._peers: dict[int, tuple[bytes, bytes]] = {}  # neighbour -> (c public, s public)
        self._held: dict[int, bytes] = {}  # owner -> the sealed shares it sent this client
        self._threshold: int | None = None  # fixed when it shares its keys, not taken from a later request
        self._answered: bytes | None = None  # the one unmasking request it answers this round

    def advertise(self) -> bytes:
        """Step 1: the two public keys (c || s)."""
        return self._c.public_key().public_bytes_raw() + self._s.public_key().public_bytes_raw()

    def share_keys(self, publics: dict[int, bytes], threshold: int) -> dict[int, bytes]:
        """Step 2: Shamir shares of the `s` private key and the self-mask seed, one sealed
        message per neighbour (only that neighbour can open it)."""
        self._peers = {p: (key[:KEY_BYTES], key[KEY_BYTES:]) for p, key in publics.items()}
        self._threshold = threshold
        holders = sorted(self._peers)
        key_shares = split_secret(int.from_bytes(self._s.private_bytes_raw(), "big"), holders, threshold)
        seed_shares = split_secret(int.from_bytes(self._self_seed, "big"), holders, threshold)
        return {
            h: seal(
                self._channel(h),
                key_shares[h].to_bytes(SHARE_BYTES, "big") + seed_shares[h].to_bytes(SHARE_BYTES, "big"),
                share_header(self.round_, self.client, h),
            )
            for h in holders
        }

    def receive_shares(self, sealed: dict[int, bytes]) -> None:
        self._held = dict(sealed)

    def kit(self, names: list[str], shapes: list, quantiser: Quantiser, clip_norm: float | None) -> ClientKit:
        """What the worker that trains this client needs to mask its update: the self-mask seed
        and the pairwise seeds with their signs (+ towards higher ids), never a private key."""
        pairs = {
            p: (
                pair_seed_from_private(self._s.private_bytes_raw(), s_public, self.round_),
                1 if self.client < p else -1,
            )
            for p, (_, s_public) in self._peers.items()
        }
        return ClientKit(self.client, self._self_seed, pairs, names, shapes, quantiser, clip_norm)

    def answer(self, request: bytes) -> bytes:
        """Step 4: for each neighbour it holds shares of, the self-mask seed share of a survivor
        or the key share of a dropped client, never both to one request. It answers one request a
        round, only one that names it a survivor, accounts for each of its neighbours (survivor or
        dropped, not both) and names at least the threshold it shared with among itself and its
        neighbours. A server that sends different lists to different clients is not caught here
        (Bonawitz et al.'s signed consistency round is not implemented: an honest-but-curious
        server follows the protocol)."""
        asked = json.loads(request)
        survivors, dropped = set(asked["survivors"]), set(asked["dropped"])
        known = set(self._peers) | {self.client}
        if (
            (self._answered is not None and request != self._answered)
            or self._threshold is None
            or self.client not in survivors
            or survivors & dropped
            or not known <= survivors | dropped
            or len(survivors & known) < self._threshold
        ):
            raise ValueError(f"client {self.client}: an unmasking request that could reveal an update, refused")
        self._answered = request
        out = b""
        for owner in sorted(self._held):
            if owner not in survivors | dropped:
                continue
            plain = unseal(self._channel(owner), self._held[owner], share_header(self.round_, owner, self.client))
            share = plain[SHARE_BYTES:] if owner in survivors else plain[:SHARE_BYTES]
            out += owner.to_bytes(OWNER_BYTES, "little") + share
        return out

    def _channel(self, peer: int) -> bytes:
        return agreed_key(self._c, self._peers[peer][0], "shares", self.round_)


def read_answer(payload: bytes) -> dict[int, int]:
    """An unmasking answer as the server reads it: owner -> share (a field element)."""
    step = OWNER_BYTES + SHARE_BYTES
    out = {}
    for at in range(0, len(payload), step):
        owner = int.from_bytes(payload[at : at + OWNER_BYTES], "little")
        out[owner] = int.from_bytes(payload[at + OWNER_BYTES : at + step], "big") % PRIME
    return out


def clip_parts(parts: list[np.ndarray], clip_norm: float) -> list[np.ndarray]:
    """The whole update (its flat tensors) scaled to an L2 norm of at most clip_norm."""
    norm = float(np.sqrt(sum(float((p**2).sum()) for p in parts)))
    factor = min(1.0, clip_norm / (norm + 1e-12))
    return [p * factor for p in parts]


@dataclass
class ClientKit:
    """What one client's training worker needs to mask its update: its seeds, and the layout
    every client agrees on."""

    client: int
    self_seed: bytes
    pairs: dict[int, tuple[bytes, int]]  # neighbour -> (pairwise seed, +1 or -1)
    names: list[str]
    shapes: list[tuple[int, ...]]
    quantiser: Quantiser
    clip_norm: float | None = None  # client-level DP: the client clips its whole update to this L2 norm, weight 1

    def self_mask(self, length: int) -> np.ndarray:
        return prg(self.self_seed, length, self.quantiser.bits)

    def pair_masks(self, length: int) -> np.ndarray:
        """The sum of +/- each pairwise stream: cancels against the neighbours' in the total."""
        modulus = 2**self.quantiser.bits
        out = np.zeros(length, dtype=np.uint64)
        for seed, sign in self.pairs.values():
            stream = prg(seed, length, self.quantiser.bits)
            out = (out + stream) % modulus if sign > 0 else (out + modulus - stream) % modulus
        return out

    def mask_update(self, update: dict, weight: float, plain_bytes: int = 0) -> Masked | Refused:
        """n_i x update, tensor by tensor (zeros for tensors this client does not train), then
        one 0/1 slot per tensor saying which it trains, so the server can average each tensor
        over exactly its holders; quantised and masked here, on the client."""
        parts = flat_parts(update, self.names, self.shapes)
        t0 = time.perf_counter()
        if not all(np.isfinite(p).all() for p in parts):
            return Refused(self.client, "non-finite update, refused before masking")
        if self.clip_norm is not None:  # DP-FedAvg's clipping happens here, on the client, before masking
            parts, weight = clip_parts(parts, self.clip_norm), 1.0
        held = np.array([1.0 if n in update else 0.0 for n in self.names])
        quantised = self.quantiser.encode(np.concatenate(parts), weight, held)
        modulus = 2**self.quantiser.bits
        masked = (quantised + self.self_mask(len(quantised)) + self.pair_masks(len(quantised))) % modulus
        return Masked(self.client, masked.astype(np.uint64), plain_bytes, time.perf_counter() - t0)


@dataclass(frozen=True)
class MaskLayout:
    """What every client of a round masks to: the tensors in order, the fixed point, the clip."""

    names: list[str]
    shapes: list[tuple[int, ...]]
    quantiser: Quantiser
    clip_norm: float | None = None
    lone: object | None = None  # a round of one client under client-level DP: its lone_round.LoneNoise


class ClientParties:
    """The client side of secure aggregation in one worker: the parties of the clients it runs,
    for the current round only (a new round's keys replace the last round's). The server
    reaches it only through `secagg`, with messages."""

    STEPS = ("advertise", "share_keys", "receive_shares", "answer")

    def __init__(self):
        self.parties: dict[int, ClientParty] = {}

    def secagg(self, name: str, round_: int, per_client: dict) -> dict:
        """One protocol step for each client in `per_client` -> its reply (a message, or None)."""
        if name not in self.STEPS:
            raise ValueError(f"secure aggregation: no client step {name!r}")
        if name == "advertise":  # fresh secrets for this round's clients; last round's are gone
            self.parties = {c: ClientParty(c, round_) for c in per_client}
        run = getattr(self, "_" + name)
        return {c: run(self.parties[c], message) for c, message in per_client.items() if c in self.parties}

    def kit(self, client: int, layout: MaskLayout) -> ClientKit | None:
        """The masking kit of a client this worker holds the secrets of (None if it lost them)."""
        party = self.parties.get(client)
        return party.kit(layout.names, layout.shapes, layout.quantiser, layout.clip_norm) if party else None

    @staticmethod
    def _advertise(party: ClientParty, message) -> bytes:
        return party.advertise()

    @staticmethod
    def _share_keys(party: ClientParty, message) -> dict[int, bytes]:
        publics, threshold = message
        return party.share_keys(publics, threshold)

    @staticmethod
    def _receive_shares(party: ClientParty, message) -> None:
        party.receive_shares(message)

    @staticmethod
    def _answer(party: ClientParty, message) -> bytes:
        return party.answer(message)
