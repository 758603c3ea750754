"""`run_all.py --plan` (and --pilot) for a grid: which of its cells are done, counting a tuned
cell done once its chosen values are known and run, or a lower cap or patience settled it;
then bench.protocol.plan's text, and the edge probes due so far."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.protocol import extend, pilot, plan, stored_cost, tuning
from bench.protocol.grid import Cell
from bench.protocol.study import edge_probes_due, stored_finals, tuned_file


def known_choices(grid: dict, swept: list[Cell], points: list, out: Path) -> list[tuple[Cell, Cell]]:
    """(a grid cell, the cell it runs as with its tuned values) wherever the choice is known:
    from the grid's `tuned` file, else from the sweep points finished so far. A tuned cell's
    identity includes its chosen values, so this is how --plan knows it is done."""
    if not swept:
        return []
    where, tuned = grid["_path"], tuned_file(grid)
    try:
        swept = tuning.check_cells(swept, where)
        settings = sorted(swept[0].tune)
        # the groups whose sweep has finished choose as --tune will; the grid's `tuned` file
        # decides where it holds a choice for these very cells (a file written under other
        # settings, e.g. a shorter patience, names other groups and decides nothing)
        choices, _ = tuning.choose(points, settled_finals(out / "runs", [p.cell for p in points]), partial=True)
        if tuned is not None and tuned.is_file():
            try:
                choices = {**choices, **tuning.vouched_choices(tuned, swept, settings)[0]}
            except BenchError:
                pass  # swept over other values: stale, the points run so far stand
    except BenchError:
        return []
    return [
        (c, t)
        for c, t in zip(swept, tuning.apply_choices(swept, settings, choices, where, partial=True))
        if t is not None
    ]


def settled_finals(runs: Path, cells: list[Cell]) -> dict[str, dict]:
    """run id -> final.json for the cells stored, or settled as is by a lower cap or patience."""
    finals = stored_finals(runs, cells)
    for cell in cells:
        if cell.run_id not in finals and (final := extend.stored_progress(cell.config, runs)[0]):
            finals[cell.run_id] = final
    return finals


def progress(pairs: list[tuple[Cell, Cell]], runs: Path) -> tuple[set[str], dict[str, int]]:
    """For (a grid cell, the cell it runs as) pairs: the grid cells done (stored, or settled as is
    by a lower cap or patience), and grid cell -> the rounds a stored run under a lower cap
    already ran, which its continuation does not run again (bench.protocol.extend)."""
    done, carried = set(), {}
    for cell, run in pairs:
        if (runs / run.run_id / "final.json").is_file():
            done.add(cell.run_id)
            continue
        final, rounds = extend.stored_progress(run.config, runs)
        if final is not None:
            done.add(cell.run_id)
        elif rounds:
            carried[cell.run_id] = rounds
    return done, carried


def print_plan(grid: dict, studies: dict[str, list[Cell]], cells: list[Cell], out: Path, args) -> int:
    """--plan (and --pilot): cells per study, distinct, done, estimated cost; trains nothing but pilots."""

    swept = [c for c in cells if c.tune]
    points = tuning.sweep_points(tuning.check_cells(swept, grid["_path"])) if swept else []
    pilots = pilot.run_pilots(cells, out / "pilots") if args.pilot else pilot.load_pilots()
    runs, every = out / "runs", cells + [p.cell for p in points]
    done, carried = progress([(c, c) for c in every] + known_choices(grid, swept, points, out), runs)
    print(
        plan.plan(
            studies,
            cells,
            points,
            done,
            pilots,
            stored_cost.stored_throughput(runs),
            stored_cost.stored_round_share(runs),
            carried,
        )
    )
    if swept:  # a check, not part of the grid: --probe-edges runs them
        due = [cell for _, cell in edge_probes_due(points, runs)]
        probed = sum((runs / c.run_id / "final.json").is_file() for c in due)
        print(f"edge probes (--probe-edges): {len(due)} due (choices at an edge of their range so far), {probed} run")
    return 0
