"""The depth/rank frontier (the paper's question): how many blocks must train, and what each
choice costs against LoRA and FedAvg. Built from the main table's rows (seed-level intervals
included) wherever one task, model and partition holds centralized and a family of configurations at
two or more sizes (top:k, bottom:k, auto:k at several k; LoRA at several ranks).

Cost is the bytes a configuration moved until its reported state (the best validation round),
mean over its reported seeds; quality is its test metric. A configuration is on the Pareto front
when no other moved at most as many bytes for at least as high a metric (one of them strictly),
by those means: the front ranks, it does not test. Only configurations with at least
MIN_SEEDS_FOR_VERDICT reported seeds and their bytes are ranked; the rest are tabulated and named."""

from __future__ import annotations

from bench.report.render import fmt_bytes, seed_interval_text
from bench.report.stats import MIN_SEEDS_FOR_VERDICT, seed_paired_interval

WITHIN = 0.02  # the paper's claim: within 2 points of centralized
SIZED = ("layerskip top", "layerskip bottom", "layerskip auto", "lora")  # families with a size axis


def family(row: dict) -> tuple[str, int | None]:
    """('layerskip top', 3), ('lora', 8), ('fedavg', None): a configuration's family and size."""
    method = row["method"].split()[0]
    if method == "layerskip" and ":" in row["layers"]:
        side, k = row["layers"].split(":")
        return f"layerskip {side}", int(k)
    if method == "lora":
        return "lora", row["lora_rank"]
    return method, None


def waiting(row: dict) -> str | None:
    """Why a configuration's numbers are not a result yet (None: they are): a tuning seed alone,
    fewer reported seeds than planned or than a verdict needs."""
    if row.get("seed_role", "reported") != "reported":
        return "the tuning seed only"
    if not row.get("complete", True):
        return f"incomplete ({row['seeds']}/{row['seeds_planned']} seeds)"
    if row["seeds"] < MIN_SEEDS_FOR_VERDICT:
        return f"{row['seeds']} reported seed(s)"
    return None


def why_unranked(row: dict) -> str | None:
    """Why a configuration is left off the front (None: it is ranked): it is waiting, or it has
    no per-round bytes to its reported state (its quality is still judged)."""
    return waiting(row) or (None if row["bytes_to_best"] else "no per-round bytes")


def plain(row: dict) -> bool:
    """A row the frontier reads: no DP, not a pooled, compressed or budgeted variant, and not a
    FedAvg or centralized row at a study's side setting (the reference is the one rows compare with)."""
    return row["epsilon"] is None and not row.get("variant") and row.get("is_reference") is not False


def partition_order(partition: str) -> tuple[bool, str]:
    """iid first: the question is asked there; other partitions (issue 25's knee under label skew) after."""
    return partition != "iid", partition


def frontier_sets(table: list[dict]) -> list[dict]:
    """One set per task x model x partition (plain rows) that asks the question, iid first: its
    centralized row (the task's, where the partition has none), its FedAvg row (or None) and its
    configurations (the sized families and FedAvg)."""
    contexts: dict[tuple, list[dict]] = {}
    for row in filter(plain, table):  # one model's configurations: a grid may run several
        contexts.setdefault((row["task"], row.get("model"), row["partition"]), []).append(row)
    # centralized pools every client's data, so its partition is nominal: a label-skew set
    # without a centralized row of its own reads the task's (as the main table's Δ does)
    pooled = {key[:2]: r for key, rows in contexts.items() for r in rows if family(r)[0] == "centralized"}
    found = []
    for (task, model, partition), rows in sorted(
        contexts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), partition_order(kv[0][2]))
    ):
        central = [r for r in rows if family(r)[0] == "centralized"] or (
            [pooled[(task, model)]] if (task, model) in pooled else []
        )
        # the trade-off: depths and ranks against FedAvg; another algorithm (FedProx) is
        # the main table's comparison, not a point of it (it would be the knee by its lr alone)
        configs = [r for r in rows if r["communicates"] and family(r)[0] in (*SIZED, "fedavg")]
        sizes: dict[str, set] = {}
        for r in configs:
            name, size = family(r)
            if name in SIZED:
                sizes.setdefault(name, set()).add(size)
        if central and any(len(s) >= 2 for s in sizes.values()):
            fedavg = next((r for r in configs if family(r)[0] == "fedavg"), None)
            found.append(
                {
                    "task": task,
                    "model": model,
                    "partition": partition,
                    "central": central[0],
                    "fedavg": fedavg,
                    "configs": configs,
                }
            )
    return found


