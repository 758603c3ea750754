"""What the DP accountant does not count: the size of each Poisson batch. DP-SGD's analysis
releases only the noisy sum; a client whose step time grows with its batch tells an observer
(the server, timing its uploads) how many rows each step drew, and whether the canary was drawn
changes that count by one. This module prices the worst version of that leak on one dataset: the
client's other rows have zero gradient, the canary's has the clipping norm, and every step's batch
size is released exactly beside its noisy sum (so the other rows' count is the only thing hiding
the canary's draw). That dataset gives a lower bound on the leaky mechanism's worst case, and the
exact release an upper bound on what timing can show; what timing does show is not measured.

Per step, without the canary (n - 1 rows): K ~ Bin(n - 1, q), Y ~ N(0, sigma^2) (in units of
the clipping norm); with it, K + I and Y + I with I ~ Bern(q). At an observed size k the
likelihood ratio is (1 - q) + q_k L(y), L the Gaussian ratio and q_k = (1 - q) k / (n - k),
which is q where k is the expected count and moves with it: the count's own noise is all that
hides the canary's draw. Renyi divergences are integrated numerically (the add direction, as
Opacus's accountant takes it) and compose over steps by addition.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

STEPS_PER_SIGMA = 100  # the noise axis's resolution
TAILS = 12  # sigmas of noise axis beyond the two means and the integrand's peak


def step_rdp(rows: int, rate: float, sigma: float, orders: list[float], sizes_released: bool) -> np.ndarray:
    """Renyi DP of one step at each order, for `rows` rows (the canary one of them) at Poisson
    `rate` and noise multiplier `sigma`: the noisy sum alone, or with the batch's size beside it."""
    if sizes_released:
        lo, hi = stats.binom.ppf([1e-13, 1 - 1e-13], rows - 1, rate)
        k = np.arange(max(lo, 0), min(hi, rows - 1) + 1)[:, None]
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
