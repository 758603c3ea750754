"""A grid's run order on the command line (run_all.py): its studies, its tuned cells (swept here
on the first seed, each group's seeds following as soon as its sweep ends, or read from the
grid's `tuned` file), the cells themselves, then the edge probes of the sweep's choices.
Writes DIR/tuning.csv, the choices file and DIR/edge_probes.csv; the report is the caller's."""

from __future__ import annotations

from pathlib import Path

from bench.engine.convergence import run_convergence
from bench.errors import BenchError
from bench.protocol import edge_probe, tuning
from bench.protocol.grid import Cell, expand_studies
from bench.protocol.run_time import PAUSE_FACTOR, run_seconds
from bench.protocol.runner import run_cells
from bench.store import atomic_write_text, read_json, read_json_lines, to_csv

TUNING_COLUMNS = [
    "task",
    "method",
    "layers",
    "lora_rank",
    "partition",
    "epsilon",
    "setting",
    "value",
    "val_metric",
    "converged",  # the run's own flag: early stopping fired
    "convergence",  # the report's label: converged, capped or dead (bench.engine.convergence)
    "rounds_run",
    "chosen",
    "group",
    "run_id",
]


def scale(args) -> tuple[int, str | None]:
    return args.parallel, args.ray_address


def studies_of(grid: dict, args) -> dict[str, list[Cell]]:
    """The grid's studies (one, named after the grid, if it has none), or just --study's."""
    all_studies = expand_studies(grid)
    if args.study is None:
        return all_studies
    if args.study not in all_studies:
        raise BenchError(f"--study {args.study}: not a study of this grid (studies: {', '.join(all_studies)})")
    return {args.study: all_studies[args.study]}


def _labelled(rows: list[dict], out: Path) -> list[dict]:
    """tuning.csv's rows with each stored point's convergence label, as summary.csv has it."""
    labels = {run_id: _label(out / "runs" / run_id) for run_id in {row["run_id"] for row in rows}}
    return [{**row, "convergence": labels[row["run_id"]]} for row in rows]


def _label(folder: Path) -> str:
    """A stored point's label from its final.json and rounds ('' where it did not finish ok)."""
    final = finals_of(folder.parent, [folder.name]).get(folder.name)
    if not final or final.get("status") != "ok":
        return ""
    rounds = folder / "rounds.jsonl"
    history = read_json_lines(rounds) if rounds.is_file() else []
    return run_convergence({**final, "history": history})


def stored_finals(runs: Path, cells: list[Cell]) -> dict[str, dict]:
    return finals_of(runs, [cell.run_id for cell in cells])


def finals_of(runs: Path, run_ids) -> dict[str, dict]:
    """run id -> its final.json, for those stored."""
    finals = {}
    for run_id in run_ids:
        path = runs / run_id / "final.json"
        if path.is_file():
            finals[run_id] = read_json(path)
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


