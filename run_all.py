"""Run a benchmark grid: parse flags -> load a grid -> tune -> run each missing cell -> write the report.

    python run_all.py [--grid quick|paper|ncbi|FILE.yaml] [--out DIR] [--resume] [--report-only] [--tune]

Finished cells (a final.json in DIR/runs/<run-id>/) are always skipped; --resume also continues
an interrupted cell from its last round checkpoint instead of restarting it. A failed cell is
recorded (failed.json) and the grid goes on. A grid with `tune:` first sweeps those settings on
its first seed and runs every seed with the values chosen on validation (bench.protocol.tuning).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from bench.data import TASKS
from bench.data.registry import release_folder
from bench.engine import execution
from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.protocol import edge_probe, extend, plan, tuning
from bench.protocol.grid import Cell, expand_studies, load_grid
from bench.protocol.runner import run_cells
from bench.report.write import write_report
from bench.store import atomic_write_text, to_csv

TUNING_COLUMNS = [
    "task",
    "method",
    "layers",
    "partition",
    "epsilon",
    "setting",
    "value",
    "val_metric",
    "converged",
    "rounds_run",
    "chosen",
    "group",
    "run_id",
]


def scale(args) -> tuple[int, str | None]:
    return args.parallel, args.ray_address


def with_settings(cells: list[Cell], changes) -> list[Cell]:
    """Cells with `changes(config)` applied (new identities where they change what is computed)."""
    out = []
    for cell in cells:
        cfg = cell.config.with_settings(**changes(cell.config))
        out.append(dataclasses.replace(cell, run_id=cfg.run_id, config=cfg))
    return out


def task_folder(root: str, task: str) -> Path:
    """ROOT/<the task's release folder>: i2b2-2010/, i2b2-2014/, mimic-iii/, ..."""

    folder = Path(root) / release_folder(TASKS.get(task))
    if not folder.is_dir():
        raise BenchError(f"--data-dir {root}: no folder {folder.name}/ for task {task} (expected {folder})")
    return folder


def stored_finals(runs: Path, cells: list[Cell]) -> dict[str, dict]:
    finals = {}
    for cell in cells:
        path = runs / cell.run_id / "final.json"
        if path.is_file():
            finals[cell.run_id] = json.loads(path.read_text())
    return finals


def seeds_when_swept(points: list, cells: list[Cell], settings: list[str], runs: Path, where: str):
    """run_cells' `then`: when the last sweep point of a group ends, choose on validation and
    hand back the group's seed cells with the choice. Groups are swept in grid order and each
    group's seeds jump the queue, so results still come a whole group at a time, but a free
    slot never waits for a phase to end while another group's points are ready."""
    group_of_run = {p.cell.run_id: p.group for p in points}
    left = {g: {p.cell.run_id for p in points if p.group == g} for g in group_of_run.values()}

    def then(cell: Cell, status: str) -> list[Cell]:
        group = group_of_run.get(cell.run_id)
        if group is None or cell.run_id not in left[group]:
            return []  # a seed cell, or a point already heard of (seed 0 runs the chosen point)
        left[group].discard(cell.run_id)
        if left[group]:
            return []
        mine = [p for p in points if p.group == group]
        choice, _ = tuning.choose(mine, stored_finals(runs, [p.cell for p in mine]))
        seeds = [c for c in cells if tuning.group_of(c.config, settings) == group]
        return tuning.apply_choices(seeds, settings, choice, where)

    return then


def tuned_file(grid: dict) -> Path | None:
    """The grid's `tuned` choices file (beside the grid), if it names one."""
    return Path(grid["_path"]).parent / grid["tuned"] if grid.get("tuned") else None


