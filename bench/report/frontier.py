"""The depth/rank frontier (the paper's question): how many blocks must train, and what each
choice costs against LoRA and FedAvg. Built from the main table's rows (seed-level intervals
included) wherever one task and partition holds centralized and a family of configurations at
two or more sizes (top:k, bottom:k, auto:k at several k; LoRA at several ranks).

Cost is the bytes a configuration moved until its reported state (the best validation round),
mean over its reported seeds; quality is its test metric. A configuration is on the Pareto front
when no other moved at most as many bytes for at least as high a metric (one of them strictly)."""

from __future__ import annotations

from bench.report.render import fmt_bytes

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


def frontier_sets(table: list[dict]) -> list[dict]:
    """One set per task x partition (no DP) that asks the question: its centralized row (the
    task's, where the partition has none), its FedAvg row (or None) and its communicating
    configurations."""
    contexts: dict[tuple, list[dict]] = {}
    for row in table:
        if row["epsilon"] is None:
            contexts.setdefault((row["task"], row["partition"]), []).append(row)
    # centralized pools every client's data, so its partition is nominal: a label-skew set
    # without a centralized row of its own reads the task's (as the main table's Δ does)
    pooled = {task: r for (task, _), rows in contexts.items() for r in rows if family(r)[0] == "centralized"}
    found = []
    for (task, partition), rows in sorted(contexts.items()):
        central = [r for r in rows if family(r)[0] == "centralized"] or ([pooled[task]] if task in pooled else [])
        configs = [
            r for r in rows if r["communicates"] and r["bytes_to_best"] and family(r)[0] not in ("centralized", "local")
        ]
        sizes: dict[str, set] = {}
        for r in configs:
            name, size = family(r)
            if name in SIZED:
                sizes.setdefault(name, set()).add(size)
        if central and any(len(s) >= 2 for s in sizes.values()):
            fedavg = next((r for r in configs if family(r)[0] == "fedavg"), None)
            found.append(
                {"task": task, "partition": partition, "central": central[0], "fedavg": fedavg, "configs": configs}
            )
    return found


def pareto(configs: list[dict]) -> list[dict]:
    """The non-dominated configurations (fewer bytes to the reported state, higher metric), cheapest first."""
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


def all_rows(table: list[dict]) -> list[dict]:
    """The frontier table of a report: every set's rows (none where no set asks the question)."""
    return [row for found in frontier_sets(table) for row in table_rows(found)]


def table_rows(found: dict) -> list[dict]:
    """One row per configuration: share trained, bytes, metric, differences with seed-level intervals, front."""
    front = {(r["bytes_to_best"], r["metric"]) for r in pareto(found["configs"])}  # an exact tie is on it too
    rows = []
    for r in sorted(found["configs"], key=lambda r: r["bytes_to_best"]):
        name, size = family(r)
        rows.append(
            {
                "task": found["task"],
                "partition": found["partition"],
                "configuration": r["method"],
                "family": name,
                "size": size,
                "trainable_pct": r["trainable_pct"],
                "bytes_per_round": r["bytes_per_round"],
                "bytes_to_best": r["bytes_to_best"],
                "metric": r["metric"],
                "metric_ci95": r["metric_ci95"],
                "seeds": r["seeds"],
                "vs_centralized_diff": _seed(r, "vs_centralized", "diff"),
                "vs_centralized_seed_lo": _seed(r, "vs_centralized", "lo"),
                "vs_centralized_seed_hi": _seed(r, "vs_centralized", "hi"),
                "vs_fedavg_diff": _seed(r, "vs_fedavg", "diff"),
                "vs_fedavg_seed_lo": _seed(r, "vs_fedavg", "lo"),
                "vs_fedavg_seed_hi": _seed(r, "vs_fedavg", "hi"),
                "on_front": (r["bytes_to_best"], r["metric"]) in front,
            }
        )
    return rows


