"""Run a benchmark grid: parse flags -> load a grid -> tune -> run each missing cell -> write the report.

    python run_all.py [--grid quick|paper|ncbi|FILE.yaml] [--out DIR] [--resume] [--report-only] [--tune]

Finished cells (a final.json in DIR/runs/<run-id>/) are always skipped; --resume also continues
an interrupted cell from its last round checkpoint instead of restarting it. A failed cell is
recorded (failed.json) and the grid goes on. A grid with `tune:` first sweeps those settings on
its first seed and runs every seed with the values chosen on validation (bench.protocol.tuning).
--study NAME runs one study of a grid with studies, then reports the whole grid as --report-only
would (DIR/ and every DIR/studies/<study>/), so DIR/ never shows one study's cells as the grid's.
--check rebuilds DIR's report in a temporary copy and names each stored file it does not match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.engine.ray_start import cluster_address
from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.protocol.grid import load_grid
from bench.protocol.overrides import overridden
from bench.protocol.plan_grid import print_plan
from bench.protocol.study import completeness_notes, pending_configs, run_grid, studies_of, study_notes
from bench.protocol.tuning import tuning_runs
from bench.report import check
from bench.report.tables import planned_seeds
from bench.report.write import write_report


def parser() -> OneLineArgumentParser:
    """The command line's flags."""
    parser = OneLineArgumentParser(prog="run_all.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="quick", help="quick, paper, ncbi, medquad, dp, or a FILE.yaml")
    parser.add_argument("--out", default=None, help="default: results/<grid>")
    parser.add_argument("--resume", action="store_true", help="continue interrupted cells from their checkpoints")
    parser.add_argument("--report-only", action="store_true", help="rebuild tables and figures from stored results")
    parser.add_argument(
        "--check", action="store_true", help="is --out's report what its runs give now? (exit 1 if not)"
    )
    parser.add_argument(
        "--tune", action="store_true", help="sweep the grid's `tune` settings again and rewrite its `tuned` file"
    )
    parser.add_argument(
        "--probe-edges",
        action="store_true",
        help="run each finished choice at the edge of its sweep once more one step beyond (only those), then the report",
    )
    parser.add_argument("--study", default=None, help="run (or plan) one study of a grid with studies")
    parser.add_argument(
        "--plan", action="store_true", help="print cells per study, what is done and the estimated cost; train nothing"
    )
    parser.add_argument("--pilot", action="store_true", help="time one round per model x method shape here, for --plan")
    parser.add_argument("--parallel", type=int, default=1, help="cells at once, each a Ray task holding its resources")
    parser.add_argument(
        "--ray-address",
        default=cluster_address(None),
        help="run the cells on this Ray cluster (e.g. auto, or HEAD:6379; default: $RAY_ADDRESS)",
    )
    parser.add_argument("--model", default=None, help="override the grid's model (e.g. a local Llama-3.2-1B folder)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="a root holding each task's release folder (i2b2-2010/, i2b2-2014/, mimic-iii/, ...)",
    )
    return parser


def planned_cells(grid: dict, args) -> tuple[dict, list]:
    """(study -> its cells, the distinct cells of them all: a cell shared by studies once)."""
    studies = {study: overridden(members, args) for study, members in studies_of(grid, args).items()}
    return studies, list({c.run_id: c for members in studies.values() for c in members}.values())


def whole_grid(name: str, grid: dict, out: Path, args) -> tuple[dict, list, list, dict]:
    """(studies, planned cells, cells as run, planned -> run) over every study, report-only: what
    a --study run reports afterwards."""
    args = argparse.Namespace(**{**vars(args), "study": None, "report_only": True, "tune": False, "probe_edges": False})
    studies, planned = planned_cells(grid, args)
    return (studies, planned, *run_grid(name, grid, planned, out, args))


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.report_only |= args.probe_edges or args.check  # probing trains only the probes; checking nothing
    if args.parallel < 1:
        raise BenchError(f"--parallel must be >= 1, not {args.parallel}")
    if args.check and (args.tune or args.probe_edges or args.plan or args.pilot or args.study):
        raise BenchError("--check rebuilds the whole stored report and trains nothing: drop the other actions")
    name, grid = load_grid(args.grid)
    out = Path(args.out or Path("results") / name)
    if args.check:  # exit 1 when a stored file differs or is missing; DIR is not written
        return check.verdict(out, lambda copy: run(name, grid, copy, args))
    return run(name, grid, out, args)


def run(name: str, grid: dict, out: Path, args) -> int:
    """Tune and run what the flags ask (nothing under --report-only), then write the reports."""
    studies, cells = planned_cells(grid, args)
    if args.probe_edges and not any(c.tune for c in cells):
        raise BenchError(f"{grid['_path']}: --probe-edges needs a 'tune' key in the grid")
    if args.plan or args.pilot:
        return print_plan(grid, studies, cells, out, args)
    planned, final_of = cells, None
    whole = args.study is not None and "studies" in grid  # DIR/ is the whole grid's: reported over every study
    if not (whole and args.report_only and not args.probe_edges):  # a study's report-only is the whole grid's
        cells, final_of = run_grid(name, grid, cells, out, args)
    grid_report = True  # DIR/'s own report: never over one study's cells alone
    if whole:
        try:
            studies, planned, cells, final_of = whole_grid(name, grid, out, args)
        except BenchError as error:  # e.g. another study's stale sweep record: this study's report still stands
            print(
                f"warning: {out}: only study {args.study}'s report was rebuilt, not the grid's: {error}",
                file=sys.stderr,
            )
            grid_report = False
            if final_of is None:
                cells, final_of = run_grid(name, grid, planned, out, args)
    tuning = tuning_runs(planned, final_of)  # they chose the settings: reported seeds are the others
    seeds = planned_seeds(cells, tuning)
    if grid_report:
        notes = completeness_notes(planned, final_of, out / "runs")
        pending = pending_configs(planned, final_of)
        report = write_report(
            out, [c.run_id for c in cells], notes=notes, tuning=tuning, planned_seeds=seeds, pending=pending
        )
        print(f"wrote {out / 'summary.csv'}, {report}, {out / 'tables'}/, {out / 'figures'}/")
    if "studies" in grid:  # each study's own tables and figures, from the shared store
        for study, members in studies.items():
            write_report(
                out / "studies" / study,
                [final_of[c.run_id].run_id for c in members if c.run_id in final_of],
                out / "runs",
                study,
                study_notes(grid, study, members, final_of, out / "runs", grid_report),
                tuning,
                planned_seeds=seeds,
                tuning_csv=out / "tuning.csv",  # the grid's sweep record: the study's checks read it too
                pending=pending_configs(members, final_of),
            )
        print(f"wrote {out / 'studies'}/<study>/report.md for each study")
    return 0


if __name__ == "__main__":
    sys.exit(main())