def tuned_cells(name: str, grid: dict, cells: list[Cell], out: Path, args, notes: list[str]) -> list[Cell | None]:
    """The cells with their tuned values: swept here (a grid's `tune`, or --tune) or read from
    the grid's `tuned` file. Writes DIR/tuning.csv and the choices file when it sweeps."""
    where = grid["_path"]
    tuned = tuned_file(grid)
    swept = any(c.tune for c in cells)
    if args.tune and not swept:
        raise BenchError(f"{where}: --tune needs a 'tune' key in the grid")
    if not swept and tuned is None:
        return cells
    if tuned is not None and not args.tune and (tuned.is_file() or not swept):
        expected = tuning.swept_values(tuning.check_cells(cells, where)) if swept else None
        settings, choices = tuning.read_choices(tuned, expected)
        return tuning.apply_choices(cells, settings, choices, str(tuned))
    cells = tuning.check_cells(cells, where)
    settings = sorted(cells[0].tune)
    points = tuning.sweep_points(cells)
    if not args.report_only:
        run_cells(
            [p.cell for p in points],
            out / "runs",
            args.resume,
            f"grid {name}: tuning",
            *scale(args),
            then=seeds_when_swept(points, cells, settings, out / "runs", where),
        )
    partial = args.report_only  # a report on an unfinished sweep shows the groups that have results
    finals = stored_finals(out / "runs", [p.cell for p in points])
    choices, rows = tuning.choose(points, finals, partial)
    pending = len({p.cell.run_id for p in points} - set(finals))
    if pending:
        notes.append(
            f"**The tuning sweep is unfinished: {pending} of {len({p.cell.run_id for p in points})} points have no "
            "result yet, so the chosen learning rates (and every row) are provisional.**\n"
        )
    atomic_write_text(out / "tuning.csv", to_csv(rows, TUNING_COLUMNS))
    complete = len(choices) == len({p.group for p in points}) and all(r["val_metric"] is not None for r in rows)
    if complete:  # choices travel only once every point of every group has run
        tuning.write_choices(tuned or out / "tuned.yaml", name, tuning.swept_values(cells), choices, rows)
    return tuning.apply_choices(cells, settings, choices, where, partial)


def edge_probes_due(points: list[tuning.SweepPoint], runs: Path) -> list[tuple[dict, Cell]]:
    """(chosen tuning row, probe cell) for every choice at the edge of its range so far: among
    the groups whose sweep points have all run (bench.protocol.edge_probe.probes)."""
    finals = stored_finals(runs, [p.cell for p in points])
    unfinished = {p.group for p in points if p.cell.run_id not in finals}
    finished = [p for p in points if p.group not in unfinished]
    return edge_probe.probes(finished, tuning.choose(finished, finals)[1]) if finished else []


def edge_probes(name: str, swept: list[Cell], out: Path, args) -> None:
    """DIR/edge_probes.csv: every choice at the edge of its range, among the groups whose sweep
    has finished, with its probe one step beyond (bench.protocol.edge_probe) and, where the probe has
    run, who won on validation. --probe-edges runs the probes that have not run (and nothing
    else: a grid still running elsewhere is left to it); they never change a choice."""
    if not swept:
        return
    found = edge_probes_due(tuning.sweep_points(tuning.check_cells(swept, name)), out / "runs")
    if args.probe_edges:
        run_cells([cell for _, cell in found], out / "runs", args.resume, f"grid {name}: edge probes", *scale(args))
    rows = edge_probe.probe_rows(found, stored_finals(out / "runs", [cell for _, cell in found]))
    if rows or (out / "edge_probes.csv").is_file():  # an emptied list replaces a stale one
        atomic_write_text(out / "edge_probes.csv", to_csv(rows, edge_probe.PROBE_COLUMNS))


def overridden(cells: list[Cell], args) -> list[Cell]:
    """The cells with the command line's --model and --data-dir applied, and, when they run one
    at a time on this machine, the machine's default execution (bench.engine.execution) for
    every cell whose grid chose none. Execution never changes a cell's identity."""
    if args.model:
        cells = with_settings(cells, lambda cfg: {"model": args.model})
    if args.data_dir:
        cells = with_settings(cells, lambda cfg: {"data_dir": str(task_folder(args.data_dir, cfg.task))})
    if args.parallel == 1 and not args.ray_address:
        cells = [
            dataclasses.replace(c, config=execution.choose(c.config)) if execution.unchosen(c.config) else c
            for c in cells
        ]
    return cells


def print_plan(grid: dict, studies: dict[str, list[Cell]], cells: list[Cell], out: Path, args) -> int:
    """--plan (and --pilot): cells per study, distinct, done, estimated cost; trains nothing but pilots."""

    swept = [c for c in cells if c.tune]
    points = tuning.sweep_points(tuning.check_cells(swept, grid["_path"])) if swept else []
    pilots = plan.run_pilots(cells, out / "pilots") if args.pilot else plan.load_pilots()
    runs, every = out / "runs", cells + [p.cell for p in points]
    done = {c.run_id for c in every if (runs / c.run_id / "final.json").is_file()}
    done |= {c.run_id for c, t in known_choices(grid, swept, points, out) if (runs / t.run_id / "final.json").is_file()}
    done |= {
        c.run_id for c in every if (found := extend.predecessor(c.config, runs)) and found[1]
    }  # a lower cap or patience settled it
    print(plan.plan(studies, cells, points, done, pilots, plan.stored_throughput(runs)))
    if swept:  # a check, not part of the grid: --probe-edges runs them
        due = [cell for _, cell in edge_probes_due(points, runs)]
        probed = sum((runs / c.run_id / "final.json").is_file() for c in due)
        print(f"edge probes (--probe-edges): {len(due)} due (choices at an edge of their range so far), {probed} run")
    return 0