def _interval(lo, hi, diff) -> str:
    return "-" if lo is None else f"{100 * diff:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def markdown(rows: list[dict]) -> str:
    head = [
        "task",
        "partition",
        "configuration",
        "trainable (%)",
        "bytes/round",
        "bytes to reported state",
        "metric [95% CI]",
        "Δ vs centralized, pts [95% CI over seeds]",
        "Δ vs fedavg, pts [95% CI over seeds]",
        "Pareto front",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ci = "" if r["metric_ci95"] is None else f" [±{r['metric_ci95']:.3f}]"
        cells = [
            r["task"],
            r["partition"],
            r["configuration"],
            f"{r['trainable_pct']:.1f}",
            fmt_bytes(r["bytes_per_round"]),
            fmt_bytes(r["bytes_to_best"]),
            f"{r['metric']:.3f}{ci}",
            _interval(r["vs_centralized_seed_lo"], r["vs_centralized_seed_hi"], r["vs_centralized_diff"]),
            _interval(r["vs_fedavg_seed_lo"], r["vs_fedavg_seed_hi"], r["vs_fedavg_diff"]),
            "yes" if r["on_front"] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _judged(r: dict) -> bool:
    return bool(r["vs_centralized_seed"] and r["vs_centralized_seed"].get("verdict"))


def _why_unjudged(r: dict) -> str:
    seed = r["vs_centralized_seed"]
    return "fewer than 2 seeds paired with centralized's" if seed is None else seed["no_verdict"]


def _within(r: dict) -> bool:
    return r["vs_centralized_seed"]["lo"] > -WITHIN


def _smallest_within(found: dict, side: str) -> str:
    """The smallest k of one layer family whose interval of (configuration - centralized) lies
    wholly above -WITHIN (larger k that do not are named: with 3 seeds an interval is wide), or
    that none does (naming those whose interval contains -WITHIN); sizes without a verdict are named."""
    sized = sorted((r for r in found["configs"] if family(r)[0] == f"layerskip {side}"), key=lambda r: family(r)[1])
    if not sized:
        return f"no {side}:k configurations"
    judged = [r for r in sized if _judged(r)]
    unjudged = [f"{side}:{family(r)[1]}: {_why_unjudged(r)}" for r in sized if not _judged(r)]
    tail = f" ({'; '.join(unjudged)}; no verdict)" if unjudged else ""
    if not judged:
        return f"{side}:k: no size has a verdict (each needs at least 3 reported seeds that vary){tail}"
    passing = [r for r in judged if _within(r)]
    if passing:
        r, fed = passing[0], found["fedavg"]
        share = (
            f", moving {100 * r['bytes_to_best'] / fed['bytes_to_best']:.0f}% of FedAvg's bytes to its reported state "
            f"({100 * r['bytes_per_round'] / fed['bytes_per_round']:.0f}% per round)"
            if fed and fed["bytes_to_best"]
            else ""
        )
        s = r["vs_centralized_seed"]
        larger = [f"{side}:{family(x)[1]}" for x in judged if family(x)[1] > family(r)[1] and not _within(x)]
        but = f"; {', '.join(larger)} did not (a larger k is not always within)" if larger else ""
        return (
            f"{side}:{family(r)[1]} is the smallest {side}:k within {100 * WITHIN:.0f} points of centralized "
            f"(Δ {100 * s['diff']:+.1f} [{100 * s['lo']:+.1f}, {100 * s['hi']:+.1f}]){share}{but}{tail}"
        )
    straddling = [r for r in judged if r["vs_centralized_seed"]["lo"] <= -WITHIN <= r["vs_centralized_seed"]["hi"]]
    undecided = (
        f"; {', '.join(f'{side}:{family(r)[1]}' for r in straddling)} only contain -{100 * WITHIN:.0f} in their interval "
        "(more seeds would settle them)"
        if straddling
        else ""
    )
    ks = ", ".join(str(family(r)[1]) for r in judged)
    return f"no {side}:k (k = {ks}) is within {100 * WITHIN:.0f} points of centralized{undecided}{tail}"


def _front_by_budget(found: dict) -> str:
    """Which configuration is best at each byte budget: the front, cheapest first, each holding
    from its own bytes to the next one's."""
    front = pareto(found["configs"])
    parts = []
    for i, r in enumerate(front):
        upper = f" to {fmt_bytes(front[i + 1]['bytes_to_best'])}" if i + 1 < len(front) else " and more"
        parts.append(f"from {fmt_bytes(r['bytes_to_best'])}{upper}: {r['method']} ({r['metric']:.3f})")
    return "; ".join(parts)


def headline(table: list[dict]) -> list[str]:
    """The report's first lines on the question, per task x partition that asks it."""
    lines = []
    for found in frontier_sets(table):
        where = f"{found['task']} ({found['partition']})"
        lines += [
            f"**Depth/rank frontier, {where}.** Seed-level 95% intervals of (configuration - centralized), "
            "each at 95% on its own (not adjusted for the number of configurations read): "
            f"{_smallest_within(found, 'top')}; {_smallest_within(found, 'bottom')}.",
            "",
            f"Best test metric at each budget of bytes moved to the reported state (the Pareto front): "
            f"{_front_by_budget(found)}.",
            "",
        ]
    return lines
