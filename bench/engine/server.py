"""The server's round loop: sample, broadcast, train, aggregate, evaluate, checkpoint."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from baselines import GLOBAL, METHODS
from bench import privacy
from bench.comm import tensor_bytes
from bench.config import ExperimentConfig
from bench.engine import faults
from bench.engine.prepare import prepare_task
from bench.engine.training import Diverged
from bench.errors import BenchError
from bench.layer_probe import resolve_auto_layers
from bench.store import atomic_write_json, git_state, load_checkpoint, save_checkpoint, versions, write_rounds


def _serial(cfg, task, dp):
    from bench.engine.serial import SerialBackend

    return SerialBackend(cfg, task, dp)


def _ray(cfg, task, dp):
    from bench.engine.ray_backend import RayBackend  # Ray is imported only when asked for

    return RayBackend(cfg, task, dp)


BACKENDS = {"serial": _serial, "ray": _ray}


def sample_clients(cfg: ExperimentConfig, round_: int) -> list[int]:
    """Clients for this round, from (seed, round) alone so a resumed run samples the same."""
    rng = np.random.default_rng([cfg.seed, round_, 104729])
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


def run_experiment(cfg: ExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """Run one experiment into `out` (rounds.jsonl, final.json, checkpoint.pt); resumes if possible."""
    out = Path(out)
    method = METHODS.get(cfg.method)(cfg)
    if cfg.private and cfg.dp_level == "client" and not method.communicates:
        raise BenchError(f"client-level DP needs a federated method; {cfg.method!r} sends no updates")
    task = prepare_task(cfg)
    atomic_write_json(out / "partition.json", task.partition)
    asked, probe = cfg, None
    if cfg.method == "layerskip" and (cfg.layers or "").startswith("auto:"):
        cfg, probe = resolve_auto_layers(cfg, task)
    dp = privacy.plan(cfg, *planned_work(cfg, method, task))
    backend = BACKENDS[cfg.resolved_backend](cfg, task, dp)
    try:
        info = backend.info()
        ckpt = load_checkpoint(out / "checkpoint.pt")
        states = ckpt["states"] if ckpt else {GLOBAL: backend.initial_state()}
        history = ckpt["history"] if ckpt else []
        status = "ok"
        accountants = ckpt["accountants"] if ckpt else {}  # client (or "server") -> RDP history
        bar = _progress(cfg, len(history), progress)
        for r in range(len(history), cfg.rounds):
            try:
                states, line = play_round(r, cfg, method, backend, task, dp, states, accountants)
            except Diverged:
                status = "diverged"
                break
            history.append(line)
            if line["dropped"] or line["stragglers"] or line["lost"] or line["rejected"]:  # ids and reasons only
                bar.write(f"round {r + 1}: dropped {line['dropped']}, stragglers {line['stragglers']}, "
                          f"lost {line['lost']}, rejected {line['rejected']}")  # fmt: skip
            save_checkpoint(out / "checkpoint.pt", {"states": states, "history": history, "accountants": accountants})
            write_rounds(out / "rounds.jsonl", history)
            bar.update(1)
            bar.set_postfix(metric=f"{line['metric']:.3f}")
        bar.close()
        final = _record(asked, history, info, status)
        if status == "ok":
            final.update(_scores(method, backend, task, states))
        final["epsilon"], final["layer_probe"] = spent_epsilon(accountants, dp), probe
        final["dp"] = None if dp is None else {**dataclasses.asdict(dp), "accountants": {str(k): v for k, v in accountants.items()}}
    finally:
        backend.close()
    atomic_write_json(out / "final.json", final)
    return final


def play_round(r: int, cfg: ExperimentConfig, method, backend, task, dp, states: dict, accountants: dict) -> tuple[dict, dict]:
    """One round: sample, broadcast, train, screen, aggregate, evaluate; -> (states, round line).

    Raises Diverged when the new model gives NaN/Inf in evaluation.
    """
    t0 = time.perf_counter()
    moved = method.communicates
    jobs = method.round_jobs(task.clients, sample_clients(cfg, r))
    dropped, late = faults.absent_clients(cfg, r, [j.client for j in jobs]) if moved else (set(), set())
    reached = [j for j in jobs if j.client not in dropped]  # these received the model
    starts = {job.start: states.get(job.start, states[GLOBAL]) for job in jobs}
    results, lost = backend.train(starts, [j for j in reached if j.client not in late], r)
    results, rejected = faults.screen_updates(results, starts) if moved else (results, {})
    if results:
        states = _aggregate(r, cfg, method, dp, states, results, accountants)
    scores = backend.evaluate_many([(states[k], "test", None) for k in method.eval_keys(states)])
    return states, {
        "round": r + 1,
        "metric": float(np.mean([s["metric"] for s in scores])),
        "bytes_down": sum(tensor_bytes(starts[j.start]) for j in reached) if moved else 0,
        "bytes_up": sum(tensor_bytes(res.state) for res in results) if moved else 0,
        "train_loss": float(np.mean([res.loss for res in results])) if results else None,
        "clients": [res.client for res in results],
        "dropped": sorted(dropped), "stragglers": sorted(late), "lost": sorted(lost),
        "rejected": {str(c): why for c, why in sorted(rejected.items())},
        "epsilon": spent_epsilon(accountants, dp),
        "compute_s": round(sum(res.train_s for res in results) + sum(s["eval_s"] for s in scores), 3),
        "wall_s": round(time.perf_counter() - t0, 3),
    }  # fmt: skip


def _aggregate(r, cfg, method, dp, states, results, accountants) -> dict:
    """The method's aggregation, or DP-FedAvg under client-level DP; updates the accountants."""
    if dp is not None and dp.level == "client":
        seed = int(np.random.default_rng([cfg.seed, r, 15485863]).integers(2**31 - 1))
        accountants.setdefault("server", []).append((dp.noise_multiplier, cfg.per_round / cfg.clients, 1))
        return {GLOBAL: privacy.dp_fedavg(states[GLOBAL], [res.state for res in results], dp, cfg.per_round, seed)}
    for res in results:
        if res.dp_steps is not None:
            accountants.setdefault(res.client, []).append(res.dp_steps)
    return method.combine(states, results)