def tuned_cells(name: str, grid: dict, cells: list[Cell], out: Path, args) -> list[Cell | None]:
    """The cells with their tuned values: read from the grid's `tuned` file where it has them,
    swept here otherwise (a grid's `tune`, a study the file has not seen yet, or --tune). Writes
    DIR/tuning.csv and, once a sweep is complete, the choices file (merged with the choices it
    already held for other methods)."""
    where = grid["_path"]
    tuned = tuned_file(grid)
    swept = any(c.tune for c in cells)
    if args.tune and not swept:
        raise BenchError(f"{where}: --tune needs a 'tune' key in the grid")
    if not swept:
        return _from_file(tuned, cells)
    if not all(c.tune for c in cells):  # studies that sweep beside one whose grid fixes its values (ncbi's mu)
        settings = sorted(next(c for c in cells if c.tune).tune)
        if not args.report_only:
            _choosable(tuned, cells, settings)  # before the sweep trains, not after
        sweeps = iter(tuned_cells(name, grid, [c for c in cells if c.tune], out, args))
        fixed = iter(_beside_the_sweep(tuned, [c for c in cells if not c.tune], settings, args.report_only))
        return [next(sweeps) if c.tune else next(fixed) for c in cells]
    cells = tuning.check_cells(cells, where)
    settings = sorted(cells[0].tune)
    known: dict[str, dict] = {}
    kept = None  # the choices file as it stands: its other methods' choices are kept when it is rewritten
    if tuned is not None and tuned.is_file() and args.tune:  # sweeping again: the file is only merged into
        kept = tuning.read_doc(tuned)
    elif tuned is not None and tuned.is_file():
        known, kept = tuning.vouched_choices(tuned, cells, settings)
        if all(tuning.group_of(c.config, settings) in known for c in cells):
            _write_record(cells, out, only_if_stored=True)  # where the file's sweep is stored here
            return tuning.apply_choices(cells, settings, known, str(tuned))
    todo = [c for c in cells if tuning.group_of(c.config, settings) not in known]  # what the file lacks
    points = tuning.sweep_points(todo)
    if not args.report_only:
        run_cells(
            [p.cell for p in points],
            out / "runs",
            args.resume,
            f"grid {name}: tuning",
            *scale(args),
            then=seeds_when_swept(points, todo, settings, out / "runs", where),
        )
    partial = args.report_only  # a report on an unfinished sweep shows the groups that have results
    choices, rows = tuning.choose(points, _write_record(cells, out), partial)
    complete = len(choices) == len({p.group for p in points}) and all(r["val_metric"] is not None for r in rows)
    # choices travel only once every point of every group has run; --check writes only its copy
    if complete and not getattr(args, "check", False):
        tuning.write_choices(tuned or out / "tuned.yaml", name, tuning.swept_values(todo), choices, rows, kept)
    return tuning.apply_choices(cells, settings, {**known, **choices}, where, partial)


def _write_record(cells: list[Cell], out: Path, only_if_stored: bool = False) -> dict[str, dict]:
    """DIR/tuning.csv, the sweep's record (the report's checks read it): every stored point of
    `cells`' sweeps, the file's methods included, with the choice made from the stored runs.
    Rewritten whenever the grid runs or reports, so a stored record is in today's format and not
    one a choices file let stand. Returns the finals."""
    every = tuning.sweep_points(cells)
    finals = stored_finals(out / "runs", [p.cell for p in every])
    if finals or not only_if_stored:
        atomic_write_text(
            out / "tuning.csv", to_csv(_labelled(tuning.choose(every, finals, True)[1], out), TUNING_COLUMNS)
        )
    return finals


def _choosable(tuned: Path | None, cells: list[Cell], settings: list[str]) -> None:
    """Raise now, as apply_choices would after the sweep, for a cell that sweeps nothing and
    whose group neither the choices file nor this sweep can choose for (a method added to a
    tuned grid without a range or a value)."""
    if tuned is None:
        return
    coming = {tuning.group_of(c.config, settings): {} for c in cells if c.tune}
    known = tuning.read_choices(tuned)[1] if tuned.is_file() else {}
    tuning.apply_choices([c for c in cells if not c.tune], settings, {**known, **coming}, str(tuned))


def _beside_the_sweep(tuned: Path | None, cells: list[Cell], settings: list[str], partial: bool) -> list[Cell | None]:
    """Cells that sweep nothing, in a grid that sweeps `settings`: a cell that sets every one
    itself stays as it is (no choices file needed, written yet or not); the rest take the file's
    choices (None with `partial` while the file has none for them)."""
    if tuned is None or all(tuning.fixed_by_grid(c, settings) for c in cells):
        return cells
    if partial and not tuned.is_file():
        return [c if tuning.fixed_by_grid(c, settings) else None for c in cells]
    return _from_file(tuned, cells, partial)