def named(found: dict, sets: list[dict]) -> str:
    """A set's task, and its model where `sets` hold several (a grid may run more than one)."""
    several = len({s.get("model") for s in sets}) > 1
    return f"{found['task']}, {found.get('model')}" if several else found["task"]


def pareto(configs: list[dict]) -> list[dict]:
    """The non-dominated ranked configurations (fewer bytes to the reported state, higher metric), cheapest first."""
    configs = [r for r in configs if not why_unranked(r)]
    front = [
        a
        for a in configs
        if not any(
            b is not a
            and b["bytes_to_best"] <= a["bytes_to_best"]
            and b["metric"] >= a["metric"]
            and (b["bytes_to_best"] < a["bytes_to_best"] or b["metric"] > a["metric"])
            for b in configs
        )
    ]
    unique = {(r["bytes_to_best"], r["metric"]): r for r in sorted(front, key=lambda r: r["method"], reverse=True)}
    return sorted(unique.values(), key=lambda r: r["bytes_to_best"])  # exact ties: one point (first by name)


def _seed(row: dict, name: str, key: str):
    return (row[f"{name}_seed"] or {}).get(key)


def step(upper: dict, lower: dict) -> tuple[dict | None, int]:
    """A front step tested: the seed-level paired interval of (upper - lower) over the seeds both
    ran (None under 2 shared seeds), and how many they share; the front itself ranks by means only."""
    a, b = upper.get("seed_metrics") or {}, lower.get("seed_metrics") or {}
    shared = sorted(set(a) & set(b))
    return seed_paired_interval([a[s] - b[s] for s in shared]), len(shared)


def front_steps(front: list[dict]) -> dict[int, tuple[dict, dict | None, int]]:
    """id(front row) -> (the next cheaper front row, the step's interval, seeds shared), for
    every point of `front` (pareto's) after the cheapest (a row tied with a front point: front_ties)."""
    return {id(hi): (lo, *step(hi, lo)) for lo, hi in zip(front, front[1:])}


def front_ties(front: list[dict], configs: list[dict]) -> dict[int, dict]:
    """id(row) -> the front row it ties exactly (same bytes and mean metric), for ranked rows the
    front drew as that one point."""
    drawn = {(r["bytes_to_best"], r["metric"]): r for r in front}
    return {
        id(r): drawn[(r["bytes_to_best"], r["metric"])]
        for r in configs
        if not why_unranked(r) and drawn.get((r["bytes_to_best"], r["metric"]), r) is not r
    }


def step_text(d: dict | None, shared: int) -> str:
    if d is None:
        return f"fewer than 2 paired seeds ({shared})"
    return seed_interval_text(d["diff"], d["lo"], d["hi"], d["no_verdict"])


def all_rows(table: list[dict]) -> list[dict]:
    """The frontier table of a report: every set's rows (none where no set asks the question)."""
    return [row for found in frontier_sets(table) for row in table_rows(found)]


