"""The main table: one row per cell (everything but the seed), with the statistics a reviewer
asks for: mean, std and a 95% interval over seeds; paired bootstrap differences to FedAvg and to
centralized; convergence; and communication until the validation metric reaches a share of
centralized's (the paper's "less communication at matched accuracy")."""

from __future__ import annotations

import numpy as np

from bench.config import EXECUTION_ONLY, SETTING_DEFAULTS
from bench.data.bootstrap_units import shipped_test_groups
from bench.engine.convergence import run_convergence
from bench.report.dp_label import dp_label
from bench.report.matched import matched_columns
from bench.report.stats import paired_bootstrap, seed_interval, seed_paired_interval

IDENTITY_FREE = {"seed"}


def cell_key(run: dict) -> tuple:
    """A run's cell: every computed setting except the seed (configured DP target included,
    never the epsilon actually spent). A setting a stored config predates counts as its default,
    so runs stored before a setting existed share a cell with later ones."""

    config = {**SETTING_DEFAULTS, **run["config"]}
    return tuple(sorted((k, str(v)) for k, v in config.items() if k not in IDENTITY_FREE | EXECUTION_ONLY))


def method_label(run: dict) -> str:
    """e.g. 'layerskip top:2' or 'lora r8'; an auto:K run also names the blocks its probe chose;
    per-client budgets are named, and a federated method run on one client is 'pooled'."""
    cfg = run["config"]
    label = f"{cfg['method']} {cfg.get('layers') or ''}".strip()
    if cfg["method"] == "lora":  # ranks are different configurations (the frontier study's axis)
        label += f" r{ {**SETTING_DEFAULTS, **cfg}['lora_rank'] }"
    if (cfg.get("layers") or "").startswith("auto:"):
        label += f" [{' '.join(map(str, (run.get('method_info') or {}).get('blocks', [])))}]"
    return " ".join([label, variant(cfg)]).strip()


def variant(cfg: dict) -> str:
    """What sets a run apart from its method's plain federated configuration ('' for none):
    per-client budgets, a compressed upload, or one client ('pooled')."""
    tags = []
    if cfg.get("client_budgets"):
        tags.append(f"budgets={cfg['client_budgets']}")
    if cfg.get("compress", "none") != "none":
        tags.append(f"+{cfg['compress']}")
    if cfg["method"] not in ("centralized", "local") and cfg.get("clients") == 1:
        tags.append("pooled")  # one client holding every example: the method on centralized data
    return " ".join(tags)


def _context(cfg: dict) -> tuple:
    """What a run is compared within: the same task, data, model, DP target and level."""
    return (
        cfg["task"],
        cfg.get("data_dir"),
        cfg["model"],
        cfg.get("dp_epsilon"),
        cfg.get("noise_multiplier"),
        cfg.get("dp_level"),
    )


def _by_seed(runs: list[dict]) -> dict[int, dict]:
    return {r["config"]["seed"]: r for r in runs}


def resampled(runs: list[dict]) -> dict | None:
    """What the test bootstrap resamples for these runs: for runs on a shipped corpus, the groups
    its files record now (NCBI's abstracts, mapped after its early runs were stored); else the
    groups stored with the runs (documents, patients; all alike); else None (each item)."""
    n = len(runs[0]["test_items"][0])
    if all(r["config"].get("data_dir") is None for r in runs):
        shipped = shipped_test_groups(runs[0]["task"])
        if shipped is not None and len(shipped["groups"]) == n:
            return shipped
    stored = [r.get("test_groups") for r in runs]
    if all(stored) and all(s == stored[0] for s in stored):
        return stored[0]
    return None


def _paired(kind: str, n_labels: int, mine: list[dict], other: list[dict] | None) -> dict | None:
    if not other:
        return None
    theirs = _by_seed(other)
    both = [
        (r, theirs[r["config"]["seed"]])
        for r in mine
        if r["config"]["seed"] in theirs and r.get("test_items") and theirs[r["config"]["seed"]].get("test_items")
    ]
    if not both:
        return None
    groups = resampled([run for pair in both for run in pair])
    pairs = [(a["test_items"], b["test_items"]) for a, b in both]
    found = paired_bootstrap(kind, pairs, n_labels, groups=groups["groups"] if groups else None)
    return {**found, "unit": groups["unit"] if groups else "example"}


def _seed_paired(mine: list[dict], other: list[dict] | None) -> dict | None:
    """The headline difference: per-seed metric(this) - metric(other) over the seeds both ran,
    with a t-interval over seeds (bench.report.stats.seed_paired_interval)."""
    return seed_paired_interval(_seed_diffs(mine, other)) if other else None


def _seed_diffs(mine: list[dict], other: list[dict]) -> list[float]:
    """metric(this) - metric(other), seed by seed, over the seeds both ran."""
    theirs = _by_seed(other)
    return [r["metric"] - theirs[r["config"]["seed"]]["metric"] for r in mine if r["config"]["seed"] in theirs]