def _record(cfg, history, info, status) -> dict:
    """What every final.json holds, whatever the status; a diverged run has no metric."""
    return {
        "task": cfg.task, "method": cfg.method, "metric_name": None, "metric": None, "status": status,
        "bytes_up_total": sum(h["bytes_up"] for h in history), "bytes_down_total": sum(h["bytes_down"] for h in history),
        "trainable_params": info["trainable_params"], "total_params": info["total_params"],
        "method_info": {k: v for k, v in info.items() if k not in ("trainable_params", "total_params")},
        "rounds": len(history), "wall_s": round(sum(h["wall_s"] for h in history), 3),
        "config": cfg.to_dict(), "versions": versions(), "git": git_state(),
    }  # fmt: skip


def _scores(method, backend, task, states) -> dict:
    """Test scores of the final state(s), and each client's score on its own held-out slice."""
    test = backend.evaluate_many([(states[k], "test", None) for k in method.eval_keys(states)])
    own = backend.evaluate_many([(states.get(method.client_key(c), states[GLOBAL]), "train", h.tolist())
                                 for c, h in enumerate(task.holdouts)])  # fmt: skip
    per_client = [round(s["metric"], 6) for s in own]
    return {"metric_name": task.metric_name, "metric": float(np.mean([s["metric"] for s in test])),
            "scores": test[0] if len(test) == 1 else None, "per_client": per_client, "worst_client": min(per_client)}  # fmt: skip


def _progress(cfg: ExperimentConfig, done: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.rounds, initial=done, desc=f"{cfg.task} {cfg.method}", unit="round", disable=not enabled, leave=False)
