"""Secure aggregation: the unmasked sum equals the plain weighted sum within the quantisation
bound, with dropouts up to the threshold; beyond it the round fails; a masked vector alone
looks uniform."""

import numpy as np
import pytest

from bench.secagg import ClientSession, Quantiser, SecAggFailure, neighbours, prg, reconstruct, secure_sum, split_secret

N, DIM = 10, 64


def _round(drop: set[int]):
    rng = np.random.default_rng(0)
    updates = {c: rng.normal(0, 0.05, DIM) for c in range(N)}
    weights = {c: float(rng.integers(20, 200)) for c in range(N)}
    quantiser = Quantiser(clip=1.0, total_weight=sum(weights.values()))
    total, weight, costs = secure_sum(updates, weights, quantiser, round_=3, seed=1, threshold=6, degree=N - 1,
                                      drop_after_masking=drop)  # fmt: skip
    alive = [c for c in range(N) if c not in drop]
    plain = sum(weights[c] * updates[c] for c in alive)
    bound = len(alive) * 0.5 / quantiser.scale  # half a step per client per element
    return total, weight, plain, sum(weights[c] for c in alive), bound, costs


def test_secure_sum_equals_the_weighted_sum_with_three_dropped():
    total, weight, plain, plain_weight, bound, costs = _round({1, 4, 7})
    assert np.max(np.abs(total - plain)) <= bound
    assert abs(weight - plain_weight) <= bound
    assert costs["secagg_bytes_up"] > 7 * (DIM + 1) * 4  # at least the masked vectors


def test_without_dropouts_too():
    total, weight, plain, plain_weight, bound, _ = _round(set())
    assert np.max(np.abs(total - plain)) <= bound and abs(weight - plain_weight) <= bound


def test_five_dropped_is_a_failed_round():
    with pytest.raises(SecAggFailure, match="needed"):
        _round({0, 2, 4, 6, 8})


def test_a_masked_vector_alone_is_uniform():
    """Chi-square over 16 bins of one client's masked vector (its update is all zeros, so a
    leak would show as a spike): uniform at the 0.1% level."""
    from scipy.stats import chisquare

    session = ClientSession.start(0, round_=0, seed=5)
    peers = {c: ClientSession.start(c, 0, 5).public_key for c in (1, 2, 3)}
    quantised = Quantiser(clip=1.0, total_weight=100.0).encode(np.zeros(40_000), 1.0)
    masked = session.mask(quantised, peers, round_=0, bits=32).vector
    counts = np.bincount((masked >> np.uint64(28)).astype(np.int64), minlength=16)
    assert chisquare(counts).pvalue > 0.001
    assert np.count_nonzero(quantised) == 0 and np.count_nonzero(masked) > 39_000


def test_shamir_needs_the_threshold():
    rng = np.random.default_rng(0)
    secret = int.from_bytes(rng.bytes(32), "big")
    shares = split_secret(secret, list(range(8)), threshold=5, rng=rng)
    assert reconstruct({h: shares[h] for h in (0, 2, 3, 5, 7)}) == secret
    assert reconstruct({h: shares[h] for h in (0, 2, 3, 5)}) != secret


def test_secagg_plus_graph_is_sparse_and_symmetric():
    graph = neighbours(list(range(50)), degree=8, seed=0)
    assert all(len(v) == 8 for v in graph.values())
    assert all(c in graph[d] for c, v in graph.items() for d in v)


def test_prg_streams_depend_on_the_seed():
    assert not np.array_equal(prg(b"a" * 32, 100, 32), prg(b"b" * 32, 100, 32))
    assert np.array_equal(prg(b"a" * 32, 100, 32), prg(b"a" * 32, 100, 32))
