"""Secure aggregation's randomness, attacked where the other tests cannot see it: the Shamir
polynomials' coefficients and the self-mask seed. README ("Who sees what"): a client's
self-mask seed and the random coefficients of its Shamir polynomials come from the operating
system's entropy; "a straggler's vector arrives, its pairwise masks can be rebuilt, but its self
mask cannot".

Why the existing tests miss a loss of this randomness: the colluder tests of
tests/test_secagg_attack.py interpolate only with at least threshold shares (or read fewer as a
plain interpolation, which a deterministic polynomial defeats too), and every attack there
looks at one round, so a seed that repeats across rounds or runs, or one derived from the
client's own keys, is never tried against a second round. The watch of
tests/engine/test_secagg_secrets_in_workers.py counts `os.urandom` calls, and the sealing nonces
alone satisfy it.

Here: (1) sharing one secret twice gives different shares, spread over the whole field; a single
colluding neighbour, solving its one share of a late client's self-mask seed under the
hypothesis that the polynomial is a fixed function of the secret, does not recover the client's
update (it does exactly when `split_secret` uses `[secret] * threshold`). (2) With a client's
X25519 keys pinned, two parties for the same client and round hold different self-mask seeds;
and a server that learnt a client's self-mask seed when it survived one run's round (unmasking
reveals it) and sees it late in another run's same round (unmasking rebuilds its `s` key) still
cannot strip its self mask (it can, exactly, if the seed is derived from the `s` key or from
client and round).

Mutation check (done): `coefficients = [secret] * threshold` in `split_secret` fails (1) both
ways; coefficients hashed from the secret fail the freshness test, coefficients below 2^64
both; `self_seed = sha256(s private key)` fails (2)'s pinned tests, `sha256(f"{client}
{round_}")` fails all three of (2).
"""

import itertools
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import tests.secagg_helpers as secagg_helpers
from bench.federation.secagg_client import (
    KEY_BYTES,
    ClientParty,
    pair_seed_from_private,
    read_answer,
    share_header,
    unseal,
)
from bench.federation.secagg_math import PRIME, SHARE_BYTES, Quantiser, prg, reconstruct, split_secret
from bench.federation.secagg_network import secure_sum
from bench.federation.secagg_transcript import read_transcript, unpack_vector
from tests.secagg_helpers import BITS, COMPLETE, DIM, signed

TARGET = 5  # COMPLETE's late client (its neighbour 6 drops)


def _answered(messages: list[dict]) -> tuple[dict, dict[int, int]]:
    """The unmask request, and owner -> the secret its shares in the answers rebuild (a
    survivor's self-mask seed, a dropped or late client's `s` key): what the server learns."""
    request = next(json.loads(m["payload"]) for m in messages if m["kind"] == "unmask_request")
    shares: dict[int, dict[int, int]] = {}
    for m in messages:
        if m["kind"] == "unmask_response":
            for owner, share in read_answer(m["payload"]).items():
                shares.setdefault(owner, {})[m["sender"]] = share
    return request, {owner: reconstruct(s) for owner, s in shares.items()}


def _strip(messages: list[dict], client: int, self_seed: bytes, round_: int = 1) -> np.ndarray:
    """A late client's masked vector less every mask, as the server computes them: its pairwise
    masks from its `s` key (rebuilt from the answers, checked against its public half) and each
    neighbour it exchanged shares with, and its self mask from the candidate `self_seed`."""
    request, rebuilt = _answered(messages)
    assert client in request["dropped"]  # late: counted as dropped, so its `s` key is rebuilt
    s_key = rebuilt[client].to_bytes(KEY_BYTES, "big")
    publics = {
        m["sender"]: m["payload"] for m in messages if m["kind"] == "public_key" and m["direction"] == "to_server"
    }
    assert X25519PrivateKey.from_private_bytes(s_key).public_key().public_bytes_raw() == publics[client][KEY_BYTES:]
    (y,) = [
        unpack_vector(m["payload"], BITS) for m in messages if m["kind"] == "masked_vector" and m["sender"] == client
    ]
    modulus = 2**BITS
    masks = prg(self_seed, len(y), BITS)
    neighbours = {m["receiver"] for m in messages if m["kind"] == "encrypted_share" and m["sender"] == client}
    for p in neighbours - {client}:
        stream = prg(pair_seed_from_private(s_key, publics[p][KEY_BYTES:], round_), len(y), BITS)
        masks = (masks + stream) % modulus if client < p else (masks + modulus - stream) % modulus
    return signed((y + modulus - masks) % modulus)[:DIM]


# --- (1) Shamir coefficients ---------------------------------------------------------------------


