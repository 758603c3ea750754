"""One server round in named phases: sample, broadcast, train, account, screen, aggregate, score."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from bench.config import ExperimentConfig
from bench.engine import faults, secure_phase
from bench.engine.sampling import sample_clients
from bench.federation.comm import GLOBAL, tensor_bytes
from bench.federation.compress import Packed, payload_bytes, restore_state
from bench.federation.dp_ledger import DpLedger
from bench.federation.secagg_client import Refused


@dataclasses.dataclass(frozen=True)
class RoundContext:
    """What every round of a run works with."""

    cfg: ExperimentConfig
    method: object  # the configured method (bench.registry.METHODS)
    backend: object  # serial, local or Ray: trains jobs and evaluates states
    task: object  # the PreparedTask
    dp: DpLedger
    info: dict = dataclasses.field(default_factory=dict)  # the worker's info(): blocks, block_prefix, ...


@dataclasses.dataclass(frozen=True)
class Draw:
    """Sample: the round's jobs, the clients that dropped out and those that will be late."""

    jobs: list
    dropped: set[int]
    late: set[int]
    reached: list  # the jobs whose clients received the model


@dataclasses.dataclass(frozen=True)
class Broadcast:
    """Broadcast: the state each job starts from, the secure round (or None), the bytes sent."""

    starts: dict
    secure: secure_phase.SecurePhase | None
    bytes_down: int


@dataclasses.dataclass(frozen=True)
class Training:
    """Train: every result that came back (uploads restored), the clients lost, those on time."""

    trained: list
    lost: set[int]
    on_time: list  # a straggler's update misses the deadline
    bytes_up: int

    @property
    def loss(self) -> float | None:
        return float(np.mean([res.loss for res in self.trained])) if self.trained else None


@dataclasses.dataclass(frozen=True)
class Scores:
    """Score: validation every round, test every `test_every` rounds (else none)."""

    val: list[dict]
    test: list[dict]
    tested: bool


def mean_metric(scores: list[dict]) -> float:
    return float(np.mean([s["metric"] for s in scores]))


def sample(ctx: RoundContext, r: int) -> Draw:
    """Who trains in round r, and which of them drop out or straggle (only a federated method's)."""
    jobs = ctx.method.round_jobs(ctx.task.clients, sample_clients(ctx.cfg, r))
    moved = ctx.method.communicates
    dropped, late = faults.absent_clients(ctx.cfg, r, [j.client for j in jobs]) if moved else (set(), set())
    return Draw(jobs, dropped, late, [j for j in jobs if j.client not in dropped])


def broadcast(ctx: RoundContext, r: int, draw: Draw, states: dict) -> Broadcast:
    """The states the jobs start from and, with secure aggregation, the round the reached clients join."""
    starts = {job.start: states.get(job.start, states[GLOBAL]) for job in draw.jobs}
    secure = secure_phase.open_round(ctx, r, draw.reached, states[GLOBAL], draw.late) if draw.reached else None
    sent = sum(tensor_bytes(starts[j.start]) for j in draw.reached) if ctx.method.communicates else 0
    return Broadcast(starts, secure, sent)


def _restored(res, starts: dict):
    """A result whose upload was compressed, with its state rebuilt the way the server does."""
    if not isinstance(res.state, dict) or not any(isinstance(v, Packed) for v in res.state.values()):
        return res
    return dataclasses.replace(res, state=restore_state(res.state, starts[res.start]))


def train(ctx: RoundContext, r: int, draw: Draw, sent: Broadcast, residuals: dict) -> Training:
    """The reached clients train; their uploads are counted as they travel, then restored."""
    secure = sent.secure.layout if sent.secure else None  # each worker masks with its own clients' secrets
    trained, lost = ctx.backend.train(sent.starts, draw.reached, r, residuals, secure) if draw.reached else ([], set())
    up = {res.client: payload_bytes(res.state) for res in trained}  # as they travel, compressed or not
    trained = [_restored(res, sent.starts) for res in trained]
    residuals.update({res.client: res.residual for res in trained if res.residual is not None})
    on_time = [res for res in trained if res.client not in draw.late]
    bytes_up = sum(up[res.client] for res in trained) if ctx.method.communicates else 0  # late and rejected: sent
    return Training(trained, lost, on_time, bytes_up)


