"""Is "converged" converged? A finished study's patience check (issue 23): every reported run
continued to a longer early-stopping patience, and what that moved.

    python -m bench.compare.patience_check --grid ncbi [--study main] [--patience 5] [--report-only]
    python -m bench.compare.patience_check --grid ncbi --study main --from-patience 3

Each reported run (tuning seed left out) is run again as the same cell with the longer patience:
bench.protocol.extend takes over its history and continues from its checkpoint where one is
kept (only the new rounds cost), takes it as is where it has stalled under the longer patience
too, and runs it afresh otherwise (committed results carry no checkpoints). Writes
OUT/patience_check.csv (per run: the metric and best validation at both patiences, rounds run,
whether validation gained more than min_delta) and OUT/patience_check.md (per cell: the mean over
seeds at both patiences, the shift, the seed-level 95% half-width at the shorter patience, and
whether the shift exceeds it, the rule issue 23 set; beside it the paired 95% interval of the
shift itself; the study should adopt the longer patience if any cell's shift exceeds it). The
rule judges only cells with 3 or more pairs in which nothing but the patience changed: a
two-seed half-width has one degree of freedom and is small by chance, and another lr makes the
shift the protocol's; those cells are listed as not judged, with the reason.

Once a study has adopted the longer patience and been run again under it, `--from-patience P`
checks the other way round and runs nothing: each reported run is paired with the stored run of
its cell and seed at patience P (the shorter study's reported run). A run is a function of its
seed, so where the re-run's sweep chose the same learning rate the two share their first rounds
and differ only in where they stopped: the same check; where it chose another lr (or the study
changed layerskip's `frozen_mode` with it), the cell's `also changed` says so and its shift is
the whole protocol's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from bench.compare.patience_twins import also_changed, reproduced_note, shorter_twins
from bench.engine.ray_start import cluster_address
from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.protocol.grid import Cell, load_grid
from bench.protocol.runner import run_cells
from bench.protocol.study import finals_of, run_grid, studies_of
from bench.protocol.tuning import tuning_runs
from bench.report.stats import MIN_SEEDS_FOR_VERDICT, seed_interval, seed_paired_interval
from bench.report.tables import cell_key, method_label
from bench.store import atomic_write_text, to_csv

COLUMNS = [
    "cell",
    "seed",
    "metric",
    "metric_longer",
    "val_metric",
    "val_metric_longer",
    "rounds_run",
    "rounds_run_longer",
    "gained",
    "lr",
    "lr_longer",
    "run_id",
    "run_id_longer",
]


def longer(cell: Cell, patience: int) -> Cell:
    cfg = cell.config.with_settings(patience=patience)
    return dataclasses.replace(cell, run_id=cfg.run_id, config=cfg, tune=None)


def compare(pairs: list[tuple[dict, dict]], min_delta: float) -> tuple[list[dict], list[dict]]:
    """(one row per run, one row per cell) from (shorter, longer) final.json pairs."""
    runs, cells = [], {}
    for short, long in pairs:
        label = f"{method_label(short)} ({short['config']['partition']})"
        runs.append(
            {
                "cell": label,
                "seed": short["config"]["seed"],
                "metric": short["metric"],
                "metric_longer": long["metric"],
                "val_metric": short["val_metric"],
                "val_metric_longer": long["val_metric"],
                "rounds_run": short["rounds_run"],
                "rounds_run_longer": long["rounds_run"],
                "gained": long["val_metric"] > short["val_metric"] + min_delta,
                "lr": short["config"].get("lr"),
                "lr_longer": long["config"].get("lr"),
                "run_id": short["run_id"],
                "run_id_longer": long["run_id"],
            }
        )
        entry = cells.setdefault(cell_key(long), (label, [], set()))
        entry[1].append((short["metric"], long["metric"]))
        for key, (before, after) in also_changed(short, long).items():
            entry[2].add(f"{key} {before:g} -> {after:g}" if key == "lr" else f"{key} {before} -> {after}")
    rows = []
    for label, values, changed in cells.values():
        before = seed_interval([a for a, _ in values])
        after = seed_interval([b for _, b in values])
        shift = after["mean"] - before["mean"]
        half = before["ci95"]
        paired = seed_paired_interval([b - a for a, b in values])  # the shift's own interval, for the reader
        rows.append(
            {
                "cell": label,
                "seeds": len(values),
                "mean": before["mean"],
                "mean_longer": after["mean"],
                "shift": shift,
                "half_width": half,
                "shift_lo": paired["lo"] if paired else None,
                "shift_hi": paired["hi"] if paired else None,
                # judged only on 3+ pairs (a 2-seed half-width has 1 df: small by chance) where only
                # the patience changed (another lr or frozen_mode makes the shift the protocol's)
                "moved_beyond_interval": (
                    None if half is None or len(values) < MIN_SEEDS_FOR_VERDICT or changed else abs(shift) > half
                ),
                "no_verdict": _why_no_verdict(len(values), changed),
                "also_changed": ", ".join(sorted(changed)),
            }
        )
    return runs, sorted(rows, key=lambda r: r["cell"])


def _why_no_verdict(pairs: int, changed: set) -> str:
    if pairs < MIN_SEEDS_FOR_VERDICT:
        return f"{pairs} pair(s)"
    return "more than the patience changed" if changed else ""


def _beyond(cell: dict) -> str:
    judged = cell["moved_beyond_interval"]
    return f"not judged: {cell['no_verdict']}" if judged is None else "yes" if judged else "no"


def markdown(runs: list[dict], cells: list[dict], patience: tuple[int, int]) -> str:
    gained = sum(r["gained"] for r in runs)
    moved = [c["cell"] for c in cells if c["moved_beyond_interval"]]
    unjudged = [f"{c['cell']} ({c['no_verdict']})" for c in cells if c["moved_beyond_interval"] is None]
    if moved:
        verdict = f"**Adopt patience {patience[1]}**: {', '.join(moved)} moved by more than the seed-level half-width."
    elif not any(c["moved_beyond_interval"] is False for c in cells):
        verdict = f"**No verdict**: no cell has {MIN_SEEDS_FOR_VERDICT} pairs with only the patience changed."
    else:
        verdict = (
            f"**Patience {patience[0]} stands**: no judged cell's mean moved by more than its seed-level half-width."
        )
    if unjudged:
        verdict += f" Not judged: {'; '.join(unjudged)}."
    lines = [
        f"# Patience check: {patience[0]} -> {patience[1]}",
        "",
        f"{len(runs)} reported runs continued; {gained} gained more than min_delta on validation. {verdict}",
        "",
        "| cell | seeds | mean | mean (longer) | shift, pts [paired 95% CI] | seed-level half-width, pts | beyond | also changed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        half = "-" if c["half_width"] is None else f"{100 * c['half_width']:.1f}"
        lines.append(
            f"| {c['cell']} | {c['seeds']} | {c['mean']:.3f} | {c['mean_longer']:.3f} | {100 * c['shift']:+.1f}"
            + ("" if c["shift_lo"] is None else f" [{100 * c['shift_lo']:+.1f}, {100 * c['shift_hi']:+.1f}]")
            + f" | {half} | {_beyond(c)} | {c['also_changed']} |"
        )
    if any(c["also_changed"] for c in cells):
        lines += [
            "",
            "Where more than the patience changed, the shift is the whole protocol's, not the patience's alone.",
        ]
    return "\n".join(lines) + "\n"


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m bench.compare.patience_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", required=True, help="quick, paper, ncbi, medquad, dp, or a FILE.yaml")
    parser.add_argument("--study", default=None)
    parser.add_argument("--out", default=None, help="default: results/<grid>")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument(
        "--from-patience",
        type=int,
        default=None,
        help="the study ran again at a longer patience: compare its reported runs with their stored twins at this one (runs nothing)",
    )
    parser.add_argument("--report-only", action="store_true", help="compare what is stored; run nothing")
    parser.add_argument("--resume", action="store_true", help="continue interrupted continuations")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--ray-address", default=cluster_address(None), help="default: $RAY_ADDRESS")
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.tune = False
    name, grid = load_grid(args.grid)
    out = Path(args.out or Path("results") / name)
    planned = list({c.run_id: c for cells in studies_of(grid, args).values() for c in cells}.values())
    stored_only = argparse.Namespace(**{**vars(args), "report_only": True, "probe_edges": False})
    with tempfile.TemporaryDirectory() as scratch:  # the grid's own cells, read, never run: the
        (Path(scratch) / "runs").symlink_to((out / "runs").resolve())  # report files it writes are dropped
        ran, final_of = run_grid(name, grid, planned, Path(scratch), stored_only)
    tuning = tuning_runs(planned, final_of)
    reported = [c for c in ran if c.run_id not in tuning]
    if args.from_patience is not None:
        return _against_stored(reported, out, args.from_patience)
    shorter = {c.config.patience for c in reported}
    if not reported or max(shorter) >= args.patience:
        raise BenchError(f"--patience {args.patience}: the reported runs have patience {sorted(shorter)} already")
    continued = [longer(c, args.patience) for c in reported]
    if not args.report_only:
        run_cells(continued, out / "runs", args.resume, f"patience {args.patience}", args.parallel, args.ray_address)
    finals = finals_of(out / "runs", [c.run_id for c in reported + continued])
    pairs = [
        ({**finals[a.run_id], "run_id": a.run_id}, {**finals[b.run_id], "run_id": b.run_id})
        for a, b in zip(reported, continued)
        if a.run_id in finals and b.run_id in finals
    ]
    if not pairs:
        raise BenchError(f"{out}: no reported run has its longer-patience continuation stored yet")
    missing = len(reported) - len(pairs)
    note = f"{missing} of {len(reported)} reported runs have no continuation stored yet." if missing else ""
    return _write(out, pairs, min(c.config.min_delta for c in reported), (max(shorter), args.patience), note)


def _against_stored(reported: list[Cell], out: Path, patience: int) -> int:
    current = min(c.config.patience for c in reported) if reported else None
    if not reported or patience >= current:
        raise BenchError(f"--from-patience {patience}: the reported runs' patience is {current}, not longer")
    stored = {
        p.parent.name: {**json.loads(p.read_text()), "run_id": p.parent.name}
        for p in (out / "runs").glob("*/final.json")
    }
    long = [stored[c.run_id] for c in reported if c.run_id in stored]
    pairs = shorter_twins(long, sorted(stored.values(), key=lambda f: f["run_id"]), patience)
    if not pairs:
        raise BenchError(f"{out}: no reported run has a stored twin at patience {patience}")
    missing = len(reported) - len(pairs)
    notes = [reproduced_note(pairs, out / "runs")]
    if missing:
        notes.append(
            f"{missing} of {len(reported)} reported runs have no twin at patience {patience} stored (or have not run)."
        )
    return _write(out, pairs, min(c.config.min_delta for c in reported), (patience, current), "\n".join(notes))


def _write(out: Path, pairs: list, min_delta: float, patience: tuple[int, int], note: str) -> int:
    runs, cells = compare(pairs, min_delta)
    atomic_write_text(out / "patience_check.csv", to_csv(runs, COLUMNS))
    text = markdown(runs, cells, patience) + (f"\n{note}\n" if note else "")
    atomic_write_text(out / "patience_check.md", text)
    print(text.splitlines()[2])
    print(f"wrote {out / 'patience_check.md'} and {out / 'patience_check.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
