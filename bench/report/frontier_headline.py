"""The frontier's answer in words (issue 25), the report's first lines: per task x partition,
the smallest top:k and bottom:k whose seed-level interval of (configuration - centralized) lies
wholly above -WITHIN, which configuration is best at each byte budget, and the knee (the
cheapest front configuration within, read again under label skew)."""

from __future__ import annotations

from bench.config import SETTING_DEFAULTS
from bench.report.frontier import (
    SIZED,
    WITHIN,
    family,
    front_steps,
    frontier_sets,
    named,
    pareto,
    partition_order,
    plain,
    step_text,
    waiting,
    why_unranked,
)
from bench.report.render import fmt_bytes, seed_interval_text
from bench.report.tables import method_label, variant

# issue 25: half minilm's blocks (the paper's ratio) stands in where no front configuration is within
KNEE_FALLBACK = ("layerskip top", 3)
KNEE_FALLBACK_LABEL = "layerskip top:3"


def _judged(r: dict) -> bool:
    return bool(r["vs_centralized_seed"] and r["vs_centralized_seed"].get("verdict"))


def _why_unjudged(r: dict) -> str:
    seed = r["vs_centralized_seed"]
    return "fewer than 2 seeds paired with centralized's" if seed is None else seed["no_verdict"]


def _within(r: dict) -> bool:
    return r["vs_centralized_seed"]["lo"] > -WITHIN


def _share_of_fedavg(r: dict, fed: dict | None) -> str:
    if not (fed and fed["bytes_to_best"]):
        return "; no FedAvg row with bytes to compare its bytes with"
    if not r["bytes_to_best"]:
        return "; its bytes to the reported state are unknown (no per-round bytes)"
    return (
        f", moving {100 * r['bytes_to_best'] / fed['bytes_to_best']:.0f}% of FedAvg's bytes to its reported state "
        f"({100 * r['bytes_per_round'] / fed['bytes_per_round']:.0f}% per round)"
    )


def _smallest_within(found: dict, side: str) -> str:
    """The smallest k of one layer family whose interval of (configuration - centralized) lies
    wholly above -WITHIN (larger k that do not are named: with 3 seeds an interval is wide), or
    that none does (naming those whose interval contains -WITHIN); sizes without a verdict are named,
    and 'smallest judged' says so where a smaller k has none."""
    sized = sorted((r for r in found["configs"] if family(r)[0] == f"layerskip {side}"), key=lambda r: family(r)[1])
    if not sized:
        return f"no {side}:k configurations"
    run = f"k run: {', '.join(str(family(r)[1]) for r in sized)}"
    judged = [r for r in sized if _judged(r) and not waiting(r)]  # a running size waits; bytes do not matter here
    unjudged = [f"{side}:{family(r)[1]}: {waiting(r) or _why_unjudged(r)}" for r in sized if r not in judged]
    tail = f" ({'; '.join(unjudged)}; no verdict)" if unjudged else ""
    if not judged:
        return f"{side}:k ({run}): no size has a verdict (each needs at least 3 reported seeds that vary){tail}"
    passing = [r for r in judged if _within(r)]
    if passing:
        r, k = passing[0], family(passing[0])[1]
        smallest = "smallest judged" if any(family(x)[1] < k for x in sized if x not in judged) else "smallest"
        d = r["vs_centralized_seed"]
        larger = [f"{side}:{family(x)[1]}" for x in judged if family(x)[1] > k and not _within(x)]
        but = f"; {', '.join(larger)} did not (a larger k is not always within)" if larger else ""
        return (
            f"{side}:{k} is the {smallest} {side}:k ({run}) within {100 * WITHIN:.0f} points of centralized "
            f"(Δ {seed_interval_text(d['diff'], d['lo'], d['hi'])})"
            f"{_share_of_fedavg(r, found['fedavg'])}{but}{tail}"
        )
    straddling = [r for r in judged if r["vs_centralized_seed"]["lo"] <= -WITHIN <= r["vs_centralized_seed"]["hi"]]
    one = len(straddling) == 1
    undecided = (
        f"; {', '.join(f'{side}:{family(r)[1]}' for r in straddling)} only {'contains' if one else 'contain'} "
        f"-{100 * WITHIN:.0f} in {'its' if one else 'their'} interval (more seeds would settle {'it' if one else 'them'})"
        if straddling
        else ""
    )
    ks = ", ".join(str(family(r)[1]) for r in judged)
    return f"no {side}:k (k = {ks}) is within {100 * WITHIN:.0f} points of centralized{undecided}{tail}"


