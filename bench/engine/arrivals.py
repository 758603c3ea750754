"""What the server does with each update the moment it arrives, so that a round holds few.

Every upload is counted as it travelled and restored if it was compressed. Where the round's
aggregate is the plain sample-weighted mean (`streams`), an on-time update is also measured
(its norm, for screening) and added to a running mean in sorted client order, and then let go:
the server holds the running sum and the early arrivals still waiting for a predecessor, not
every update of the round (50 clients per round held 50 model copies).

The mean's weights are fixed before training, from the clients expected on time. When the
round ends with fewer (a client lost with its worker, an update rejected by screening), the
sum over the rest must be taken again with their own total: those clients train again, which
gives the same updates (training is a function of seed, client, round and start state), so
the aggregate is always the bits of the mean over the kept updates.
"""

from __future__ import annotations

import dataclasses

from bench.engine.faults import update_norm
from bench.federation.aggregate import RunningMean
from bench.federation.comm import Result
from bench.federation.compress import Packed, payload_bytes, restore_state


def streams(ctx, secure) -> bool:
    """Whether this round's aggregate can be a running mean: the method's combine is the plain
    weighted mean, and nothing needs the updates afterwards (secure aggregation sums masked
    ones; DP-FedAvg clips each; compression's error feedback; fresh OS noise would make a
    second training a second release)."""
    cfg = ctx.cfg
    return (
        ctx.method.streams_mean
        and secure is None
        and not ctx.dp.client_level
        and cfg.compress == "none"
        and not cfg.secure_rng
    )


def restored(res: Result, starts: dict) -> Result:
    """A result whose upload was compressed, with its state rebuilt the way the server does."""
    if not isinstance(res.state, dict) or not any(isinstance(v, Packed) for v in res.state.values()):
        return res
    return dataclasses.replace(res, state=restore_state(res.state, starts[res.start]))


class Arrivals:
    """Called with each result as it arrives (in any order); returns the result to keep."""

    def __init__(self, starts: dict, expected: dict[int, int] | None = None):
        self.starts = starts
        self.bytes_up: dict[int, int] = {}  # as each upload travelled, compressed or not
        self.norms: dict[int, float] = {}  # streamed updates' norms (screening needs no update)
        self.mean = RunningMean(expected) if expected else None

    def __call__(self, res: Result) -> Result:
        self.bytes_up[res.client] = payload_bytes(res.state)
        res = restored(res, self.starts)
        if self.mean is None:
            return res
        if res.client in self.mean.alpha:
            self.norms[res.client] = update_norm(res.state, self.starts[res.start])
            self.mean.add(res.client, res.state)
        return dataclasses.replace(res, state=None)  # a straggler's update is never aggregated: not kept either
