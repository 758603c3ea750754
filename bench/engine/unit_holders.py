"""Which clients hold rows of one privacy unit. DP-SGD by document or patient accounts in each
client, so a unit whose rows sit at several clients (an iid split deals a document's sentences
out one by one) is in several mechanisms and spends at each: its loss is their composition,
which the run calibrates for and reports (bench.federation.dp_calibration.plan, DpLedger.epsilon).
Which sets count is `dp_unit_holders`: those the data show, or every training client."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from bench.federation.privacy import client_level


def shared_holders(cfg, task, trained: dict) -> tuple[tuple[int, ...], ...]:
    """The largest distinct sets of two or more training clients (client -> the examples it
    trains on) that share a unit (none by row, at client level or without DP); a subset's
    composition never spends more than its superset's. `dp_unit_holders: observed` reads the
    sets from the data: a single patient spanning two hospitals adds one, and raises the noise,
    so the noise tells where units sit. `all` takes every training client as one set whatever
    the data hold (a patient may have been at every hospital): the noise multiplier then depends
    on the clients' sizes and rounds only (each client's update is still divided by its count
    of units: README, known DP limits)."""
    if not cfg.private or client_level(cfg) or cfg.dp_unit == "row":
        return ()
    if cfg.dp_unit_holders == "all":
        training = tuple(sorted(client for client, examples in trained.items() if len(examples)))
        return (training,) if len(training) > 1 else ()
    units = task.train_units[cfg.dp_unit]
    holders = defaultdict(set)
    for client, examples in trained.items():
        for unit in np.unique(units[task.train.rows(examples)]).tolist():
            holders[unit].add(client)
    sets = {frozenset(s) for s in holders.values() if len(s) > 1}
    largest = [s for s in sets if not any(s < other for other in sets)]
    return tuple(sorted(tuple(sorted(s)) for s in largest))