def table_rows(found: dict) -> list[dict]:
    """One row per configuration: share trained, bytes, metric, differences with seed-level intervals, front."""
    ranked = pareto(found["configs"])
    front = {(r["bytes_to_best"], r["metric"]) for r in ranked}  # an exact tie is on it too
    steps, ties = front_steps(ranked), front_ties(ranked, found["configs"])
    rows = []
    for r in sorted(found["configs"], key=lambda r: (r["bytes_to_best"] is None, r["bytes_to_best"] or 0)):
        name, size = family(r)
        rows.append(
            {
                "task": found["task"],
                "model": found.get("model"),
                "partition": found["partition"],
                "configuration": r["method"],
                "family": name,
                "size": size,
                "trainable_pct": r["trainable_pct"],
                "bytes_per_round": r["bytes_per_round"],
                "bytes_to_best": r["bytes_to_best"],
                "bytes_to_best_min": r.get("bytes_to_best_min"),
                "bytes_to_best_max": r.get("bytes_to_best_max"),
                "metric": r["metric"],
                "metric_ci95": r["metric_ci95"],
                "seeds": r["seeds"],
                "vs_centralized_diff": _seed(r, "vs_centralized", "diff"),
                "vs_centralized_seed_lo": _seed(r, "vs_centralized", "lo"),
                "vs_centralized_seed_hi": _seed(r, "vs_centralized", "hi"),
                "vs_fedavg_diff": _seed(r, "vs_fedavg", "diff"),
                "vs_fedavg_seed_lo": _seed(r, "vs_fedavg", "lo"),
                "vs_fedavg_seed_hi": _seed(r, "vs_fedavg", "hi"),
                # why an interval is shown but not judged ('' where it is judged or absent)
                "vs_centralized_no_verdict": _seed(r, "vs_centralized", "no_verdict") or "",
                "vs_fedavg_no_verdict": _seed(r, "vs_fedavg", "no_verdict") or "",
                "on_front": not why_unranked(r) and (r["bytes_to_best"], r["metric"]) in front,
                **_step_columns(steps.get(id(r)), ties.get(id(r))),
                "unranked": why_unranked(r) or "",
            }
        )
    return rows


def _step_columns(found: tuple[dict, dict | None, int] | None, tie: dict | None) -> dict:
    """A front row's gain over the next cheaper front configuration (empty off the front or at its
    start), or the front row it ties exactly."""
    lower, d, shared = found or (None, None, 0)
    return {
        "step_over": lower["method"] if lower else "",
        "step_diff": d["diff"] if d else None,
        "step_seed_lo": d["lo"] if d else None,
        "step_seed_hi": d["hi"] if d else None,
        "step_no_verdict": (d["no_verdict"] or "") if d else "",
        "step_seeds": shared if lower else None,
        "tied_with": tie["method"] if tie else "",
    }


def _step_cell(r: dict) -> str:
    if r["tied_with"]:
        return f"tied with {r['tied_with']} (same bytes and mean)"
    if not r["step_over"]:
        return ""
    d = (
        None
        if r["step_seed_lo"] is None
        else {
            "diff": r["step_diff"],
            "lo": r["step_seed_lo"],
            "hi": r["step_seed_hi"],
            "no_verdict": r["step_no_verdict"],
        }
    )
    return f"{step_text(d, r['step_seeds'])} over {r['step_over']}"


def _delta(r: dict, name: str) -> str:
    return seed_interval_text(r[f"{name}_diff"], r[f"{name}_seed_lo"], r[f"{name}_seed_hi"], r[f"{name}_no_verdict"])


def _front_cell(r: dict) -> str:
    return "yes" if r["on_front"] else f"not ranked: {r['unranked']}" if r["unranked"] else ""


def markdown(rows: list[dict]) -> str:
    head = [
        "task",
        "partition",
        "configuration",
        "trainable (%)",
        "bytes/round",
        "bytes to reported state",
        "metric [95% CI]",
        "seeds",
        "Δ vs centralized, pts [95% CI over seeds]",
        "Δ vs fedavg, pts [95% CI over seeds]",
        "Pareto front",
        "gain over the next cheaper front point, pts [95% CI over seeds]",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    several = len({r.get("model") for r in rows}) > 1  # a grid of several models: name each row's
    for r in rows:
        ci = "" if r["metric_ci95"] is None else f" [±{r['metric_ci95']:.3f}]"
        cells = [
            f"{r['task']} ({r.get('model')})" if several else r["task"],
            r["partition"],
            r["configuration"],
            f"{r['trainable_pct']:.1f}",
            fmt_bytes(r["bytes_per_round"]),
            fmt_bytes(r["bytes_to_best"]),
            f"{r['metric']:.3f}{ci}",
            str(r["seeds"]),
            _delta(r, "vs_centralized"),
            _delta(r, "vs_fedavg"),
            _front_cell(r),
            _step_cell(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
