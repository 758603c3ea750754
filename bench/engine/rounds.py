"""One server round in named phases: sample, broadcast, train, account, screen, aggregate, score."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from bench.config import ExperimentConfig
from bench.engine import faults, secure_phase
from bench.engine.arrivals import Arrivals, streams
from bench.engine.sampling import sample_clients
from bench.engine.stop_clock import StopClock
from bench.federation.comm import GLOBAL, tensor_bytes
from bench.federation.dp_ledger import DpLedger, client_level
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
    clock: StopClock | None = None  # records the seconds the process was stopped (a paused queue)


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
    withheld: str | None = None  # why no one trains this round (secure_phase.Withheld)


@dataclasses.dataclass(frozen=True)
class Training:
    """Train: every result that came back (uploads restored; a streamed round's without their
    states, which went into the running mean), the clients lost, those on time."""

    trained: list
    lost: set[int]
    on_time: list  # a straggler's update misses the deadline
    bytes_up: int
    arrivals: Arrivals
    jobs: dict  # client -> its job, to train again (bench.engine.arrivals)

    @property
    def loss(self) -> float | None:
        losses = [res.loss for res in self.trained if res.loss is not None]  # none under DP
        return float(np.mean(losses)) if losses else None

    @property
    def streamed(self) -> bool:
        return self.arrivals.mean is not None


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
    try:
        secure = secure_phase.open_round(ctx, r, draw.reached, states[GLOBAL]) if draw.reached else None
    except secure_phase.Withheld as e:
        return Broadcast(starts, None, 0, str(e))
    sent = sum(tensor_bytes(starts[j.start]) for j in draw.reached) if ctx.method.communicates else 0
    return Broadcast(starts, secure, sent)


def train(ctx: RoundContext, r: int, draw: Draw, sent: Broadcast, residuals: dict) -> Training:
    """The reached clients train; each upload is counted as it travels and restored as it
    arrives, and where the aggregate streams, added to the running mean (bench.engine.arrivals)."""
    secure = sent.secure.layout if sent.secure else None  # each worker masks with its own clients' secrets
    expected = {j.client: len(j.examples) for j in draw.reached if j.client not in draw.late}
    arrivals = Arrivals(sent.starts, expected if expected and streams(ctx, sent.secure) else None)
    trained, lost = (
        ctx.backend.train(sent.starts, draw.reached, r, residuals, secure, receive=arrivals)
        if draw.reached
        else ([], set())
    )
    residuals.update({res.client: res.residual for res in trained if res.residual is not None})
    on_time = [res for res in trained if res.client not in draw.late]
    up = arrivals.bytes_up
    bytes_up = sum(up[res.client] for res in trained) if ctx.method.communicates else 0  # late and rejected: sent
    return Training(trained, lost, on_time, bytes_up, arrivals, {j.client: j for j in draw.reached})


def screen(ctx: RoundContext, training: Training, sent: Broadcast) -> tuple[list, dict[int, str]]:
    """The updates the aggregate takes, and those rejected (client -> why)."""
    if sent.secure:  # masked uploads: only their sum is ever seen; a client may refuse a non-finite update
        refused = {res.client: res.state.reason for res in training.on_time if isinstance(res.state, Refused)}
        return [res for res in training.on_time if res.client not in refused], refused
    if not ctx.method.communicates:
        return training.on_time, {}
    outliers = not client_level(ctx.cfg)  # under client-level DP only non-finite updates (faults.screen_norms)
    if training.streamed:  # the norms were taken as the updates arrived
        norms = {res.client: training.arrivals.norms[res.client] for res in training.on_time}
        rejected = faults.screen_norms(norms, outliers)
        return [res for res in training.on_time if res.client not in rejected], rejected
    return faults.screen_updates(training.on_time, sent.starts, outliers)


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
    if training.streamed:
        return ({GLOBAL: streamed_mean(ctx, r, results, training, states)} if results else states), {}
    return (ctx.method.combine(states, results) if results else states), {}


def streamed_mean(ctx: RoundContext, r: int, results: list, training: Training, starts: dict) -> dict:
    """The running mean, when every expected update was kept; otherwise the kept clients train
    again into a mean over themselves (the same updates: training is seeded), until none is lost."""
    mean, kept = training.arrivals.mean, {res.client: res.n_samples for res in results}
    while set(kept) != set(mean.alpha):
        again = Arrivals(starts, kept)
        trained, _ = ctx.backend.train(starts, [training.jobs[c] for c in sorted(kept)], r, receive=again)
        mean, kept = again.mean, {res.client: res.n_samples for res in trained}
    return mean.result()


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


def _stopped_s(ctx: RoundContext) -> float:
    return ctx.clock.stopped_s() if ctx.clock else 0.0


def play_round(r: int, ctx: RoundContext, states: dict, residuals: dict | None = None) -> tuple[dict, dict]:
    """One round, phase by phase; -> (states, round line). Raises Diverged when the new model
    gives NaN/Inf in evaluation."""
    t0, stopped0 = time.perf_counter(), _stopped_s(ctx)
    residuals = {} if residuals is None else residuals
    draw = sample(ctx, r)
    sent = broadcast(ctx, r, draw, states)
    if sent.withheld:  # no one trains; DP-FedAvg's noise alone is released
        draw = dataclasses.replace(draw, reached=[])
    training = train(ctx, r, draw, sent, residuals)
    ctx.dp.record(training.trained)  # account: stragglers and rejected clients trained too: their privacy is spent
    results, rejected = screen(ctx, training, sent)
    states, secure_line = aggregate(ctx, r, states, results, training, sent.secure)
    scores = score(ctx, r, states)
    train_s = sum(res.train_s for res in training.trained)
    paused = _stopped_s(ctx) - stopped0  # read before the wall clock: a stop between the two is in both
    wall = time.perf_counter() - t0
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
        "wall_s": round(wall, 3),
        "paused_s": round(min(paused, wall), 3),  # of wall_s, stopped (bench.protocol.run_time)
        **secure_line,
        **({"secagg_failed": f"withheld: {sent.withheld}"} if sent.withheld else {}),
    }
