"""The server's run: prepare the task, play the rounds, keep the best state, checkpoint, write final.json."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from bench.config import ExperimentConfig
from bench.data.partition_view import stored_view
from bench.engine import execution, heap, summary
from bench.engine.convergence import stalled
from bench.engine.fork_server import warm_up
from bench.engine.local_backend import LocalBackend
from bench.engine.prepare import prepare_task
from bench.engine.rounds import RoundContext, mean_metric, play_round, validate
from bench.engine.sampling import planned_work
from bench.engine.serial import SerialBackend
from bench.engine.stop_clock import StopClock
from bench.engine.training import Diverged
from bench.engine.unit_holders import shared_holders
from bench.errors import BenchError
from bench.federation import dp_calibration
from bench.federation.comm import GLOBAL
from bench.federation.dp_ledger import DpLedger, client_level
from bench.registry import METHODS
from bench.seeding import seeded_torch
from bench.store import atomic_write_json, atomic_write_text, load_checkpoint, save_checkpoint, write_rounds

# play_round and write_rounds are looked up here at call time: tests patch them on this module


def _ray(cfg, task, dp):
    from bench.engine.ray_backend import RayBackend  # Ray is imported only when asked for

    return RayBackend(cfg, task, dp)


def _nothing() -> None:
    pass


@dataclasses.dataclass(frozen=True)
class BackendKind:
    build: Callable  # (cfg, task, dp) -> the backend
    warm_up: Callable[[], None] = _nothing  # called before the task is prepared, to overlap with it


# local: the fork server imports the worker's modules while this process tokenizes
BACKENDS = {"serial": BackendKind(SerialBackend), "local": BackendKind(LocalBackend, warm_up), "ray": BackendKind(_ray)}


CUT_WARN_SHARE = 0.05
EXTENDABLE = frozenset({"rounds", "patience"})  # a grid raises these to continue a stored run


def warn_if_cut(encoding: dict, enabled: bool) -> None:
    """Say so when more than 5% of a split's examples were split into chunks or truncated."""
    for split, counts in encoding.items():
        cut = counts.get("sentences_split", 0) + counts.get("documents_truncated", 0)
        if enabled and counts["examples"] and cut / counts["examples"] > CUT_WARN_SHARE:
            what = "split into chunks" if "sentences_split" in counts else "truncated to max_length"
            print(f"warning: {cut} of {counts['examples']} {split} examples were {what} (raise max_length?)")


@dataclasses.dataclass
class RunState:
    """What a run carries from round to round, kept in its checkpoint so that it can resume."""

    states: dict
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict | None = None  # {"round", "val_metric", "states"} of the best validation round
    accountants: dict = dataclasses.field(default_factory=dict)  # client (or "server") -> RDP history
    # client -> what error feedback kept back (held by the client)
    residuals: dict = dataclasses.field(default_factory=dict)
    status: str = "ok"  # or "diverged"; not checkpointed: a diverged run stops
    untrained: float | None = None  # the validation metric before round 1: what "dead" is measured against
    settings: dict = dataclasses.field(default_factory=dict)  # the computed settings it runs under

    @classmethod
    def from_checkpoint(cls, ckpt: dict, initial: Callable[[], dict], settings: dict) -> RunState:
        """The checkpoint's state (`resumable`), or a fresh run from `initial()`'s global state."""
        return cls(
            settings=settings,
            states=ckpt.get("states") or {GLOBAL: initial()},
            history=ckpt.get("history", []),
            best=ckpt.get("best"),
            accountants=ckpt.get("accountants", {}),
            residuals=ckpt.get("residuals", {}),
            untrained=ckpt.get("untrained"),
        )

    def val_metrics(self) -> list[float]:
        return [h["val_metric"] for h in self.history]

    def record(self, line: dict, states: dict) -> None:
        """A played round: its line, its states, and whether they are the best so far."""
        self.states = states
        self.history.append(line)
        if math.isfinite(line["val_metric"]) and (self.best is None or line["val_metric"] > self.best["val_metric"]):
            self.best = {"round": line["round"], "val_metric": line["val_metric"], "states": states}

    def save(self, out: Path) -> None:
        """checkpoint.pt, then rounds.jsonl from the same history."""
        save_checkpoint(
            out / "checkpoint.pt",
            {
                "states": self.states,
                "history": self.history,
                "accountants": self.accountants,
                "best": self.best,
                "residuals": self.residuals,
                "untrained": self.untrained,
                "settings": self.settings,
            },
        )
        write_rounds(out / "rounds.jsonl", self.history)


