"""When a run has converged (or is dead on its starting plateau): the early-stopping test, and the
label the report gives a stored run."""

from __future__ import annotations

import math

from bench.config import SETTING_DEFAULTS

FLAT_LIMIT = 15  # rounds on the starting plateau after which a run is dead, not slow to start


def finite(val_metrics: list[float]) -> list[float]:
    """The rounds with a score: a NaN would make max() depend on order and every comparison false."""
    return [v for v in val_metrics if v is not None and math.isfinite(v)]


def gained_less(val_metrics: list[float], patience: int, min_delta: float) -> bool:
    """The patience rule: the last `patience` rounds raised the best validation metric by less
    than `min_delta` (False until there are rounds before them)."""
    return len(val_metrics) > patience and max(val_metrics[-patience:]) - max(val_metrics[:-patience]) < min_delta


def on_start_plateau(val_metrics: list[float], patience: int, min_delta: float, start: float | None = None) -> bool:
    """The last `patience` rounds all lie at most `min_delta` above the untrained model's score
    (`start`): one spike earlier does not take a run off the plateau, nor does falling below the
    start (an untrained NER model scores a little above 0, F1 0.012 on NCBI, and one that has
    learned to predict only `O` scores 0 before it finds entities). Runs stored without that
    score measure from round 1's, already a trained model's: there, falling away is movement."""
    if start is None:
        return all(abs(v - val_metrics[0]) <= min_delta for v in val_metrics[-patience:])
    return all(v - start <= min_delta for v in val_metrics[-patience:])


def stalled(val_metrics: list[float], patience: int, min_delta: float, start: float | None = None) -> bool:
    """True when the last `patience` rounds raised the best validation metric by less than
    `min_delta` (so: converged, and with early stopping, time to stop). Not while the run is on
    its starting plateau (on_start_plateau): a model still at F1 0, the majority class, may be
    slow to start (on NCBI, LoRA at 1e-2 left F1 0 in round 5, layerskip top:2 at 3e-3 in round
    15, then climbed to 0.51 by round 50), unless it has been there FLAT_LIMIT rounds: then it has stalled
    where it began (the report's checks name such a run)."""
    val_metrics = finite(val_metrics)
    if len(val_metrics) <= patience:
        return False
    if on_start_plateau(val_metrics, patience, min_delta, start):
        return len(val_metrics) >= FLAT_LIMIT
    return gained_less(val_metrics, patience, min_delta)


def convergence(val_metrics: list[float], untrained: float | None, patience: int, min_delta: float) -> str:
    """What a stored run's history says about how it ended, for the report:

    - `dead`: it never rose more than `min_delta` above the untrained model's validation score,
      or its last `patience` rounds fell back to within `min_delta` of it (one spike does not make
      a run alive). Runs stored before the untrained score was recorded are measured against 0.
    - `converged`: otherwise, the patience rule holds at its end (no gain above `min_delta` in the
      last `patience` rounds).
    - `capped`: otherwise: the round cap ended a run that was still improving.
    A run that never left where it started is dead however it stopped, so `dead` is tested first."""
    val_metrics = finite(val_metrics)
    base = 0.0 if untrained is None else untrained
    if not val_metrics or max(val_metrics) - base <= min_delta:
        return "dead"
    if len(val_metrics) >= patience and all(v - base <= min_delta for v in val_metrics[-patience:]):
        return "dead"
    if gained_less(val_metrics, patience, min_delta):
        return "converged"
    return "capped"


def run_convergence(run: dict) -> str:
    """converged / capped / dead, from a stored run's validation curve (bench.engine.convergence)."""
    cfg = {**SETTING_DEFAULTS, **run["config"]}
    curve = [line["val_metric"] for line in run.get("history", [])]
    return convergence(curve, run.get("untrained_val_metric"), cfg["patience"], cfg["min_delta"])