def screen(ctx: RoundContext, training: Training, sent: Broadcast) -> tuple[list, dict[int, str]]:
    """The updates the aggregate takes, and those rejected (client -> why)."""
    if sent.secure:  # masked uploads: only their sum is ever seen; a client may refuse a non-finite update
        refused = {res.client: res.state.reason for res in training.on_time if isinstance(res.state, Refused)}
        return [res for res in training.on_time if res.client not in refused], refused
    if not ctx.method.communicates:
        return training.on_time, {}
    return faults.screen_updates(training.on_time, sent.starts)


def aggregate(
    ctx: RoundContext, r: int, states: dict, results: list, training: Training, secure: secure_phase.SecurePhase | None
) -> tuple[dict, dict]:
    """The new states, and what secure aggregation adds to the round line ({} without it)."""
    if secure:  # the server receives every on-time message, a refusal included (screen only names them)
        on_time = {res.client for res in training.on_time}
        late = [res for res in training.trained if res.client not in on_time]  # sent, received, not summed
        return secure_phase.aggregate(ctx, secure, states, training.on_time, late, r)
    if ctx.dp.client_level:  # DP-FedAvg noises every round, even an empty one
        return {GLOBAL: ctx.dp.fedavg(states[GLOBAL], [res.state for res in results], r)}, {}
    return (ctx.method.combine(states, results) if results else states), {}


def validate(ctx: RoundContext, states: dict) -> list[dict]:
    """The validation scores of the states the method reports (one, or one per client for `local`)."""
    return ctx.backend.evaluate_many([(states[k], "validation", None) for k in ctx.method.eval_keys(states)])


def score(ctx: RoundContext, r: int, states: dict) -> Scores:
    """Validation is scored every round (choices are made on it); test every `test_every`
    rounds, for curves only."""
    keys = ctx.method.eval_keys(states)
    val = validate(ctx, states)
    tested = bool(ctx.cfg.test_every and (r + 1) % ctx.cfg.test_every == 0)
    test = ctx.backend.evaluate_many([(states[k], "test", None) for k in keys]) if tested else []
    return Scores(val, test, tested)


def play_round(r: int, ctx: RoundContext, states: dict, residuals: dict | None = None) -> tuple[dict, dict]:
    """One round, phase by phase; -> (states, round line). Raises Diverged when the new model
    gives NaN/Inf in evaluation."""
    t0 = time.perf_counter()
    residuals = {} if residuals is None else residuals
    draw = sample(ctx, r)
    sent = broadcast(ctx, r, draw, states)
    training = train(ctx, r, draw, sent, residuals)
    ctx.dp.record(training.trained)  # account: stragglers and rejected clients trained too: their privacy is spent
    results, rejected = screen(ctx, training, sent)
    states, secure_line = aggregate(ctx, r, states, results, training, sent.secure)
    scores = score(ctx, r, states)
    train_s = sum(res.train_s for res in training.trained)
    return states, {
        "round": r + 1,
        "val_metric": mean_metric(scores.val),
        "metric": mean_metric(scores.test) if scores.tested else None,
        "bytes_down": sent.bytes_down,
        "bytes_up": training.bytes_up,
        "train_loss": training.loss,
        "clients": [res.client for res in results],
        "dropped": sorted(draw.dropped),
        "stragglers": sorted(draw.late),
        "lost": sorted(training.lost),
        "rejected": {str(c): why for c, why in sorted(rejected.items())},
        "epsilon": ctx.dp.epsilon(),
        "compute_s": round(train_s + sum(s["eval_s"] for s in scores.val + scores.test), 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        **secure_line,
    }