def _front_by_budget(found: dict) -> str:
    """Which configuration is best at each byte budget: the front, cheapest first, each holding
    from its own bytes to the next one's; then the configurations not ranked, and why."""
    front = pareto(found["configs"])
    steps = front_steps(front)
    parts = []
    for i, r in enumerate(front):
        upper = f" to {fmt_bytes(front[i + 1]['bytes_to_best'])}" if i + 1 < len(front) else " and more"
        parts.append(f"from {fmt_bytes(r['bytes_to_best'])}{upper}: {r['method']} ({r['metric']:.3f}{_step(steps, r)})")
    text = "; ".join(parts) or "none ranked yet"
    unranked = [f"{r['method']} ({why_unranked(r)})" for r in found["configs"] if why_unranked(r)]
    text += _families_by_budget(front) + _earlier_peaks(front)
    return text + (f". Not ranked: {', '.join(unranked)}" if unranked else "")


def _earlier_peaks(front: list[dict]) -> str:
    """Where a front point is cheaper than the next one up only because its seeds' best rounds
    came earlier (it moves more per round), say so: bytes to the reported state follow the best
    round, which varies by seed (top:6 below top:5 on NCBI, 20% more a round)."""
    notes = [
        f"{a['method']} is below {b['method']} only by its earlier best rounds ({a['best_round']:.1f} "
        f"against {b['best_round']:.1f}, seeds' means; it moves {100 * (a['bytes_per_round'] / b['bytes_per_round'] - 1):.0f}% "
        "more a round)"
        for a, b in zip(front, front[1:])
        if a["bytes_per_round"] > b["bytes_per_round"]
    ]
    return f". Bytes to the reported state follow the best round: {'; '.join(notes)}" if notes else ""


def _families_by_budget(front: list[dict]) -> str:
    """'. By family: lora from 100.0 kB, layerskip top from 10.0 MB': the front's runs of one family."""
    runs: list[tuple[str, dict]] = []
    for r in front:
        if not runs or runs[-1][0] != family(r)[0]:
            runs.append((family(r)[0], r))
    return (
        ". By family: " + ", ".join(f"{name} from {fmt_bytes(r['bytes_to_best'])}" for name, r in runs) if runs else ""
    )


def _step(steps: dict, r: dict) -> str:
    """'; step over lora r8: +1.2 [-0.5, +2.9] n.s.': what moving up to this front point buys, tested."""
    if id(r) not in steps:
        return ""
    lower, d, shared = steps[id(r)]
    return f"; step over {lower['method']}: {step_text(d, shared)}"


def knee(found: dict) -> tuple[dict | None, str]:
    """Issue 25's knee: the cheapest front configuration whose interval of (configuration -
    centralized) lies wholly above -WITHIN, else KNEE_FALLBACK (None where it did not run); with how it was chosen."""
    within = [r for r in pareto(found["configs"]) if _judged(r) and _within(r)]
    if within:
        return within[0], f"the cheapest front configuration within {100 * WITHIN:.0f} points"
    fallback = next((r for r in found["configs"] if family(r) == KNEE_FALLBACK and not why_unranked(r)), None)
    return (
        fallback,
        f"no front configuration is within {100 * WITHIN:.0f} points: {KNEE_FALLBACK_LABEL}, half the blocks",
    )


def _interval(row: dict | None) -> str:
    if row is None:
        return "not run"
    d = row["vs_centralized_seed"]
    text = seed_interval_text(d["diff"], d["lo"], d["hi"], d["no_verdict"]) if d else _why_unjudged(row)
    return text + (f" ({why_unranked(row)})" if why_unranked(row) else "")


def _read_in(rows: list[dict], partition: str, of: tuple) -> dict | None:
    """The configuration of family and size `of` among one task and model's rows in a partition
    (by family, as auto:k's label names the blocks each probe chose), a ranked row before a
    running or tuning one."""
    mine = [r for r in rows if r["partition"] == partition and family(r) == of]
    return min(mine, key=lambda r: bool(why_unranked(r)), default=None)