def test_shamir_shares_are_fresh_and_spread_over_the_whole_field():
    """README: the Shamir polynomials' coefficients come from the OS's entropy, uniform over the
    field. The same secret shared twice gives different shares to every holder (a deterministic
    polynomial gives the same), and each holder's shares of the secret 0 over 20 sharings reach
    the field's upper half (uniform coefficients miss it with probability 2^-20 per holder;
    small or secret-derived ones stay far below)."""
    holders, threshold = list(range(7)), 4
    for secret in (0, 1, 2**255 + 12345):
        first, second = split_secret(secret, holders, threshold), split_secret(secret, holders, threshold)
        assert all(first[h] != second[h] for h in holders)
        assert reconstruct({h: first[h] for h in holders[:threshold]}) == secret  # still a sharing of it
    draws = [split_secret(0, holders, threshold) for _ in range(20)]
    for h in holders:  # with small coefficients every share of 0 would sit near the bottom
        assert max(d[h] for d in draws) > PRIME // 2


def _one_share_guesses(share: int, holder: int, threshold: int) -> set[int]:
    """What one share gives a holder that supposes the polynomial a fixed function of the secret
    (coefficients = secret x a fixed vector): the secret under each such vector it tries, those
    of 0/1 entries (the mutation's all ones, a constant polynomial, and the rest)."""
    x, guesses = holder + 1, set()
    for pattern in itertools.product((0, 1), repeat=threshold - 1):
        factor = sum(pow(x, k, PRIME) for k, on in enumerate((1, *pattern)) if on) % PRIME
        guesses.add(share * pow(factor, PRIME - 2, PRIME) % PRIME)
    return {g for g in guesses if g < 2 ** (8 * KEY_BYTES)}  # a seed fits 32 bytes


def test_one_colluding_neighbour_cannot_solve_a_late_clients_seed_from_its_share(tmp_path, monkeypatch):
    """README: a straggler's self mask cannot be rebuilt (by the server, nor with fewer than the
    threshold of its neighbours). The server (which rebuilds the late client's `s` key, so its
    pairwise masks) with one of its neighbours, whose share of the late client's self-mask seed
    it opens: every seed that share gives under a 'fixed polynomial' hypothesis leaves the masked
    vector uncorrelated with the update (|r| < 0.1 over 4,000 values; chance ~0.016), none fits
    32 bytes at all but by chance (2^-265 each). With `[secret] * threshold` the all-ones guess
    is the seed and the update comes back exactly."""
    seen = {}
    real_attack = secagg_helpers.attack

    def keep_view(messages, threshold, colluders=None, length=DIM):
        seen.update(messages=messages, threshold=threshold, colluders=colluders)
        return real_attack(messages, threshold, colluders, length)

    monkeypatch.setattr(secagg_helpers, "attack", keep_view)
    colluder = 0
    _, truth = secagg_helpers.attack_round(tmp_path, monkeypatch, None, {colluder}, COMPLETE)
    party = seen["colluders"][colluder]
    plain = unseal(party._channel(TARGET), party._held[TARGET], share_header(party.round_, TARGET, colluder))
    seed_share = int.from_bytes(plain[SHARE_BYTES:], "big")
    guesses = _one_share_guesses(seed_share, colluder, seen["threshold"])
    for guess in guesses:
        left = _strip(seen["messages"], TARGET, guess.to_bytes(KEY_BYTES, "big"))
        assert not np.array_equal(left, truth[TARGET])
        assert abs(np.corrcoef(left, truth[TARGET])[0, 1]) < 0.1
    assert not guesses  # uniform coefficients: no guess even looks like a 32-byte seed


# --- (2) self-mask seeds -------------------------------------------------------------------------


def _pin_keys(monkeypatch) -> list[int]:
    """X25519PrivateKey.generate returns fixed keys: the k-th call of a session (k = 0, 1, ...:
    clients in order, `c` then `s`) the same key in every session. -> the session counter, to reset."""
    calls = [0]
    fixed = [X25519PrivateKey.from_private_bytes(bytes([k + 1]) * KEY_BYTES) for k in range(64)]

    def generate():
        calls[0] += 1
        return fixed[calls[0] - 1]

    monkeypatch.setattr(X25519PrivateKey, "generate", staticmethod(generate))
    return calls