def resumable(path: Path, settings: dict) -> dict:
    """The checkpoint at `path` ({} if none), refused when it was written under other computed
    settings (a seeded run resumed with --secure-rng would report seeded rounds as secure), but
    for the round cap and patience, which a grid raises to extend a run (bench.protocol.extend);
    not the round cap of a run whose noise is calibrated to --dp-epsilon for it.
    Checked before the run writes anything; checkpoints from before 2026-12-06 hold no settings."""
    ckpt = load_checkpoint(path) or {}
    stored = ckpt.get("settings") or {}
    # noise calibrated to --dp-epsilon is sized for the round cap: more rounds would spend past it
    extendable = EXTENDABLE - ({"rounds"} if settings.get("dp_epsilon") is not None else set())
    changed = sorted(k for k in (stored.keys() | settings.keys()) - extendable if stored.get(k) != settings.get(k))
    if stored and changed:
        key = changed[0]
        raise BenchError(
            f"{path} was written with {key}={stored.get(key)!r}, this run has {key}={settings.get(key)!r}"
            f" ({len(changed)} setting(s) differ): resume with the same settings, or use another --out"
        )
    return ckpt


def run_experiment(cfg: ExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """Run one experiment into `out` (rounds.jsonl, final.json, test_items.json, checkpoint.pt);
    resumes if possible. The reported model is the state of the best validation round."""
    out, asked = Path(out), cfg
    settings = asked.computed_settings()
    ckpt = resumable(out / "checkpoint.pt", settings)
    cfg, method, task, probe = _prepare(cfg, progress)
    rows, rounds, trained = planned_work(cfg, method, task)
    plan = dp_calibration.plan(cfg, rows, rounds, shared_holders(cfg, task, trained))
    backend = BACKENDS[cfg.resolved_backend].build(cfg, task, plan)
    if progress:
        print(execution.describe(cfg), file=sys.stderr)
    try:
        with StopClock() as clock:  # each round records the seconds it was stopped
            info = backend.info()
            # written once the workers hold a configured model: a run refused before leaves no file
            atomic_write_json(out / "partition.json", stored_view(task.partition, cfg.private))
            run = RunState.from_checkpoint(ckpt, backend.initial_state, settings)
            dp = DpLedger(cfg, plan, run.accountants)  # records into the run's accountants, which the checkpoint keeps
            ctx = RoundContext(cfg, method, backend, task, dp, info, clock)
            if not run.history:  # scored once, before round 1 (a run resumed from an older checkpoint has none)
                run.untrained = mean_metric(validate(ctx, run.states))
            _play(ctx, run, out, progress)
            final = _final(asked, ctx, run, info, probe, out)
    finally:
        backend.close()
    atomic_write_json(out / "final.json", final)
    return final


def _prepare(cfg: ExperimentConfig, progress: bool) -> tuple[ExperimentConfig, object, object, dict | None]:
    """The prepared task, and the config and method as the method resolved them on it (with its
    probe's record, if it ran one)."""
    method = METHODS.get(cfg.method)(cfg)
    if client_level(cfg) and not method.communicates:
        raise BenchError(f"client-level DP needs a federated method; {cfg.method!r} sends no updates")
    if client_level(cfg) and not method.secure_aggregable:  # DP-FedAvg's clipped mean would replace its combine
        raise BenchError(f"client-level DP aggregates by DP-FedAvg's noised mean: {cfg.method!r} combines otherwise")
    if cfg.secagg == "on" and not (method.communicates and method.secure_aggregable):  # before any data or model
        raise BenchError(f"--secagg on: method {cfg.method!r} does not aggregate a weighted mean of uploads")
    BACKENDS[cfg.resolved_backend].warm_up()
    task = prepare_task(cfg)
    warn_if_cut(task.encoding, progress)
    with seeded_torch("method_resolve", cfg.seed):  # a probe that draws from torch: from the seed
        cfg, probe = method.resolve(task)
    return cfg, METHODS.get(cfg.method)(cfg), task, probe  # configured with what was resolved (e.g. the probe's blocks)


def _play(ctx: RoundContext, run: RunState, out: Path, progress: bool) -> None:
    """The rounds still to play, each checkpointed, until the last, an early stop or divergence."""
    cfg = ctx.cfg
    bar = _progress(cfg, len(run.history), progress)
    for r in range(len(run.history), cfg.rounds):
        if cfg.early_stop and stalled(run.val_metrics(), cfg.patience, cfg.min_delta, run.untrained):
            break
        try:
            states, line = play_round(r, ctx, run.states, run.residuals)
        except Diverged:
            run.status = "diverged"
            break
        run.record(line, states)
        if line["dropped"] or line["stragglers"] or line["lost"] or line["rejected"]:  # ids and reasons only
            bar.write(
                f"round {r + 1}: dropped {line['dropped']}, stragglers {line['stragglers']}, "
                f"lost {line['lost']}, rejected {line['rejected']}"
            )
        run.save(out)
        heap.trim()  # this round's client states are gone
        bar.update(1)
        bar.set_postfix(val=f"{line['val_metric']:.3f}")
    bar.close()


def _final(asked: ExperimentConfig, ctx: RoundContext, run: RunState, info: dict, probe, out: Path) -> dict:
    """final.json; a run that finished also gets its best state's test scores and test_items.json."""
    method, backend, task = ctx.method, ctx.backend, ctx.task
    final = summary.record(asked.with_settings(lr=asked.lr or method.default_lr), run.history, info, run.status)
    final.update(
        task_kind=task.kind,
        n_labels=len(task.output_labels),
        encoding=task.encoding,
        execution=execution.describe(ctx.cfg),
    )
    final["bytes_up_total"] += (probe or {}).get("probe_bytes_up", 0)  # what a probe sent counts too
    if run.status == "ok":
        scores, items = summary.best_scores(method, backend, task, run.best, run.states, run.history, run.untrained)
        final.update(scores)
        compact = json.dumps(items, separators=(",", ":"))  # compact: one row per example
        atomic_write_text(out / "test_items.json", compact + "\n")
        groups = json.dumps(task.test_groups, separators=(",", ":"))  # ids only: what the bootstrap resamples
        atomic_write_text(out / "test_groups.json", groups + "\n")
    final["epsilon"], final["layer_probe"] = ctx.dp.epsilon(), probe
    final["prefix_cache"] = summary.cache_summary(backend.cache_reports())  # after the last scoring: it fills it too
    final["dp"] = ctx.dp.summary()
    final["untrained_val_metric"] = run.untrained
    final["secure_rng"] = ctx.cfg.secure_rng  # true: DP noise from OS entropy, not reproducible from the seed
    if "source_fingerprint" in (identity := asked.identity_settings()):  # which version of an hf: dataset ran
        final["source_fingerprint"] = identity["source_fingerprint"]
    if ctx.cfg.secagg == "on":  # the fewest clients any tensor's sum was taken over (after dropouts)
        final["secagg_min_holders"] = min(
            (h["secagg_min_holders"] for h in run.history if h.get("secagg_min_holders") is not None), default=None
        )  # masked sums only: a lone round's one upload is counted apart
        final["secagg_lone_rounds"] = sum(1 for h in run.history if h.get("secagg_lone_round"))
    return final


def _progress(cfg: ExperimentConfig, done: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.rounds, initial=done, desc=f"{cfg.task} {cfg.method}", unit="round", disable=not enabled, leave=False
    )
