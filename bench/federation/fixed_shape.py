"""DP-SGD steps of one shape whatever the Poisson draw (`--dp-fixed-shape`; by row, document or patient).

A step's time grows with its batch's rows and their length, and a row's draw moves the batch by
one row: an observer who times a client's steps reads what DP-SGD's accountant does not count
(bench.federation.dp_side_channel prices it). Under a fixed shape every step, an empty draw's
included, runs on `rows` rows of `length` tokens: the drawn rows first, then copies of one filler
row whose loss weight is zero, so their per-sample gradients are exactly zero and the clipped sum,
the noise and the update are the drawn rows' alone. The filler is the client's shortest row:
shorter than `length` unless every row is full, so no step's attention mask is all ones (a mask
of all ones takes another kernel in transformers' SDPA path).

The cap is the least row count a draw exceeds with probability at most PER_STEP_OVERFLOW, for the
client's rows and one more (a neighbouring dataset's draw is within it too); a draw over the cap
runs on the next multiple of it, and its shape then shows. So timing adds at most eta
(1 + e^epsilon) to delta, eta bounding the chance that any step overflows (`timing_delta`, in
final.json's `dp`). The client's row count stays public, as the accountant's rate and steps
already take it; one-off work over the whole data (tokenizing, filling the prefix cache before
the first step) takes time with the data's size and is outside the steps. By document or
patient the largest unit's size is not public (a neighbouring dataset's may be larger): a public
bound M (`--dp-unit-max-rows`) on the rows a drawn unit adds to a step makes the cap the rows'
cap times M (units are at most rows; a cap from the unit count would show a band of it, which
nothing else releases, while the row count is already in the accountant's rate and steps).
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


def for_client(rows: np.ndarray, lengths: list[int], rate: float, length: int, unit_rows: int = 1) -> FixedShape:
    """The shape of a client's steps, from its rows and their token lengths; by document or
    patient each drawn unit adds at most `unit_rows` rows, and the cap on drawn units is the one
    for as many units as rows (a bound, from the public row count: the unit count is not)."""
    return FixedShape(cap_rows(len(rows), rate) * unit_rows, length, int(rows[int(np.argmin(lengths))]))


def cap_rows(rows: int, rate: float) -> int:
    """The least k with P(Binomial(rows + 1, rate) > k) <= PER_STEP_OVERFLOW: each row, and the one
    a neighbouring dataset adds, joins a step with probability `rate`."""
    k = np.arange(rows + 2)
    return max(1, int(np.flatnonzero(stats.binom.logsf(k, rows + 1, rate) <= math.log(PER_STEP_OVERFLOW))[0]))


def timing_delta(delta: float, epsilon: float, steps: int) -> float:
    """The delta that holds against an observer who also sees each step's shape: eta bounds the
    chance that any of `steps` steps overflowed its cap (union bound), and on that event alone the
    shape differs, which costs eta (1 + e^epsilon)."""
    eta = min(1.0, steps * PER_STEP_OVERFLOW)
    return min(1.0, delta + eta * (1.0 + math.exp(min(epsilon, 700.0))))
