"""DP-SGD steps of one shape whatever the Poisson draw (`--dp-fixed-shape`).

A step's time grows with its batch's rows and their length, and a row's draw moves the batch by
one row: an observer who times a client's steps reads what DP-SGD's accountant does not count
(bench.federation.dp_side_channel prices it). Under a fixed shape every step, an empty draw's
included, runs on `rows` rows of `length` tokens: the drawn rows first, then copies of one filler
row (the client's first) whose loss weight is zero, so their per-sample gradients are exactly
zero and the clipped sum, the noise and the update are the drawn rows' alone.

The cap is the least row count a draw exceeds with probability at most PER_STEP_OVERFLOW, taken
over the client's units and one more of the largest (a neighbouring dataset's draw is within it
too); a draw over the cap runs on the next multiple of it, and its shape then shows. So timing
adds at most eta (1 + e^epsilon) to delta, eta bounding the chance that any step overflows
(`timing_delta`, in final.json's `dp`). The client's row count stays public, as the accountant's
rate and steps already take it; one-off work over the whole data (tokenizing, filling the prefix
cache before the first step) takes time with the data's size and is outside the steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

PER_STEP_OVERFLOW = 1e-18  # a step's chance of drawing more rows than the cap


@dataclass(frozen=True)
class FixedShape:
    rows: int  # the cap: rows in every step
    length: int  # tokens in every row (the task's max_length: the data's own longest would show it)
    filler: int  # the row that fills a step past its draw, at zero weight

    def pad(self, drawn: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """The step's rows (the drawn ones first, then the filler up to a multiple of the cap)
        and their loss weights (1 drawn, 0 filler)."""
        size = self.rows * max(1, -(-len(drawn) // self.rows))
        padded = np.concatenate([drawn, np.full(size - len(drawn), self.filler, dtype=np.int64)]).astype(np.int64)
        weights = torch.zeros(size)
        weights[: len(drawn)] = 1.0
        return padded, weights


def for_client(rows: np.ndarray, unit_sizes: np.ndarray, rate: float, length: int) -> FixedShape:
    """The shape of a client's steps: its cap from its units' sizes (all 1 at row level)."""
    return FixedShape(cap_rows(unit_sizes, rate), length, int(rows[0]))


def cap_rows(unit_sizes: np.ndarray, rate: float) -> int:
    """The least k with P(drawn rows > k) <= PER_STEP_OVERFLOW when each unit (these, and one more
    of the largest size) joins a step with probability `rate`, bringing all its rows."""
    sizes = np.append(np.asarray(unit_sizes, dtype=np.int64), int(np.max(unit_sizes)))
    tail = _log_tail(sizes, rate)  # tail[k] = log P(drawn > k)
    return max(1, int(np.flatnonzero(tail <= math.log(PER_STEP_OVERFLOW))[0]))


def _log_tail(sizes: np.ndarray, rate: float) -> np.ndarray:
    """log P(drawn rows > k) for k = 0 .. all rows: binomial at row level, else the convolution of
    each unit's (1 - rate, rate at its size)."""
    total = int(sizes.sum())
    k = np.arange(total + 1)
    if rate >= 1.0:
        return np.where(k >= total, -np.inf, 0.0)
    if np.all(sizes == 1):
        return stats.binom.logsf(k, total, rate)
    return convolved_log_tail(sizes, rate)


def convolved_log_tail(sizes: np.ndarray, rate: float) -> np.ndarray:
    """log P(drawn rows > k), k = 0 .. all rows, by convolving the units' draws one by one."""
    total = int(sizes.sum())
    pmf = np.zeros(total + 1)
    pmf[0] = 1.0
    for size in sizes:  # positive terms only: small tails keep their relative precision
        pmf[size:] = (1 - rate) * pmf[size:] + rate * pmf[:-size]
        pmf[:size] *= 1 - rate
    above = np.concatenate([np.cumsum(pmf[::-1])[::-1][1:], [0.0]])  # P(drawn > k)
    with np.errstate(divide="ignore"):
        return np.log(above)


def timing_delta(delta: float, epsilon: float, steps: int) -> float:
    """The delta that holds against an observer who also sees each step's shape: eta bounds the
    chance that any of `steps` steps overflowed its cap (union bound), and on that event alone the
    shape differs, which costs eta (1 + e^epsilon)."""
    eta = min(1.0, steps * PER_STEP_OVERFLOW)
    return min(1.0, delta + eta * (1.0 + math.exp(min(epsilon, 700.0))))