def _cells(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Each cell's finished runs: its reported seeds, or its tuning seed where it has no other
    (a one-seed grid; the row's `seed_role` says so)."""
    cells: dict[tuple, list[dict]] = {}
    for r in runs:
        if r.get("status") == "ok":
            cells.setdefault(cell_key(r), []).append(r)
    return {key: [r for r in rs if r.get("role") != "tuning"] or rs for key, rs in cells.items()}


def shown_runs(runs: list[dict]) -> list[dict]:
    """The runs a report shows, figures as tables: each cell's reported seeds, else its tuning seed."""
    return [r for rs in _cells(runs).values() for r in rs]


def _references(cells: dict[tuple, list[dict]]) -> tuple[dict, dict]:
    """FedAvg cells by context and partition, centralized cells by context: what rows compare to
    (a list: a grid whose studies vary a reference's settings holds several, `_reference` picks)."""
    fedavg: dict[tuple, list] = {}
    central: dict[tuple, list] = {}
    for rs in cells.values():
        cfg = rs[0]["config"]
        if cfg["method"] == "fedavg":
            fedavg.setdefault(_context(cfg) + (cfg["partition"],), []).append(rs)
        elif cfg["method"] == "centralized":
            central.setdefault(_context(cfg), []).append(rs)
    return fedavg, central


def _reference(candidates: list[list[dict]] | None, swept: dict[tuple, float]) -> list[dict] | None:
    """The reference cell rows compare with: the only one; among several (a study that fixes a
    reference's lr beside the sweep that chose it, as NCBI's `mu`), the sweep's choice, the cell
    whose tuning-seed run scored best on validation (`swept`: cell_key -> that score), and among
    cells without one the best mean validation score. Every row of a context compares with the same
    cell; a comparison at another setting is its study's own table."""
    if not candidates or len(candidates) == 1:
        return candidates[0] if candidates else None
    return max(
        candidates,
        key=lambda rs: (
            swept.get(cell_key(rs[0]), -np.inf),
            float(np.mean([r["val_metric"] if r.get("val_metric") is not None else -np.inf for r in rs])),
        ),
    )


def bytes_until(run: dict, last_round: int) -> int:
    """Bytes (up + down) a run moved in its rounds 1..last_round: to its reported state, when
    last_round is its best validation round."""
    return sum(line["bytes_up"] + line["bytes_down"] for line in run.get("history", []) if line["round"] <= last_round)


def _bytes_to_best(runs: list[dict]) -> dict:
    """The bytes moved to the reported state: mean over seeds, and the least and most a seed moved
    (seeds stop at different rounds); None where a run lacks its rounds or its best round (a
    frontier does not rank such a configuration, never at 0 bytes)."""
    if any(not r.get("history") or not r.get("best_round") for r in runs):
        return {"bytes_to_best": None, "bytes_to_best_min": None, "bytes_to_best_max": None}
    moved = [bytes_until(r, r["best_round"]) for r in runs]
    return {"bytes_to_best": float(np.mean(moved)), "bytes_to_best_min": min(moved), "bytes_to_best_max": max(moved)}


def _mean_total_bytes(runs: list[dict]) -> float:
    return float(np.mean([r["bytes_up_total"] + r["bytes_down_total"] for r in runs]))


def _setting_columns(rs: list[dict]) -> dict:
    cfg = rs[0]["config"]
    return {
        "task": cfg["task"],
        "model": cfg.get("model"),
        "method": method_label(rs[0]),
        "layers": cfg.get("layers") or "",
        "variant": variant(cfg),
        "lora_rank": {**SETTING_DEFAULTS, **cfg}["lora_rank"] if cfg["method"] == "lora" else None,
        "partition": cfg["partition"],
        "epsilon": cfg.get("dp_epsilon"),
        "epsilon_spent": max((r["epsilon"] for r in rs if r.get("epsilon") is not None), default=None),
        "dp_level": dp_label(cfg),
        "seeds": len(rs),
        "seed_role": "tuning only" if all(r.get("role") == "tuning" for r in rs) else "reported",
    }


def _outcome_columns(rs: list[dict], stats: dict) -> dict:
    rounds_run = [r.get("rounds_run") or r.get("rounds") or 1 for r in rs]
    return {
        "metric": stats["mean"],
        "metric_std": stats["std"],
        "metric_ci95": stats["ci95"],
        "seed_metrics": {r["config"]["seed"]: r["metric"] for r in rs},  # for paired contrasts between rows
        "lr": rs[0]["config"].get("lr") or (rs[0].get("method_info") or {}).get("lr"),
        "best_round": float(np.mean([r.get("best_round") or 0 for r in rs])),
        "rounds_run": float(np.mean(rounds_run)),
        "converged": sum(run_convergence(r) == "converged" for r in rs),
        "bytes_per_round": float(
            np.mean([(r["bytes_up_total"] + r["bytes_down_total"]) / n for r, n in zip(rs, rounds_run)])
        ),
        "bytes_total": _mean_total_bytes(rs),
        **_bytes_to_best(rs),
    }


def _gap(rs: list[dict], cen: list[dict] | None, mean: float) -> float | None:
    """Points below centralized: the mean per-seed difference over the seeds both have (one pair
    is enough for the number; the interval needs two), else the difference of the two means."""
    if not cen:
        return None
    if diffs := _seed_diffs(rs, cen):
        return -100 * float(np.mean(diffs))
    return 100 * (float(np.mean([r["metric"] for r in cen])) - mean)


def _comparison_columns(rs: list[dict], fed: list[dict] | None, cen: list[dict] | None, mean: float) -> dict:
    cfg = rs[0]["config"]
    kind, n_labels = rs[0].get("task_kind", "ner"), rs[0].get("n_labels", 2)
    total = _mean_total_bytes(rs)
    fed_total = _mean_total_bytes(fed) if fed else None
    cen_seed = None if cfg["method"] == "centralized" else _seed_paired(rs, cen)
    pooled = "pooled" in variant(cfg).split()
    return {
        # one client (pooled) moves bytes to a server holding the same data: no share to give
        "reduction_vs_fedavg_pct": 100 * (1 - total / fed_total) if fed_total and total and not pooled else None,
        "gap_to_centralized_pts": _gap(rs, cen, mean),
        "vs_fedavg": None if cfg["method"] == "fedavg" else _paired(kind, n_labels, rs, fed),
        "vs_centralized": None if cfg["method"] == "centralized" else _paired(kind, n_labels, rs, cen),
        "vs_fedavg_seed": None if cfg["method"] == "fedavg" else _seed_paired(rs, fed),
        "vs_centralized_seed": cen_seed,
        **matched_columns(rs, cen),
        "communicates": total > 0,
        "trainable_pct": 100 * rs[0]["trainable_params"] / rs[0]["total_params"],
    }


def planned_seeds(cells: list, tuning: set[str]) -> dict[tuple, int]:
    """Each cell's planned reported seeds (a grid's cells less those that chose a setting), by cell_key."""
    count: dict[tuple, int] = {}
    for cell in cells:
        if cell.run_id not in tuning:
            key = cell_key({"config": cell.config.to_dict()})
            count[key] = count.get(key, 0) + 1
    return count


def _row(rs: list[dict], fed: list[dict] | None, cen: list[dict] | None, planned: int | None) -> dict:
    """One cell's row; the key order is the CSV's column order. `planned`: the reported seeds the
    grid asks of this cell (None: whatever ran is the cell); a row with fewer finished ok, or only
    its tuning seed, is incomplete (still running, or some failed)."""
    stats = seed_interval([r["metric"] for r in rs])
    settings = _setting_columns(rs)
    settings["seeds_planned"] = planned
    settings["complete"] = planned is None or (settings["seed_role"] == "reported" and settings["seeds"] >= planned)
    return {**settings, **_outcome_columns(rs, stats), **_comparison_columns(rs, fed, cen, stats["mean"])}


def _row_order(t: dict) -> tuple:
    return t["task"], t["partition"], t["epsilon"] is not None, t["epsilon"] or 0, t["method"]


def main_table(runs: list[dict], planned: dict[tuple, int] | None = None) -> list[dict]:
    """One row per cell over its finished seeds; runs are final.json records with `history`
    and `test_items` attached (bench.store.load_runs); `planned` (cell_key -> the reported seeds
    a grid asks of it, `planned_seeds`) marks the rows that have fewer as not complete."""
    cells = _cells(runs)
    fedavg, central = _references(cells)
    swept = {
        cell_key(r): r["val_metric"]
        for r in runs
        if r.get("role") == "tuning" and r.get("status") == "ok" and r.get("val_metric") is not None
    }  # the tuning seed's validation score per cell: which of several reference cells the sweep chose
    fed_of = {k: _reference(v, swept) for k, v in fedavg.items()}
    cen_of = {k: _reference(v, swept) for k, v in central.items()}
    chosen = {id(rs) for rs in [*fed_of.values(), *cen_of.values()]}
    table = []
    for key, rs in cells.items():
        cfg = rs[0]["config"]
        ctx = _context(cfg)
        row = _row(rs, fed_of.get(ctx + (cfg["partition"],)), cen_of.get(ctx), (planned or {}).get(key))
        # a FedAvg or centralized row the others do not compare with (a study's side setting) says so
        row["is_reference"] = id(rs) in chosen if cfg["method"] in ("fedavg", "centralized") else None
        table.append(row)
    return sorted(table, key=_row_order)
