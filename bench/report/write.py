"""Tables and figures, built from stored results only (runs/*/final.json, rounds.jsonl,
test_items.json): the report can always be rebuilt from what is committed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.config import SETTING_DEFAULTS
from bench.engine.convergence import run_convergence
from bench.protocol.run_time import net_seconds
from bench.report import audit, figures, frontier, frontier_headline
from bench.report.render import NOTES, flat, latex, markdown
from bench.report.tables import main_table, shown_runs
from bench.store import atomic_write_text, load_runs, to_csv

SUMMARY_COLUMNS = [
    "task",
    "method",
    "layers",
    "partition",
    "alpha",
    "clients",
    "seed",
    "epsilon",
    "dp_epsilon",
    "metric_name",
    "metric",
    "metric_last",
    "val_metric",
    "best_round",
    "rounds_run",
    "converged",
    "convergence",
    "role",
    "lora_rank",
    "frozen_mode",
    "lr",
    "bytes_up_total",
    "bytes_down_total",
    "trainable_params",
    "total_params",
    "wall_s",
    "run_s",
    "status",
    "rounds",
    "blocks",
    "run_id",
]


def summary_row(run: dict) -> dict:
    cfg = run["config"]
    full = {**SETTING_DEFAULTS, **cfg}  # a stored config that predates a setting has its default
    part = cfg["partition"]
    alpha = float(part.split(":")[1]) if ":" in part else None
    row = {
        "task": cfg["task"],
        "method": cfg["method"],
        "layers": cfg.get("layers") or "",
        "partition": part,
        "alpha": alpha,
        "clients": cfg["clients"],
        "seed": cfg["seed"],
        "epsilon": run.get("epsilon"),
        "dp_epsilon": cfg.get("dp_epsilon"),
        "lr": cfg.get("lr"),
        "status": run.get("status", "failed"),
        "run_id": run["run_id"],
        "blocks": " ".join(map(str, (run.get("method_info") or {}).get("blocks", []))),
        "lora_rank": full["lora_rank"] if cfg["method"] == "lora" else None,
        "frozen_mode": full["frozen_mode"] if cfg["method"] == "layerskip" else None,
        "role": run.get("role", "reported"),
    }
    for key in (
        "metric_name",
        "metric",
        "metric_last",
        "val_metric",
        "best_round",
        "rounds_run",
        "bytes_up_total",
        "bytes_down_total",
        "trainable_params",
        "total_params",
        "wall_s",
        "rounds",
    ):
        row[key] = run.get(key)
    history = [h for h in run.get("history") or [] if h.get("wall_s") is not None]
    row["run_s"] = round(net_seconds(history), 3) if history else None  # wall_s less the pauses
    row["convergence"] = run_convergence(run) if row["status"] == "ok" else None
    row["converged"] = row["convergence"] == "converged" if row["convergence"] else None
    return row


def write_report(
    out: Path,
    run_ids: list[str] | None = None,
    runs_dir: Path | None = None,
    study: str | None = None,
    notes: list[str] | None = None,
    tuning: set[str] | frozenset = frozenset(),
    planned_seeds: dict[tuple, int] | None = None,
    tuning_csv: Path | None = None,
    pending: list[dict] | None = None,
) -> Path:
    """summary.csv, tables/, figures/ and report.md under `out`, from the runs stored in
    `runs_dir` (default out/runs); a study's report names the study in every caption. Runs in
    `tuning` chose a setting: summary.csv marks them `tuning`, and the tables leave them out of
    every cell that has reported seeds. `planned_seeds` (cell_key -> the reported seeds a grid
    asks of it) marks cells with fewer as incomplete; `tuning_csv` (default out/tuning.csv) is the
    grid's sweep record, which a study's report reads from the grid's folder; `pending` the configs
    the grid plans that have no stored run (the frontier's knee line names them)."""

    runs_dir = runs_dir or out / "runs"
    runs = load_runs(runs_dir, run_ids)
    for run in runs:
        run["role"] = "tuning" if run["run_id"] in tuning else "reported"
    if run_ids is not None and len(runs) < len(run_ids):  # the tables use what exists, and say so
        notes = [*(notes or []), f"**{len(run_ids) - len(runs)} of {len(run_ids)} runs have no stored result yet.**\n"]
    rows = [summary_row(r) for r in runs]
    atomic_write_text(out / "summary.csv", to_csv(rows, SUMMARY_COLUMNS))
    table = main_table(runs, planned_seeds)
    depth = frontier.all_rows(table)
    _write_tables(out / "tables", table, depth)
    made = figures.write_all(shown_runs(runs), out / "figures", table)
    if study:
        made = [(name, f"{caption} (study {study})") for name, caption in made]
    checks = audit.section(runs, tuning_csv or out / "tuning.csv", runs_dir, own_sweeps_only=study is not None)
    text = _headline(out, study, rows, checks, notes) + frontier_headline.headline(table, pending or [])
    text += [narrative(table), "", "## Main table", "", markdown(table)]
    text += _frontier_section(depth)
    text += [NOTES, "", "## Figures", ""] + [f"![{c}](figures/{name}.png)  \n*{c}*\n" for name, c in made]
    text += checks + _unconverged_section(rows) + _failed_section(rows, runs)
    atomic_write_text(out / "report.md", "\n".join(text) + "\n")
    return out / "report.md"


def narrative(table: list[dict]) -> str:
    """One paragraph of what the numbers say, computed from the table."""
    sentences = []
    running = [t for t in table if not t.get("complete", True)]  # its tuning seed alone included
    for t in table:
        if not t["method"].startswith("layerskip") or t in running:
            continue
        bits = [
            f"On {t['task']} ({t['partition']}{', ε ' + format(t['epsilon'], 'g') if t['epsilon'] else ''}), "
            f"{t['method']} scored {t['metric']:.3f}"
        ]
        if (gap := t["gap_to_centralized_pts"]) is not None:
            bits.append(
                f"{abs(gap):.1f} points {'below' if gap >= 0 else 'above'} centralized{_gap_interval(t, gap >= 0)}"
            )
        if t["reduction_vs_fedavg_pct"] is not None:  # the whole runs', as the table's total bytes
            bits.append(f"while moving {100 - t['reduction_vs_fedavg_pct']:.0f}% of FedAvg's bytes over its whole run")
        sentences.append(", ".join(bits) + ".")
    if running:  # a partial cell's mean is not a result: named, not narrated
        sentences.append(
            f"Incomplete (fewer reported seeds than planned: running or failed; left out here): {len(running)} cell(s)."
        )
    if not sentences:
        return "No layer-skipping runs in this grid."
    return " ".join(sentences)


def _gap_interval(t: dict, below: bool) -> str:
    """The gap's seed-level interval where it has a verdict, in points below centralized (or
    above it, for a configuration that scored higher), as the sentence reads."""
    seed = t.get("vs_centralized_seed")
    if not seed or not seed.get("verdict"):
        return f" ({seed['no_verdict']}: no verdict)" if seed else " (fewer than 2 paired seeds: no interval)"
    lo, hi = (-100 * seed["hi"], -100 * seed["lo"]) if below else (100 * seed["lo"], 100 * seed["hi"])
    return f" [95% CI over seeds {lo:.1f}, {hi:.1f}]" + (" n.s." if seed["contains_zero"] else "")


def _failure_line(row: dict, error: str | None) -> str:
    """A failed run with the one-line reason it was stored with (a bad input's message as the
    command line printed it; a crash's exception type), so the report says why without opening files."""
    why = error.strip().splitlines()[0] if error else f"{row['status']}, see runs/{row['run_id']}/"
    return f"- `{row['run_id']}`: {why}"


def _write_tables(folder: Path, table: list[dict], depth: list[dict]) -> None:
    atomic_write_text(folder / "main.md", markdown(table))
    flat_rows = flat(table)
    atomic_write_text(folder / "main.csv", to_csv(flat_rows, list(flat_rows[0]) if flat_rows else ["task"]))
    atomic_write_text(folder / "main.tex", latex(table))
    for stale in ("frontier.md", "frontier.csv"):  # a report that no longer asks the question drops them
        (folder / stale).unlink(missing_ok=True)
    if depth:
        atomic_write_text(folder / "frontier.md", frontier.markdown(depth))
        atomic_write_text(folder / "frontier.csv", to_csv(depth, list(depth[0])))


def _frontier_section(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    return [
        "",
        "## Depth/rank frontier",
        "",
        "Bytes to the reported state: up and down until the best validation round, mean over reported seeds. "
        "Δ: seed-level 95% t-intervals, as in the main table. Pareto front: no other configuration moved at "
        "most as many bytes for at least as high a metric, by the means over reported seeds (it ranks, it does not "
        "test); only configurations with at least 3 reported seeds and their bytes are ranked.",
        "",
        frontier.markdown(rows),
    ]


def _headline(out: Path, study: str | None, rows: list[dict], checks: list[str], notes: list[str] | None) -> list[str]:
    """The title and the counts a reader checks first: runs, failures, runs not converged (by label)."""
    failed = sum(r["status"] != "ok" for r in rows)
    labels = Counter(r["convergence"] for r in rows if r["status"] == "ok" and r["convergence"] != "converged")
    by_label = f" ({', '.join(f'{n} {label}' for label, n in sorted(labels.items()))})" if labels else ""
    n_checks = sum(line.startswith("- ") for line in checks)
    flagged = f", {n_checks} finding{'s' * (n_checks != 1)} under Checks" if checks else ""
    title = f"# Results: {out.name}" + (f" (study {study})" if study else "")
    counts = f"{len(rows)} runs, {failed} failed, {sum(labels.values())} not converged{by_label}{flagged}."
    return [title, "", counts, "", *(notes or [])]


def _unconverged_section(rows: list[dict]) -> list[str]:
    unconverged = [r for r in rows if r["status"] == "ok" and r["convergence"] != "converged"]
    if not unconverged:
        return []
    return [
        "## Runs that did not converge",
        "",
        "`capped`: the round cap ended them while their validation metric was still rising by at least "
        "`min_delta` within the last `patience` rounds (their numbers rank early speed, not final quality); "
        "`dead`: they never rose, or fell back, to within `min_delta` of the untrained model's score.",
        "",
        *(
            f"- `{r['run_id']}`: {r['convergence']}, best round {r['best_round']} of {r['rounds_run']}"
            for r in unconverged
        ),
        "",
    ]


def _failed_section(rows: list[dict], runs: list[dict]) -> list[str]:
    failed = [r for r in rows if r["status"] != "ok"]
    if not failed:
        return []
    errors = {r["run_id"]: r.get("error") for r in runs}
    return ["## Failed runs", ""] + [_failure_line(r, errors.get(r["run_id"])) for r in failed]
