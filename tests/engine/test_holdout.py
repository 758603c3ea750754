"""Each client's held-out slice, cut by `holdout_split`."""

import numpy as np

from bench.engine.prepare import holdout_split

SIZES = [2, 5, 14, 15, 26, 37, 100, 1001]


def clients() -> list[np.ndarray]:
    """Clients of the sizes above, holding scattered (non-contiguous) example ids."""
    ids = np.random.default_rng(7).permutation(sum(SIZES) * 3)
    return [np.sort(part) for part in np.split(ids[: sum(SIZES)], np.cumsum(SIZES)[:-1])]


def test_every_client_keeps_back_a_seeded_tenth_of_its_own_data():
    """README: "Every client keeps 10% of its data to score the global model on"; holdout_split:
    "a seeded `fraction` (at least one example) of its data": round(10% of its rows), at least one,
    apart from its training rows, the two together its data; the same seed cuts the same."""
    parts = clients()
    train, held = holdout_split(parts, 0.1, seed=3)
    for idx, t, h in zip(parts, train, held):
        assert len(h) == max(1, round(0.1 * len(idx)))  # 2 -> 1, 5 -> 1, 15 -> 2, 37 -> 4, 1001 -> 100
        assert not set(t.tolist()) & set(h.tolist())
        assert sorted(t.tolist() + h.tolist()) == idx.tolist()
    again_train, again_held = holdout_split(parts, 0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(held + train, again_held + again_train))
    _, other = holdout_split(parts, 0.1, seed=4)
    assert not np.array_equal(held[-1], other[-1])  # the seed chooses the slice
