"""What the DP accountant does not count: the size of each Poisson batch. DP-SGD's analysis
releases only the noisy sum; a client whose step time grows with its batch tells an observer
(the server, timing its uploads) how many rows each step drew, and whether the canary was drawn
changes that count by one. This module prices the mechanism that releases every step's batch size
exactly beside its noisy sum, on two datasets (clipping norm C, the canary's gradient of norm C):

- the other rows' gradients are zero: the sum says nothing of their count, so the count's own
  binomial noise hides the canary's draw (a mild case: more rows hide it better);
- the other rows' gradients are the canary's reversed: the sum then gives their count away
  (size minus sum / C is twice the draw plus noise), which is the first case at sigma / 2, and
  the leak grows with the steps however many rows there are.

Each is one dataset, so each gives a lower bound on the exact release's worst case; how much of
the sizes timing shows is not measured. Per step, without the canary (n - 1 rows) K ~ Bin(n - 1,
q); with it K + I, I ~ Bern(q). At an observed size k the likelihood ratio (first case) is
(1 - q) + q_k L(y), L the Gaussian ratio and q_k = (1 - q) k / (n - k). Renyi divergences are
integrated numerically in the add direction (the remove direction is at most -log(1 - q) a step
here) and compose over steps by addition; the size n, which only the canary's world can show,
has probability q^n a step, left out (a delta far below 1e-100 at the sizes tabulated)."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

STEPS_PER_SIGMA = 100  # the noise axis's resolution
LOG_NEGLIGIBLE = -70.0  # counts rarer than about 1e-30 are left out
TAILS = 12  # sigmas of noise axis beyond the two means and the integrand's peak


def step_rdp(rows: int, rate: float, sigma: float, orders: list[float], sizes_released: bool) -> np.ndarray:
    """Renyi DP of one step at each order, for `rows` rows (the canary one of them) at Poisson
    `rate` and noise multiplier `sigma`: the noisy sum alone, or with the batch's size beside it."""
    if sizes_released:
        every = np.arange(rows)
        k = every[stats.binom.logpmf(every, rows - 1, rate) > LOG_NEGLIGIBLE][:, None]  # the counts with any weight
        log_pk = stats.binom.logpmf(k, rows - 1, rate)
        with np.errstate(divide="ignore"):  # k = 0: the canary was not drawn
            log_rate = np.log1p(-rate) + np.log(k) - np.log(rows - k)
    else:
        log_pk, log_rate = np.zeros((1, 1)), np.full((1, 1), np.log(rate))
    out = []
    for alpha in orders:
        # the integrand N(y; 0) r(y)^alpha peaks near y = alpha (for large ratios): cover it
        y = np.arange(-TAILS * sigma, max(1.0, alpha) + TAILS * sigma, sigma / STEPS_PER_SIGMA)
        log_ratio = np.logaddexp(np.log1p(-rate), log_rate + (2 * y - 1) / (2 * sigma**2))  # (1 - q) + q_k L(y)
        moment = special.logsumexp(log_pk + stats.norm.logpdf(y, 0, sigma) + alpha * log_ratio)
        out.append((moment + np.log(sigma / STEPS_PER_SIGMA)) / (alpha - 1))
    return np.array(out)


def epsilon(rdp: np.ndarray, orders: list[float], delta: float) -> float:
    """(epsilon at delta) from composed RDP, by the conversion the suite's accountant uses."""
    from opacus.accountants.analysis.rdp import get_privacy_spent

    return float(get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0])


def step_rdp_opposed(rows: int, rate: float, sigma: float, orders: list[float]) -> np.ndarray:
    """The released sizes on the dataset whose other rows' gradients are the canary's reversed."""
    return step_rdp(rows, rate, sigma / 2, orders, sizes_released=True)
