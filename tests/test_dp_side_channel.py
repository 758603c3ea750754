"""The price of a released Poisson batch size (bench/federation/dp_side_channel.py), which the
README quotes from docs/measure_dp_batch_sizes.py: the integrator reproduces Opacus's accountant
where the sizes stay hidden, its likelihood ratio is one (its mean is 1 under the canary-free
world), its released path equals the two worlds written out on two datasets, and releasing the
sizes costs privacy, which more rows hide only where the others' gradients say nothing."""

import numpy as np
import pytest
from scipy import special, stats

from bench.federation.dp_side_channel import step_rdp, step_rdp_opposed

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


def test_releasing_the_sizes_costs_privacy_that_more_rows_hide_when_the_others_have_no_gradient():
    orders = [1.5, 2.0, 4.0, 8.0]
    hidden = step_rdp(200, 0.08, 1.5, orders, sizes_released=False)
    small = step_rdp(200, 0.08, 1.5, orders, sizes_released=True)
    large = step_rdp(5_000, 0.08, 1.5, orders, sizes_released=True)
    assert np.all(small > hidden * 1.05)  # a count of 16 +- 4 hides one row poorly
    assert np.all(large > hidden) and np.all(large - hidden < (small - hidden) / 5)


def _brute_force(rows: int, rate: float, sigma: float, alpha: float, others: float) -> float:
    """D_alpha(with canary || without) of (size, sum), summed over every size and a fine grid of
    sums, the two worlds written out directly: the other rows' gradients are `others` (0 or -1)
    times the canary's, in units of the clipping norm."""
    k = np.arange(rows + 1)[:, None]
    y = np.arange(-rows - 12 * sigma, rows + alpha + 12 * sigma, sigma / 50)[None, :]
    log_b = np.concatenate([stats.binom.logpmf(np.arange(rows), rows - 1, rate), [-np.inf]])[:, None]
    log_b_less = np.concatenate([[-np.inf], log_b[:-1, 0]])[:, None]  # the others drew k - 1
    without = log_b + stats.norm.logpdf(y, others * k, sigma)
    drawn = np.log(rate) + log_b_less + stats.norm.logpdf(y, others * (k - 1) + 1, sigma)
    with_canary = np.logaddexp(np.log1p(-rate) + without, drawn)
    terms = alpha * with_canary + (1 - alpha) * without
    return (special.logsumexp(terms[np.isfinite(without)]) + np.log(sigma / 50)) / (alpha - 1)


@pytest.mark.parametrize("alpha", [2.0, 4.0, 32.0])
def test_both_datasets_match_the_two_worlds_written_out(alpha):
    """The released path checked independently: on 30 rows, the module's integral equals the
    direct sum for the zero-gradient dataset, and its sigma / 2 shortcut the direct sum for the
    dataset whose other rows oppose the canary (their count, given away by the sum, hides nothing)."""
    zero = step_rdp(30, 0.1, 1.5, [alpha], sizes_released=True)[0]
    opposed = step_rdp_opposed(30, 0.1, 1.5, [alpha])[0]
    assert zero == pytest.approx(_brute_force(30, 0.1, 1.5, alpha, others=0.0), rel=1e-5)
    assert opposed == pytest.approx(_brute_force(30, 0.1, 1.5, alpha, others=-1.0), rel=1e-5)
    assert opposed > 2 * zero
