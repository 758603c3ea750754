"""Secure aggregation after Bonawitz et al. 2017 ("Practical Secure Aggregation for Privacy-
Preserving Machine Learning") with SecAgg+'s sparse neighbour graph (Bell et al. 2020).

What each party sees: a client sees its own update, its neighbours' public keys and the shares
sealed for it; the server sees only the five kinds of message in bench.federation.
secagg_transcript: public keys, shares sealed end to end between two clients, masked vectors
(uniform mod 2^bits on their own), its unmasking requests and the answers, and so, after
unmasking, only the sum.

Steps, per round, for clients that advertise keys (the client's side: secagg_client):
1. Each client draws two X25519 key pairs and a self-mask seed from OS entropy and sends the
   two public keys; the server relays each client's neighbours' keys to it.
2. Each client Shamir-shares its `s` private key and its self-mask seed among its neighbours
   (threshold t over GF(2^521 - 1)), seals each neighbour's pair of shares under a key agreed
   with that neighbour, and sends them; the server relays them, unopened.
3. A client quantises n_i x update (and n_i itself) to fixed point mod 2^bits, adds the ChaCha20
   stream of its self-mask seed and, for every neighbour j, +/- the stream of HKDF(X25519 of the
   `s` keys), + if i < j and - otherwise, and sends that masked vector.
4. The server names the survivors and the dropped; each survivor answers with its shares of
   each survivor's self-mask seed (to remove the self mask) and of each dropped neighbour's `s`
   key (to rebuild and remove the pairwise masks that client left in its neighbours' vectors),
   never both for one client. With fewer than t survivors holding shares of someone, the round
   fails (SecAggFailure) before any request.
Pairwise masks of two survivors cancel in the sum. Quantisation error per element of the
weighted sum is at most (clients / 2) / scale, with scale = 2^(bits-2) / (clip x W) and W
the bound on the total weight.

This module holds the server's side (the graph, SecureRound); the arithmetic is in
secagg_math, the client's side in secagg_client, and the message passing between them (the
network of the simulation) in secagg_network.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from bench.federation.secagg_client import KEY_BYTES, Masked, pair_seed_from_private, read_answer
from bench.federation.secagg_math import Quantiser, prg, reconstruct, unflatten
from bench.federation.secagg_transcript import Transcript
from bench.seeding import stream


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
    """The server's side of one round among the clients that received the model. It holds only
    what it is sent: public keys, sealed shares (relayed unopened), masked vectors and unmasking
    answers, each recorded in its Transcript (the bytes rounds.jsonl counts)."""

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
        transcript: str | None = None,
        holdings: dict[int, frozenset] | None = None,
    ):
        self.round_, self.quantiser = round_, quantiser
        self.names, self.shapes = names, shapes
        n = len(clients)
        self.degree = min(n - 1, degree or max(8, 2 * int(np.ceil(np.log2(max(n, 2))))))
        self.threshold = threshold or self.degree // 2 + 1  # default: a majority of each client's neighbours
        # a tensor's sum over fewer clients tells the server too much about each: at least 2, and t
        self.min_holders = max(2, self.threshold)
        self.holdings = holdings or {}  # client -> the tensors it trains (public: its layer budget); absent: all
        self.fewest_holders: int | None = None  # of any tensor, among the clients whose vectors were summed
        self.graph = neighbours(clients, self.degree, _digest((seed, round_)))  # public: from the seed
        self.length = sum(int(np.prod(s)) for s in shapes) + len(names)
        self.transcript = Transcript(transcript, round_)
        self.publics: dict[int, bytes] = {}
        self.vectors: dict[int, np.ndarray] = {}  # the masked vectors that arrived in time
        self.plain_bytes = 0  # what the masked uploads would have been in the clear

    def relay_keys(self, adverts: dict[int, bytes]) -> dict[int, dict[int, bytes]]:
        """Step 1: each client's public keys in; each client gets its neighbours'."""
        for c in sorted(adverts):
            self.transcript.record("public_key", "to_server", c, "server", adverts[c])
        self.publics = dict(adverts)
        # a client whose worker died before advertising is out of the round: nobody masks with it
        self.graph = {c: [p for p in peers if p in adverts] for c, peers in self.graph.items() if c in adverts}
        out = {c: {p: self.publics[p] for p in self.graph[c]} for c in sorted(self.graph)}
        for c, keys in out.items():
            for p, key in keys.items():
                self.transcript.record("public_key", "from_server", p, c, key)
        return out

    def relay_shares(self, sealed: dict[int, dict[int, bytes]]) -> dict[int, dict[int, bytes]]:
        """Step 2: sealed shares in, each to its holder, unopened."""
        inbox: dict[int, dict[int, bytes]] = {c: {} for c in self.graph}
        for owner in sorted(sealed):
            for holder, blob in sorted(sealed[owner].items()):
                self.transcript.record("encrypted_share", "to_server", owner, holder, blob)
                inbox[holder][owner] = blob
        for holder in sorted(inbox):
            for owner, blob in sorted(inbox[holder].items()):
                self.transcript.record("encrypted_share", "from_server", owner, holder, blob)
        return inbox

    def requests(self, arrived: list, late: list = ()) -> dict[int, bytes]:
        """Step 3 in, step 4 out: the masked vectors (a late one arrives, but its client counts as
        dropped), then one request per survivor naming survivors and dropped; SecAggFailure when
        someone's shares are held by fewer than t survivors, or a tensor would be summed over
        fewer than max(2, t) of them (its holders are public: the layer budgets)."""
        for m in list(arrived) + list(late):
            if isinstance(m, Masked):
                self.transcript.record_vector(m.client, m.vector, self.quantiser.bits)
                self.plain_bytes += m.plain_bytes
            else:  # a refusal arrives too: an empty masked_vector (its reason is plain metadata)
                self.transcript.record("masked_vector", "to_server", m.client, "server", b"")
        # a Refused client counts as dropped; a vector from outside the round's graph is not summed
        self.vectors = {m.client: m.vector for m in arrived if isinstance(m, Masked) and m.client in self.graph}
        survivors = sorted(self.vectors)
        for c in sorted(self.graph):
            holding = sum(1 for h in self.graph[c] if h in self.vectors)
            if holding < self.threshold:
                self._fail(f"client {c}: {holding} surviving neighbours hold shares, {self.threshold} needed")
        counts = [sum(name in self.holdings.get(c, self.names) for c in survivors) for name in self.names]
        self.fewest_holders = min(counts)
        if self.fewest_holders < self.min_holders:  # after dropouts, one tensor's sum would be too few clients'
            few = sum(k < self.min_holders for k in counts)
            self._fail(f"holders: {few} tensors summed over fewer than {self.min_holders} surviving clients")
        request = json.dumps({"survivors": survivors, "dropped": sorted(set(self.graph) - set(survivors))}).encode()
        for c in survivors:
            self.transcript.record("unmask_request", "from_server", "server", c, request)
        return {c: request for c in survivors}

    def finish(self, answers: dict[int, bytes]) -> tuple[dict[str, np.ndarray], dict[str, float], dict]:
        """Step 4 in: (tensor -> summed weighted update, tensor -> summed weight, costs)."""
        shares: dict[int, dict[int, int]] = {}
        for holder in sorted(answers):
            self.transcript.record("unmask_response", "to_server", holder, "server", answers[holder])
            for owner, share in read_answer(answers[holder]).items():
                shares.setdefault(owner, {})[holder] = share
        short = [c for c in sorted(self.graph) if len(shares.get(c, {})) < self.threshold]
        if short:  # a survivor lost its secrets (its worker died) between masking and answering
            self._fail(
                f"client {short[0]}: {len(shares.get(short[0], {}))} answers hold shares, {self.threshold} needed"
            )
        total = self._unmasked(shares)
        self.transcript.flush()
        decoded = self.quantiser.decode(total, held=len(self.names))
        sums = unflatten(decoded, self.names, self.shapes)
        held = decoded[self.length - len(self.names) :]  # the 0/1 slots after the tensors, summed
        weights = {name: float(w) for name, w in zip(self.names, held)}
        return sums, weights, self.costs()

    def _unmasked(self, shares: dict[int, dict[int, int]]) -> np.ndarray:
        """The sum of the masked vectors, less the survivors' self masks and the pairwise masks
        that dropped clients left in their surviving neighbours' vectors."""
        bits, modulus = self.quantiser.bits, 2**self.quantiser.bits
        total = np.zeros(self.length, dtype=np.uint64)
        for vector in self.vectors.values():
            total = (total + vector) % modulus
        for owner in sorted(self.graph):
            secret = reconstruct(shares.get(owner, {})).to_bytes(KEY_BYTES, "big")
            if owner in self.vectors:  # a survivor: its self mask goes
                total = (total + modulus - prg(secret, self.length, bits)) % modulus
                continue
            for peer in self.graph[owner]:  # dropped after sharing: its pairwise masks with survivors go
                if peer in self.vectors:
                    stream_ = prg(
                        pair_seed_from_private(secret, self.publics[peer][KEY_BYTES:], self.round_), self.length, bits
                    )
                    # the peer added -stream if owner < peer, +stream otherwise
                    total = (total + stream_) % modulus if owner < peer else (total + modulus - stream_) % modulus
        return total

    def _fail(self, why: str):
        """The round ends without a sum; what was sent is recorded and counted."""
        self.transcript.flush()
        self.fewest_holders = None  # no tensor was summed
        failure = SecAggFailure(why)
        failure.costs = self.costs()
        raise failure

    def costs(self) -> dict:
        """The protocol's bytes beyond the plain updates, from the messages themselves."""
        return {
            "secagg_bytes_up": self.transcript.up - self.plain_bytes,
            "secagg_bytes_down": self.transcript.down,
            "secagg_min_holders": self.fewest_holders,
        }