def known_choices(grid: dict, swept: list[Cell], points: list, out: Path) -> list[tuple[Cell, Cell]]:
    """(a grid cell, the cell it runs as with its tuned values) wherever the choice is known:
    from the grid's `tuned` file, else from the sweep points finished so far. A tuned cell's
    identity includes its chosen values, so this is how --plan knows it is done."""
    if not swept:
        return []
    where, tuned = grid["_path"], tuned_file(grid)
    try:
        if tuned is not None and tuned.is_file():
            settings, choices = tuning.read_choices(tuned, tuning.swept_values(swept))
        else:
            settings = sorted(swept[0].tune)
            choices, _ = tuning.choose(points, stored_finals(out / "runs", [p.cell for p in points]), partial=True)
    except BenchError:
        return []  # a stale choices file: nothing is known to be done
    return [
        (c, t)
        for c, t in zip(swept, tuning.apply_choices(swept, settings, choices, where, partial=True))
        if t is not None
    ]


def studies_of(grid: dict, args) -> dict[str, list[Cell]]:
    """The grid's studies (one, named after the grid, if it has none), or just --study's."""
    all_studies = expand_studies(grid)
    if args.study is None:
        return all_studies
    if args.study not in all_studies:
        raise BenchError(f"--study {args.study}: not a study of this grid (studies: {', '.join(all_studies)})")
    return {args.study: all_studies[args.study]}


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="run_all.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="quick", help="quick, paper, ncbi, or a FILE.yaml")
    parser.add_argument("--out", default=None, help="default: results/<grid>")
    parser.add_argument("--resume", action="store_true", help="continue interrupted cells from their checkpoints")
    parser.add_argument("--report-only", action="store_true", help="rebuild tables and figures from stored results")
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
        "--ray-address", default=None, help="run the cells on this Ray cluster (e.g. auto, or HEAD:6379)"
    )
    parser.add_argument("--model", default=None, help="override the grid's model (e.g. a local Llama-3.2-1B folder)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="a root holding each task's release folder (i2b2-2010/, i2b2-2014/, mimic-iii/, ...)",
    )
    args = parser.parse_args(argv)
    args.report_only |= args.probe_edges  # probing trains only the probes, then rebuilds the report
    if args.parallel < 1:
        raise BenchError(f"--parallel must be >= 1, not {args.parallel}")
    name, grid = load_grid(args.grid)
    out = Path(args.out or Path("results") / name)
    studies = {study: overridden(members, args) for study, members in studies_of(grid, args).items()}
    cells = list({c.run_id: c for members in studies.values() for c in members}.values())  # shared cells once
    if args.probe_edges and not any(c.tune for c in cells):
        raise BenchError(f"{grid['_path']}: --probe-edges needs a 'tune' key in the grid")
    if args.plan or args.pilot:
        return print_plan(grid, studies, cells, out, args)
    planned = cells
    notes: list[str] = []  # what the report must say about how complete its inputs are
    tuned = tuned_cells(
        name, grid, cells, out, args, notes
    )  # aligned with `planned`; None: not tuned yet (a partial report)
    final_of = {p.run_id: c for p, c in zip(planned, tuned) if c is not None}  # a planned cell -> the cell run
    cells = [c for c in tuned if c is not None]
    if len(cells) < len(planned):
        notes.append(
            f"**{len(planned) - len(cells)} of {len(planned)} cells are not in this report: their tuning has not finished.**\n"
        )
    if not args.report_only:
        run_cells(cells, out / "runs", args.resume, f"grid {name}", *scale(args))
    if not (out / "runs").is_dir():
        raise BenchError(f"{out}: no stored results (run the grid first)")
    edge_probes(name, [c for c in planned if c.tune], out, args)
    report = write_report(out, [c.run_id for c in cells], notes=notes)
    print(f"wrote {out / 'summary.csv'}, {report}, {out / 'tables'}/, {out / 'figures'}/")
    if "studies" in grid:  # each study's own tables and figures, from the shared store
        for study, members in studies.items():
            write_report(
                out / "studies" / study,
                [final_of[c.run_id].run_id for c in members if c.run_id in final_of],
                out / "runs",
                study,
                notes,
            )
        print(f"wrote {out / 'studies'}/<study>/report.md for each study")
    return 0


if __name__ == "__main__":
    sys.exit(main())