def test_a_self_mask_seed_is_fresh_even_when_the_clients_keys_repeat(monkeypatch):
    """README: the self-mask seed is its own draw from the OS's entropy, not derived from the
    client's keys, id or round. With the X25519 keys pinned, two parties for one client and
    round advertise the same keys yet hold different self-mask seeds."""
    calls = _pin_keys(monkeypatch)
    first = ClientParty(3, 1)
    calls[0] = 0
    second = ClientParty(3, 1)
    assert first.advertise() == second.advertise()  # the pin holds: same `c` and `s` keys
    assert first._self_seed != second._self_seed
    assert len({ClientParty(c, r)._self_seed for c in range(3) for r in range(3)}) == 9


def test_a_worker_keeps_no_clients_secrets_from_one_round_to_the_next():
    """A worker's ClientParties lives for the whole run: each round's advertise must give its
    clients new keys and self-mask seeds, or a client that survives one round (its seed revealed
    by unmasking) and is late the next would be read exactly."""
    from bench.federation.secagg_client import ClientParties

    worker = ClientParties()
    secrets = []
    for round_ in range(3):
        published = worker.secagg("advertise", round_, {0: None, 1: None})
        secrets.append({c: (published[c], p._self_seed, p._s.private_bytes_raw()) for c, p in worker.parties.items()})
        assert all(p.round_ == round_ for p in worker.parties.values())
    for c in (0, 1):
        for part in range(3):  # the public keys, the self-mask seed, the `s` private key
            assert len({secrets[r][c][part] for r in range(3)}) == 3, (c, part)


@pytest.mark.parametrize("pinned", [False, True], ids=["fresh-keys", "pinned-keys"])
def test_a_seed_revealed_in_one_run_does_not_unmask_the_client_late_in_another(tmp_path, monkeypatch, pinned):
    """README: a straggler's self mask cannot be rebuilt. Two runs of the study (run seeds 0 and
    1), round 1 of each, 8 clients, one dropping: client 5 survives the first (unmasking hands
    the server its self-mask seed) and is late in the second (unmasking hands it 5's `s` key, so
    its pairwise masks). The first run's seed leaves the second's vector uncorrelated with the
    update (|r| < 0.1 over 4,000 values). With the keys pinned (the same in both runs) a seed
    derived from the `s` key would repeat and give the update back exactly; a seed derived
    from client and round repeats either way."""
    calls = _pin_keys(monkeypatch) if pinned else [0]
    rng = np.random.default_rng(5)
    weights = {c: 10.0 for c in range(COMPLETE.n)}
    quantiser = Quantiser(clip=1.0, total_weight=10.0 * COMPLETE.n, bits=BITS)
    views, updates = [], []
    for seed, late in ((0, set()), (1, {TARGET})):
        calls[0] = 0
        updates.append({c: rng.normal(0, 0.05, DIM) for c in range(COMPLETE.n)})
        path = tmp_path / f"run{seed}.jsonl"
        secure_sum(updates[-1], weights, quantiser, 1, seed, COMPLETE.degree, COMPLETE.threshold, {6}, late, str(path))
        views.append(read_transcript(path))
    request, revealed = _answered(views[0])
    assert TARGET in request["survivors"]
    seed = revealed[TARGET].to_bytes(KEY_BYTES, "big")  # the target's self-mask seed in the first run
    if pinned:  # the same keys in both runs, as pinned
        keys = [next(m["payload"] for m in v if m["kind"] == "public_key" and m["sender"] == TARGET) for v in views]
        assert keys[0] == keys[1]
    truth = np.round(updates[1][TARGET] * weights[TARGET] * quantiser.scale)
    left = _strip(views[1], TARGET, seed)
    assert not np.array_equal(left, truth)
    assert abs(np.corrcoef(left, truth)[0, 1]) < 0.1


def test_two_shares_sealed_under_one_pair_key_do_not_xor_to_their_plaintexts():
    """The A->B and B->A share messages are sealed under the one key A and B agree on; a repeated
    nonce would make the two ciphertexts XOR to the two plaintexts XORed (a keystream reused),
    which the server, carrying both, could read against a guess of either share."""
    import os

    from bench.federation.secagg_client import NONCE_BYTES, seal, unseal

    key = os.urandom(32)
    a_to_b, b_to_a = os.urandom(48), os.urandom(48)
    sealed = [seal(key, a_to_b, b"0->1"), seal(key, b_to_a, b"1->0")]
    nonces, bodies = [s[:NONCE_BYTES] for s in sealed], [s[NONCE_BYTES : NONCE_BYTES + 48] for s in sealed]
    assert nonces[0] != nonces[1]
    xored = bytes(x ^ y for x, y in zip(*bodies))
    assert xored != bytes(x ^ y for x, y in zip(a_to_b, b_to_a))
    assert unseal(key, sealed[0], b"0->1") == a_to_b and unseal(key, sealed[1], b"1->0") == b_to_a
