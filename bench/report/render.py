"""The main table rendered: Markdown and LaTeX with one formatter per column, the notes under it,
and the flat form for CSV (nested comparisons spread into columns)."""

from __future__ import annotations

from bench.report.matched import MATCHED_SHARE


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def seed_interval_text(diff, lo, hi, no_verdict: str | None = None) -> str:
    """A seed-level difference in points with its interval: n.s. when the interval holds 0, 'no
    verdict' (and why) when one is shown but not judged; '-' when there is none."""
    if lo is None:
        return "-"
    text = f"{100 * diff:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    if no_verdict:
        return f"{text} ({no_verdict}: no verdict)"
    return text + (" n.s." if lo <= 0 <= hi else "")


def _fmt_metric(t: dict) -> str:
    if not t.get("complete", True):  # a cell still running: its numbers are not a result yet
        if t["seed_role"] == "tuning only":
            return f"incomplete (0/{t['seeds_planned']} seeds; the tuning seed: {t['metric']:.3f})"
        return f"incomplete ({t['seeds']}/{t['seeds_planned']} seeds): {t['metric']:.3f}"
    if t["seeds"] == 1:
        return f"{t['metric']:.3f} (1 seed{', the tuning seed' if t['seed_role'] == 'tuning only' else ''})"
    return f"{t['metric']:.3f} ± {t['metric_std']:.3f} [±{t['metric_ci95']:.3f}]"


def _fmt_diff(seed: dict | None, test: dict | None) -> str:
    """The seed-level interval (the headline; n.s. when it contains 0), then the test-sampling one."""
    if seed is None and test is None:
        return "-"
    if seed is None:  # one seed: no interval over seeds
        text = f"{100 * test['diff']:+.1f} (1 seed)"
    else:
        text = seed_interval_text(seed["diff"], seed["lo"], seed["hi"], seed.get("no_verdict"))
    return text + (f"; test only [{100 * test['lo']:+.1f}, {100 * test['hi']:+.1f}]" if test else "")


def _fmt_matched(t: dict) -> str:
    if not t["communicates"] or t["method"].startswith("centralized") or t["matched_seeds"] is None:
        return "-"
    if t["matched_rounds"] is None:
        return f"never ({t['matched_seeds']} seeds)"
    return f"{t['matched_rounds']:.1f} r, {fmt_bytes(t['matched_bytes'])} ({t['matched_seeds']} seeds)"


