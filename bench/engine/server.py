"""The server's round loop: sample, broadcast, train, aggregate, evaluate, checkpoint."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.config import ExperimentConfig
from bench.engine import execution, faults, heap
from bench.engine.cells import node_identity
from bench.engine.local_backend import LocalBackend, warm_up
from bench.engine.prepare import prepare_task
from bench.engine.serial import SerialBackend
from bench.engine.training import Diverged
from bench.errors import BenchError
from bench.federation import privacy
from bench.federation.comm import GLOBAL, tensor_bytes
from bench.federation.compress import Packed, payload_bytes, restore_state
from bench.federation.secagg import Quantiser, SecAggFailure, SecureRound
from bench.registry import METHODS
from bench.seeding import seed_of, seeded_torch, stream
from bench.store import (
    atomic_write_json,
    atomic_write_text,
    git_state,
    load_checkpoint,
    save_checkpoint,
    versions,
    write_rounds,
)


def _serial(cfg, task, dp):

    return SerialBackend(cfg, task, dp)


def _ray(cfg, task, dp):
    from bench.engine.ray_backend import RayBackend  # Ray is imported only when asked for

    return RayBackend(cfg, task, dp)


def _local(cfg, task, dp):

    return LocalBackend(cfg, task, dp)


def _local_warm_up() -> None:

    warm_up()  # the fork server's imports run while this process tokenizes


def _nothing() -> None:
    pass


@dataclasses.dataclass(frozen=True)
class BackendKind:
    build: Callable  # (cfg, task, dp) -> the backend
    warm_up: Callable[[], None] = _nothing  # called before the task is prepared, to overlap with it


BACKENDS = {"serial": BackendKind(_serial), "local": BackendKind(_local, _local_warm_up), "ray": BackendKind(_ray)}


def client_rate(cfg: ExperimentConfig) -> float:
    """The chance a client takes part in a round: K/N."""
    return cfg.per_round / cfg.clients


def poisson_clients(cfg: ExperimentConfig) -> bool:
    """Client-level DP is accounted for Poisson sampling, so clients are drawn that way under it."""
    return cfg.private and cfg.dp_level == "client" and cfg.per_round < cfg.clients


def sample_clients(cfg: ExperimentConfig, round_: int) -> list[int]:
    """Clients for this round, from (seed, round) alone so a resumed run samples the same: K of
    N without replacement, or, under client-level DP, each client with probability K/N (the
    sampling its accountant assumes; a round may then have any number of clients, even none)."""
    rng = stream("client_sampling", cfg.seed, round_)
    if poisson_clients(cfg):
        return np.flatnonzero(rng.random(cfg.clients) < client_rate(cfg)).tolist()
    return sorted(rng.choice(cfg.clients, size=cfg.per_round, replace=False).tolist())


def planned_work(cfg: ExperimentConfig, method, task) -> tuple[list[int], list[int]]:
    """Each client's training rows and the rounds it will train in (for DP calibration)."""
    rows, rounds = {}, {}
    for r in range(cfg.rounds):
        for job in method.round_jobs(task.clients, sample_clients(cfg, r)):
            rows[job.client] = len(task.train.rows(job.examples))
            rounds[job.client] = rounds.get(job.client, 0) + 1
    clients = sorted(rows)
    return [rows[c] for c in clients], [rounds[c] for c in clients]


def spent_epsilon(accountants: dict, dp) -> float | None:
    """The largest epsilon any accountant (a client's, or the server's) has spent so far."""
    if dp is None:
        return None
    return max((privacy.epsilon_of(h, dp.delta) for h in accountants.values()), default=0.0)


CUT_WARN_SHARE = 0.05


def warn_if_cut(encoding: dict, enabled: bool) -> None:
    """Say so when more than 5% of a split's examples were split into chunks or truncated."""
    for split, counts in encoding.items():
        cut = counts.get("sentences_split", 0) + counts.get("documents_truncated", 0)
        if enabled and counts["examples"] and cut / counts["examples"] > CUT_WARN_SHARE:
            what = "split into chunks" if "sentences_split" in counts else "truncated to max_length"
            print(f"warning: {cut} of {counts['examples']} {split} examples were {what} (raise max_length?)")


FLAT_LIMIT = 15  # rounds on the starting plateau after which a run is dead, not slow to start


def stalled(val_metrics: list[float], patience: int, min_delta: float) -> bool:
    """True when the last `patience` rounds raised the best validation metric by less than
    `min_delta` (so: converged, and with early stopping, time to stop). Not while every round's
    metric lies within `min_delta` of the others: a model still on its starting plateau (F1 0,
    the majority class) may be slow to start (on NCBI, LoRA at 1e-2 left F1 0 in round 5,
    layerskip top:2 at 3e-3 in round 15 and never passed 0.14), unless it has stayed there for
    FLAT_LIMIT rounds: then it has stalled where it began (the report's checks name such a run)."""
    if len(val_metrics) <= patience:
        return False
    if max(val_metrics) - min(val_metrics) < min_delta:
        return len(val_metrics) >= FLAT_LIMIT
    return max(val_metrics[-patience:]) - max(val_metrics[:-patience]) < min_delta