def _across(table: list[dict], iid: dict, of: tuple) -> str:
    """'iid -0.8 [-1.5, +0.0] n.s.; dirichlet:0.5 not run': one configuration in every partition
    of the iid set's task and model."""
    rows = [r for r in table if plain(r) and (r["task"], r.get("model")) == (iid["task"], iid.get("model"))]
    partitions = sorted({r["partition"] for r in rows}, key=partition_order)
    return "; ".join(f"{p} {_interval(_read_in(rows, p, of))}" for p in partitions)


def _knee_line(sets: list[dict], table: list[dict], pending: list[dict]) -> list[str]:
    """The knee chosen on a task's iid set, its difference to centralized in every partition of
    that task, and half the blocks' (KNEE_FALLBACK) beside it where the knee is another (issue 25 item 4)."""
    lines = []
    for iid in (s for s in sets if s["partition"] == "iid"):
        row, how = knee(iid)
        if row is None:
            lines += [
                f"**Knee, {named(iid, sets)}**: none ({how}, which has no ranked result here)."
                + _provisional(iid, pending),
                "",
            ]
            continue
        line = _sentence(
            f"**Knee, {named(iid, sets)}**: {row['method']} ({how}). Δ vs centralized: {_across(table, iid, family(row))}"
        )
        if family(row) != KNEE_FALLBACK:
            line += " " + _sentence(f"Half the blocks ({KNEE_FALLBACK_LABEL}): {_across(table, iid, KNEE_FALLBACK)}")
        lines += [line + _provisional(iid, pending), ""]
    return lines


def _provisional(iid: dict, pending: list[dict]) -> str:
    """' Provisional: layerskip top:4 (incomplete (1/3 seeds)) is not a result yet. Not run yet:
    lora r2.': configurations of the set still running, or planned with no run so far (their
    tuning not finished), any of which could become the knee."""
    running = [f"{r['method']} ({waiting(r)})" for r in iid["configs"] if waiting(r)]
    text = (
        f" Provisional: {', '.join(running)} {'is' if len(running) == 1 else 'are'} not a result yet."
        if running
        else ""
    )
    missing = not_run(iid, pending)
    return text + (f" Not run yet: {', '.join(missing)}." if missing else "")


def not_run(iid: dict, pending: list[dict]) -> list[str]:
    """The labels of the set's configurations among `pending` (configs the grid plans that have
    no stored run) that no row of the set has yet."""
    have, found = {r["method"] for r in iid["configs"]}, []
    for config in pending:
        cfg = {**SETTING_DEFAULTS, **config}
        same = (cfg["task"], cfg["partition"]) == (iid["task"], iid["partition"]) and iid.get("model") in (
            None,
            cfg["model"],
        )
        if not same or variant(cfg) or cfg["dp_epsilon"] is not None or cfg["noise_multiplier"] is not None:
            continue
        label = method_label({"config": cfg}).replace(" []", "")  # auto:K names its blocks once run
        row = {"method": label, "layers": cfg["layers"] or "", "lora_rank": cfg["lora_rank"]}
        if family(row)[0] in (*SIZED, "fedavg") and label not in have and label not in found:
            found.append(label)
    return found


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."  # an interval may end in 'n.s.'


def headline(table: list[dict], pending: list[dict] | tuple = ()) -> list[str]:
    """The report's first lines on the question, per task's iid set (a task without one: every
    set), then the knee read in every partition; `pending`: the configs the grid plans that have
    no stored run yet (the knee line names them)."""
    lines = []
    sets = frontier_sets(table)
    with_iid = {(s["task"], s.get("model")) for s in sets if s["partition"] == "iid"}
    for found in sets:
        if found["partition"] != "iid" and (found["task"], found.get("model")) in with_iid:
            continue  # under label skew only the knee is asked (its line below); its rows are in the table
        where = f"{named(found, sets)} ({found['partition']})"
        lines += [
            f"**Depth/rank frontier, {where}.** Seed-level 95% intervals of (configuration - centralized), "
            "each at 95% on its own (not adjusted for the number of configurations read): "
            f"{_smallest_within(found, 'top')}; {_smallest_within(found, 'bottom')}.",
            "",
            "Best test metric at each budget of bytes moved to the reported state (the Pareto front, by the "
            "means over reported seeds: it ranks, it does not test; each step up is then tested, as the gain in "
            "points over the next cheaper point, paired by seed, n.s. where its interval holds 0): "
            f"{_front_by_budget(found)}.",
            "",
        ]
    return lines + _knee_line(sets, table, list(pending))