def _fmt_optional(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


COLUMNS = [  # (header, formatter, shown only when some row has a DP target)
    ("task", lambda t: t["task"], False),
    ("method", lambda t: t["method"], False),
    ("partition", lambda t: t["partition"], False),
    (
        "ε target",
        lambda t: _fmt_optional(t["epsilon"], "{:g}") + (f" ({t['dp_level']})" if t["dp_level"] else ""),
        True,
    ),
    ("ε spent", lambda t: _fmt_optional(t["epsilon_spent"], "{:.2f}"), True),
    ("metric: mean ± std [95% CI]", _fmt_metric, False),
    ("lr", lambda t: _fmt_optional(t["lr"], "{:g}"), False),
    ("best round / run", lambda t: f"{t['best_round']:.1f} / {t['rounds_run']:.1f}", False),
    ("converged", lambda t: f"{t['converged']}/{t['seeds']}" + ("" if t["converged"] == t["seeds"] else " †"), False),
    ("Δ vs fedavg, pts [95% CI over seeds]", lambda t: _fmt_diff(t["vs_fedavg_seed"], t["vs_fedavg"]), False),
    (
        "Δ vs centralized, pts [95% CI over seeds]",
        lambda t: _fmt_diff(t["vs_centralized_seed"], t["vs_centralized"]),
        False,
    ),
    (f"to {MATCHED_SHARE:.0%} of centralized (val)", _fmt_matched, False),
    ("bytes/round", lambda t: fmt_bytes(t["bytes_per_round"]), False),
    ("total bytes", lambda t: fmt_bytes(t["bytes_total"]), False),
    ("reduction vs fedavg (%)", lambda t: _fmt_optional(t["reduction_vs_fedavg_pct"], "{:.1f}"), False),
    ("trainable (%)", lambda t: f"{t['trainable_pct']:.1f}", False),
]

NOTES = (
    "Metric: test score of the state from the best validation round, mean ± sample std over seeds, "
    "[half-width of a 95% t-interval]. Δ: paired difference in points (this method minus the other, same "
    "seeds), mean over seeds with a 95% t-interval over the per-seed differences (n - 1 degrees of freedom; "
    "seeds are the unit of replication); n.s. = that interval contains 0; with fewer than 3 seeds no verdict "
    "is given (one degree of freedom). Each method runs at the lr its tuning seed chose, so Δ compares methods "
    "as tuned, selection included. 'test only': a paired bootstrap "
    "over the test set with the trained models held fixed (test sampling only; not nested in the seed "
    "interval, and wider where seeds agree closely), "
    "resampling whole documents or patients where the task records them "
    "(main.csv's `bootstrap_unit`). "
    f"† = not every seed converged (validation gain below min_delta over the last `patience` rounds). "
    f"'to {MATCHED_SHARE:.0%}': rounds and bytes (up + down) until the validation metric first reached the "
    f"task's target, {MATCHED_SHARE:.0%} of the mean over centralized's seeds of its best validation metric; "
    "median over seeds, a seed that never did counting as infinite (`never` when the median is), with k/n seeds."
)


def _columns(table: list[dict]) -> list[tuple]:
    private = any(t["epsilon"] is not None for t in table)
    return [c for c in COLUMNS if private or not c[2]]


def display_rows(table: list[dict]) -> tuple[list[str], list[list[str]]]:
    cols = _columns(table)
    return [h for h, _, _ in cols], [[f(t) for _, f, _ in cols] for t in table]


def markdown(table: list[dict]) -> str:
    head, rows = display_rows(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def latex(table: list[dict]) -> str:
    swaps = {"%": r"\%", "_": r"\_", "±": r"$\pm$", "Δ": r"$\Delta$", "ε": r"$\varepsilon$", "†": r"$^\dagger$"}

    def esc(text: str) -> str:
        for plain, tex in swaps.items():
            text = text.replace(plain, tex)
        return text

    head, rows = display_rows(table)
    lines = [
        r"\begin{tabular}{lll" + "r" * (len(head) - 3) + "}",
        r"\toprule",
        " & ".join(esc(h) for h in head) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def flat(table: list[dict]) -> list[dict]:
    """The table for CSV: nested comparisons spread into columns."""
    rows = []
    for t in table:
        row = {k: v for k, v in t.items() if not k.startswith("vs_")}
        # "1:0.7123 2:0.6987 ...": seed order, full float precision, parseable back (tests/test_frontier.py)
        row["seed_metrics"] = " ".join(
            f"{seed}:{float(m)!r}" for seed, m in sorted((t.get("seed_metrics") or {}).items())
        )
        for name in ("vs_fedavg", "vs_centralized"):
            test, seed = t[name] or {}, t[f"{name}_seed"] or {}
            row[f"{name}_diff"] = seed.get("diff", test.get("diff"))
            row.update({f"{name}_seed_lo": seed.get("lo"), f"{name}_seed_hi": seed.get("hi")})
            row[f"{name}_seed_n"] = seed.get("seeds")  # the seeds both sides have: the pairs
            # judged only with MIN_SEEDS_FOR_VERDICT pairs: True/False then, empty otherwise
            row[f"{name}_significant"] = (not seed["contains_zero"]) if seed.get("verdict") else None
            row.update({f"{name}_test_lo": test.get("lo"), f"{name}_test_hi": test.get("hi")})
        units = {(t[name] or {}).get("unit") for name in ("vs_fedavg", "vs_centralized")} - {None}
        row["bootstrap_unit"] = units.pop() if len(units) == 1 else ("/".join(sorted(units)) or None)
        rows.append(row)
    return rows
