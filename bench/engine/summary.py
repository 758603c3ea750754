"""What a run's final.json holds: the record every run has, and the best state's test scores."""

from __future__ import annotations

from bench.engine.cells import node_identity
from bench.engine.convergence import stalled
from bench.engine.rounds import mean_metric
from bench.federation.comm import GLOBAL
from bench.store import git_state, versions


def record(cfg, history: list[dict], info: dict, status: str) -> dict:
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
        "paused_s": _paused(history),
        "config": cfg.to_dict(),
        "versions": versions(),
        "git": git_state(),
        "host": node_identity(),
    }


def _paused(history: list[dict]) -> float | None:
    """Of wall_s, the seconds the process was stopped (bench.engine.stop_clock); None when a
    round predates the record (2026-12-06), so "not recorded" never reads as "no pause"."""
    if not history or any(h.get("paused_s") is None for h in history):
        return None
    return round(sum(h["paused_s"] for h in history), 3)


def best_scores(
    method, backend, task, best: dict, last: dict, history: list[dict], start: float | None = None
) -> tuple[dict, list]:
    """Test scores of the best-validation state (the reported model) and of the last one, each
    client's score on its own held-out slice (best state), and the per-example test items
    (`start`: the untrained model's validation score, for the stopping rule's plateau)."""
    states = best["states"]
    test = backend.evaluate_many([(states[k], "test", None) for k in method.eval_keys(states)])
    last_metric = history[-1]["metric"]
    if last_metric is None and best["round"] == history[-1]["round"]:  # the same state: already scored
        last_metric = mean_metric(test)
    elif last_metric is None:
        last_metric = mean_metric(backend.evaluate_many([(last[k], "test", None) for k in method.eval_keys(last)]))
    own = backend.evaluate_many(
        [(states.get(method.client_key(c), states[GLOBAL]), "train", h.tolist()) for c, h in enumerate(task.holdouts)]
    )
    per_client = [round(s["metric"], 6) for s in own]
    items = [s.pop("items") for s in test]
    cfg = method.cfg
    converged = stalled([h["val_metric"] for h in history], cfg.patience, cfg.min_delta, start)
    return {
        "metric_name": task.metric_name,
        "metric": mean_metric(test),
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


def cache_summary(reports: list) -> dict | None:
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
