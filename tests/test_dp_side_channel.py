"""The price of a released Poisson batch size (bench/federation/dp_side_channel.py), which the
README quotes from docs/measure_dp_batch_sizes.py: the integrator reproduces Opacus's accountant
where the sizes stay hidden, its likelihood ratio is one (its mean is 1 under the canary-free
world), and releasing the sizes costs privacy that shrinks as the other rows' count grows."""

import numpy as np
import pytest

from bench.federation.dp_side_channel import step_rdp

ORDERS = [1.001, 1.5, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_with_the_sizes_hidden_it_is_opacus_s_accountant():
    from opacus.accountants.analysis.rdp import compute_rdp

    mine = step_rdp(300, 0.05, 1.0, ORDERS, sizes_released=False)
    assert mine == pytest.approx(compute_rdp(q=0.05, noise_multiplier=1.0, steps=1, orders=ORDERS), rel=1e-6)


@pytest.mark.parametrize("released", [False, True])
def test_the_likelihood_ratio_is_a_ratio(released):
    """At an order near 1 the divergence is about the KL divergence, small and not negative; a
    ratio whose mean under the canary-free world is not 1 (a wrong rate given the count) would
    put log(mean) / 0.001 there instead."""
    near_one, at_two = step_rdp(300, 0.05, 1.0, [1.001, 2.0], sizes_released=released)
    assert 0 <= near_one < at_two


def test_releasing_the_sizes_costs_privacy_that_more_rows_hide():
    hidden = step_rdp(200, 0.08, 1.5, ORDERS[1:], sizes_released=False)
    small = step_rdp(200, 0.08, 1.5, ORDERS[1:], sizes_released=True)
    large = step_rdp(20_000, 0.08, 1.5, ORDERS[1:], sizes_released=True)
    assert np.all(small > hidden * 1.05)  # a count of 16 +- 4 hides one row poorly
    assert np.all(large > hidden) and np.all(large - hidden < (small - hidden) / 5)