def run_experiment(cfg: ExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """Run one experiment into `out` (rounds.jsonl, final.json, test_items.json, checkpoint.pt);
    resumes if possible. The reported model is the state of the best validation round."""
    out = Path(out)
    method = METHODS.get(cfg.method)(cfg)
    if cfg.private and cfg.dp_level == "client" and not method.communicates:
        raise BenchError(f"client-level DP needs a federated method; {cfg.method!r} sends no updates")
    BACKENDS[cfg.resolved_backend].warm_up()
    task = prepare_task(cfg)
    atomic_write_json(out / "partition.json", task.partition)
    warn_if_cut(task.encoding, progress)
    asked = cfg
    with seeded_torch("method_resolve", cfg.seed):  # a probe that draws from torch: from the seed
        cfg, probe = method.resolve(task)
    method = METHODS.get(cfg.method)(cfg)  # configured with what was resolved (e.g. the probe's blocks)
    dp = privacy.plan(cfg, *planned_work(cfg, method, task))
    backend = BACKENDS[cfg.resolved_backend].build(cfg, task, dp)
    if progress:
        print(execution.describe(cfg), file=sys.stderr)
    try:
        info = backend.info()
        ckpt = load_checkpoint(out / "checkpoint.pt") or {}
        states = ckpt.get("states") or {GLOBAL: backend.initial_state()}
        history, best = ckpt.get("history", []), ckpt.get("best")  # best: {"round", "val_metric", "states"}
        accountants = ckpt.get("accountants", {})  # client (or "server") -> RDP history
        residuals = ckpt.get("residuals", {})  # client -> what error feedback kept back (held by the client)
        status = "ok"
        bar = _progress(cfg, len(history), progress)
        for r in range(len(history), cfg.rounds):
            if cfg.early_stop and stalled([h["val_metric"] for h in history], cfg.patience, cfg.min_delta):
                break
            try:
                states, line = play_round(r, cfg, method, backend, task, dp, states, accountants, residuals)
            except Diverged:
                status = "diverged"
                break
            history.append(line)
            if best is None or line["val_metric"] > best["val_metric"]:
                best = {"round": line["round"], "val_metric": line["val_metric"], "states": states}
            if line["dropped"] or line["stragglers"] or line["lost"] or line["rejected"]:  # ids and reasons only
                bar.write(
                    f"round {r + 1}: dropped {line['dropped']}, stragglers {line['stragglers']}, "
                    f"lost {line['lost']}, rejected {line['rejected']}"
                )
            save_checkpoint(
                out / "checkpoint.pt",
                {
                    "states": states,
                    "history": history,
                    "accountants": accountants,
                    "best": best,
                    "residuals": residuals,
                },
            )
            write_rounds(out / "rounds.jsonl", history)
            heap.trim()  # this round's client states are gone
            bar.update(1)
            bar.set_postfix(val=f"{line['val_metric']:.3f}")
        bar.close()
        final = _record(asked.with_settings(lr=asked.lr or method.default_lr), history, info, status)
        final.update(
            task_kind=task.kind,
            n_labels=len(task.output_labels),
            encoding=task.encoding,
            execution=execution.describe(cfg),
        )
        final["bytes_up_total"] += (probe or {}).get("probe_bytes_up", 0)  # what a probe sent counts too
        if status == "ok":
            scores, items = _scores(method, backend, task, best, states, history)
            final.update(scores)
            atomic_write_text(
                out / "test_items.json", json.dumps(items, separators=(",", ":")) + "\n"
            )  # compact: one row per example
        final["epsilon"], final["layer_probe"] = spent_epsilon(accountants, dp), probe
        final["prefix_cache"] = _cache_summary(
            backend.cache_reports()
        )  # after the last scoring: it fills the cache too
        final["dp"] = (
            None
            if dp is None
            else {**dataclasses.asdict(dp), "accountants": {str(k): v for k, v in accountants.items()}}
        )
    finally:
        backend.close()
    atomic_write_json(out / "final.json", final)
    return final


def _cache_summary(reports: list) -> dict | None:
    """The prefix cache over all workers: whether its disk entry existed when the run started,
    and the seconds and rows all workers spent computing it."""
    reports = [r for r in reports if r is not None]
    if not reports:
        return None
    return {
        "reused": reports[0]["reused"],
        "build_s": round(sum(r["build_s"] for r in reports), 3),
        "rows_computed": sum(r["rows_computed"] for r in reports),
    }


def _mean_metric(scores: list[dict]) -> float:
    return float(np.mean([s["metric"] for s in scores]))


def _restored(res, starts: dict):
    """A result whose upload was compressed, with its state rebuilt the way the server does."""
    if not isinstance(res.state, dict) or not any(isinstance(v, Packed) for v in res.state.values()):
        return res
    return dataclasses.replace(res, state=restore_state(res.state, starts[res.start]))


def play_round(
    r: int,
    cfg: ExperimentConfig,
    method,
    backend,
    task,
    dp,
    states: dict,
    accountants: dict,
    residuals: dict | None = None,
) -> tuple[dict, dict]:
    """One round: sample, broadcast, train, screen, aggregate, score; -> (states, round line).

    Validation is scored every round (choices are made on it); test every `test_every` rounds,
    for curves only. Raises Diverged when the new model gives NaN/Inf in evaluation.
    """
    t0 = time.perf_counter()
    residuals = {} if residuals is None else residuals
    moved = method.communicates
    jobs = method.round_jobs(task.clients, sample_clients(cfg, r))
    dropped, late = faults.absent_clients(cfg, r, [j.client for j in jobs]) if moved else (set(), set())
    reached = [j for j in jobs if j.client not in dropped]  # these received the model
    starts = {job.start: states.get(job.start, states[GLOBAL]) for job in jobs}
    secure = _secure_round(cfg, r, method, reached, states[GLOBAL], dp) if reached else None
    kits = {j.client: secure.kit(j.client) for j in reached} if secure else None
    trained, lost = backend.train(starts, reached, r, residuals, kits) if reached else ([], set())
    _account(cfg, dp, trained, accountants)  # stragglers and rejected clients trained too: their privacy is spent
    sent = {res.client: payload_bytes(res.state) for res in trained}  # as they travel, compressed or not
    trained = [_restored(res, starts) for res in trained]
    residuals.update({res.client: res.residual for res in trained if res.residual is not None})
    on_time = [res for res in trained if res.client not in late]  # a straggler's update misses the deadline
    secure_line = {}
    if secure:  # masked uploads: no screening is possible, only their sum is ever seen
        results, rejected = on_time, {}
        states, secure_line = _secure_aggregate(secure, states, on_time, cfg, dp, r)
    else:
        results, rejected = faults.screen_updates(on_time, starts) if moved else (on_time, {})
        if results or (dp is not None and dp.level == "client"):  # DP-FedAvg noises every round, even an empty one
            states = _aggregate(r, cfg, method, dp, states, results)
    keys = method.eval_keys(states)
    val = backend.evaluate_many([(states[k], "validation", None) for k in keys])
    scored = cfg.test_every and (r + 1) % cfg.test_every == 0
    test = backend.evaluate_many([(states[k], "test", None) for k in keys]) if scored else []
    return states, {
        "round": r + 1,
        "val_metric": _mean_metric(val),
        "metric": _mean_metric(test) if scored else None,
        "bytes_down": sum(tensor_bytes(starts[j.start]) for j in reached) if moved else 0,
        "bytes_up": sum(sent[res.client] for res in on_time) if moved else 0,  # rejected ones were sent
        "train_loss": float(np.mean([res.loss for res in trained])) if trained else None,
        "clients": [res.client for res in results],
        "dropped": sorted(dropped),
        "stragglers": sorted(late),
        "lost": sorted(lost),
        "rejected": {str(c): why for c, why in sorted(rejected.items())},
        "epsilon": spent_epsilon(accountants, dp),
        "compute_s": round(sum(res.train_s for res in trained) + sum(s["eval_s"] for s in val + test), 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        **secure_line,
    }


def _secure_round(cfg: ExperimentConfig, r: int, method, reached: list, global_state: dict, dp) -> SecureRound | None:
    """Steps 1-2 of secure aggregation among the clients that received the model, or None. Under
    client-level DP the clients clip their updates (weight 1) and the server adds the noise to
    the unmasked sum: the server never sees a single update, but must be trusted to add noise."""
    if cfg.secagg == "off":
        return None
    if not (method.communicates and method.secure_aggregable):
        raise BenchError(f"--secagg on: method {cfg.method!r} does not aggregate a weighted mean of uploads")
    client_dp = dp is not None and dp.level == "client"
    bound = float(len(reached)) if client_dp else float(sum(len(j.examples) for j in reached))
    quantiser = Quantiser(cfg.secagg_clip, bound, cfg.secagg_bits)
    names = list(global_state)
    return SecureRound(
        [j.client for j in reached],
        r,
        cfg.seed,
        quantiser,
        names,
        [tuple(global_state[n].shape) for n in names],
        clip_norm=dp.max_grad_norm if client_dp else None,
    )


def _secure_aggregate(secure: SecureRound, states: dict, results: list, cfg, dp, r: int) -> tuple[dict, dict]:
    """Step 4: unmask the sum and take each tensor's weighted mean over the clients that train it
    (under client-level DP: the noisy mean over the expected K); a round without enough survivors
    changes nothing and says so."""
    t0 = time.perf_counter()
    line = {"secagg_client_s": round(sum(getattr(res.state, "mask_s", 0.0) for res in results), 3)}
    try:
        sums, weights, costs = secure.close([res.state for res in results])
    except SecAggFailure as e:
        return states, {**line, "secagg_failed": str(e), "secagg_bytes_up": 0, "secagg_bytes_down": 0}
    old = states[GLOBAL]
    if secure.clip_norm is not None:
        summed = {n: torch.from_numpy(sums[n]).to(old[n].dtype) for n in old}
        new = privacy.noisy_mean(old, summed, dp, cfg.per_round, _dp_seed(cfg, r))
    else:
        new = {
            n: (old[n].float() + torch.from_numpy(sums[n] / weights[n]).float()).to(old[n].dtype)
            if weights[n] > 0.5
            else old[n]
            for n in old
        }
    return {**states, GLOBAL: new}, {**line, **costs, "secagg_server_s": round(time.perf_counter() - t0, 3)}


def _dp_seed(cfg: ExperimentConfig, r: int) -> int:
    return seed_of("dp_server_noise", cfg.seed, r)


def _account(cfg, dp, trained: list, accountants: dict) -> None:
    """Record this round's privacy spend where it happened: each DP-SGD client's (sigma, rate,
    batches drawn), or the server's DP-FedAvg step at the client sampling rate."""
    if dp is not None and dp.level == "client":
        accountants.setdefault("server", []).append((dp.noise_multiplier, client_rate(cfg), 1))
    for res in trained:
        if res.dp_steps is not None:
            accountants.setdefault(res.client, []).append(res.dp_steps)


def _aggregate(r, cfg, method, dp, states, results) -> dict:
    """The method's aggregation, or DP-FedAvg under client-level DP."""
    if dp is not None and dp.level == "client":
        return {
            GLOBAL: privacy.dp_fedavg(
                states[GLOBAL], [res.state for res in results], dp, cfg.per_round, _dp_seed(cfg, r)
            )
        }
    return method.combine(states, results)


def _record(cfg, history, info, status) -> dict:
    """What every final.json holds, whatever the status; a diverged run has no metric."""
    return {
        "task": cfg.task,
        "method": cfg.method,
        "metric_name": None,
        "metric": None,
        "status": status,
        "bytes_up_total": sum(h["bytes_up"] for h in history),
        "bytes_down_total": sum(h["bytes_down"] for h in history),
        "trainable_params": info["trainable_params"],
        "total_params": info["total_params"],
        "method_info": {k: v for k, v in info.items() if k not in ("trainable_params", "total_params")},
        "rounds": len(history),
        "wall_s": round(sum(h["wall_s"] for h in history), 3),
        "config": cfg.to_dict(),
        "versions": versions(),
        "git": git_state(),
        "host": node_identity(),
    }


def _scores(method, backend, task, best: dict, last: dict, history: list[dict]) -> tuple[dict, list]:
    """Test scores of the best-validation state (the reported model) and of the last one, each
    client's score on its own held-out slice (best state), and the per-example test items."""
    states = best["states"]
    test = backend.evaluate_many([(states[k], "test", None) for k in method.eval_keys(states)])
    last_metric = history[-1]["metric"]
    if last_metric is None and best["round"] == history[-1]["round"]:  # the same state: already scored
        last_metric = _mean_metric(test)
    elif last_metric is None:
        last_metric = _mean_metric(backend.evaluate_many([(last[k], "test", None) for k in method.eval_keys(last)]))
    own = backend.evaluate_many(
        [(states.get(method.client_key(c), states[GLOBAL]), "train", h.tolist()) for c, h in enumerate(task.holdouts)]
    )
    per_client = [round(s["metric"], 6) for s in own]
    items = [s.pop("items") for s in test]
    cfg = method.cfg
    converged = stalled([h["val_metric"] for h in history], cfg.patience, cfg.min_delta)
    return {
        "metric_name": task.metric_name,
        "metric": _mean_metric(test),
        "metric_last": last_metric,
        "best_round": best["round"],
        "val_metric": best["val_metric"],
        "rounds_run": len(history),
        "converged": converged,
        "stopped_early": bool(cfg.early_stop and len(history) < cfg.rounds and converged),
        "scores": test[0] if len(test) == 1 else None,
        "per_client": per_client,
        "worst_client": min(per_client),
    }, items


def _progress(cfg: ExperimentConfig, done: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.rounds, initial=done, desc=f"{cfg.task} {cfg.method}", unit="round", disable=not enabled, leave=False
    )