def _from_file(tuned: Path | None, cells: list[Cell], partial: bool = False) -> list[Cell | None]:
    """The cells with the choices file's values (tuning.apply_choices); as they are without one."""
    if tuned is None:
        return cells
    settings, choices = tuning.read_choices(tuned)
    return tuning.apply_choices(cells, settings, choices, str(tuned), partial)


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


def study_notes(
    grid: dict, study: str, members: list[Cell], final_of: dict[str, Cell], runs: Path, grid_rebuilt: bool = True
) -> list[str]:
    """A study report's notes: what the study feeds (a study read beside others, such as the knee
    under label skew beside main's cells, has its answer in the grid's report, unless that report
    could not be rebuilt this time), then its completeness."""
    feeds = (grid["studies"][study] or {}).get("feeds")
    where = (
        "the grid's report (../../report.md) reads it beside the other studies' cells"
        if grid_rebuilt
        else "the grid's report (../../report.md) was not rebuilt with it this time (run_all printed why)"
    )
    head = [f"Feeds {feeds}: {where}.\n"]
    mine = {c.run_id: final_of[c.run_id] for c in members if c.run_id in final_of}
    return (head if feeds else []) + completeness_notes(members, mine, runs)


def pending_configs(planned: list[Cell], final_of: dict[str, Cell]) -> list[dict]:
    """The configs of planned cells not yet run as any cell (their tuning unfinished), for a report to name."""
    return [c.config.to_dict() for c in planned if c.run_id not in final_of]


def completeness_notes(planned: list[Cell], final_of: dict[str, Cell], runs: Path) -> list[str]:
    """What a report over these cells must say about its inputs: sweep points without a result,
    cells left out because their tuning has not finished, and what the stored runs cost."""
    swept = [c for c in planned if c.tune]
    points = {p.cell.run_id for p in tuning.sweep_points(tuning.check_cells(swept, "grid"))} if swept else set()
    ids = points | {c.run_id for c in final_of.values()}
    finals = finals_of(runs, sorted(ids))
    notes = []
    if points - set(finals):
        notes.append(
            f"**The tuning sweep is unfinished: {len(points - set(finals))} of {len(points)} points have no "
            "result yet, so the chosen learning rates (and every row) are provisional.**\n"
        )
    if len(final_of) < len(planned):
        notes.append(
            f"**{len(planned) - len(final_of)} of {len(planned)} cells are not in this report: their tuning has not finished.**\n"
        )
    seconds = [run_seconds(runs / run_id) for run_id in finals]
    net, recorded = sum(s.net for s in seconds) / 3600, sum(s.recorded for s in seconds) / 3600
    paused = (
        f" ({recorded:.1f} recorded: rounds over {PAUSE_FACTOR:g}x their run's median round, taken as pauses of "
        "the study, count at that median)"
        if recorded - net >= 0.05
        else ""
    )
    notes.append(
        f"Cost: {len(finals)} stored runs (sweep points and cells) took {net:.1f} hours of run time{paused}, "
        "summed over runs, on the machines that ran them (config.json and final.json of each run say which settings).\n"
    )
    return notes


def run_grid(name: str, grid: dict, planned: list[Cell], out: Path, args) -> tuple[list[Cell], dict[str, Cell]]:
    """Tune, run every missing cell (none with --report-only), then the edge probes. Returns the
    cells as run (those whose tuning has finished) and, per planned cell, the cell it ran as."""
    tuned = tuned_cells(name, grid, planned, out, args)  # aligned with `planned`; None: not tuned yet
    final_of = {p.run_id: c for p, c in zip(planned, tuned) if c is not None}  # a planned cell -> the cell run
    cells = list({c.run_id: c for c in tuned if c is not None}.values())  # two studies' cells may tune to one run
    if not args.report_only:
        run_cells(cells, out / "runs", args.resume, f"grid {name}", *scale(args))
    if not (out / "runs").is_dir():
        raise BenchError(f"{out}: no stored results (run the grid first)")
    edge_probes(name, [c for c in planned if c.tune], out, args)
    return cells, final_of
