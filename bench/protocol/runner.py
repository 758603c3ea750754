"""Running a grid's cells into a store: skip finished ones, refuse mismatched folders, record
failures and go on; one at a time here, or `parallel` at a time as Ray tasks (bench.engine.cells)."""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bench.config import first_difference
from bench.data.redact import library_message
from bench.engine.cells import run_cells_parallel
from bench.engine.server import run_experiment
from bench.errors import BenchError
from bench.protocol import extend
from bench.protocol.grid import Cell
from bench.protocol.preflight import check_sources
from bench.store import atomic_write_json, read_json


def check_stored(cells: list[Cell], runs: Path) -> None:
    """Refuse, before anything runs, to reuse a folder whose stored config is not the cell's."""
    for cell in cells:
        stored = runs / cell.run_id / "config.json"
        if stored.is_file() and (diff := first_difference(read_json(stored), cell.config)):
            raise BenchError(
                f"{stored.parent}: stored config differs from the grid's in {diff}; move the folder away to re-run"
            )


def run_cell(cell: Cell, runs: Path, resume: bool, progress: bool = True) -> str:
    """Run one cell unless it is finished; returns its status ("extended": taken over from the
    same cell under a lower round cap, bench.protocol.extend)."""

    folder = runs / cell.run_id
    if (folder / "final.json").is_file():
        return "skipped"
    if folder.exists() and not resume:
        shutil.rmtree(folder)  # an unfinished attempt: start it over
    found = None if folder.exists() else extend.predecessor(cell.config, runs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "failed.json").unlink(missing_ok=True)
    atomic_write_json(folder / "config.json", cell.config.to_dict())
    if found is not None:
        source, as_is = found
        extend.take_over(source, folder, cell.config, as_is)
        if as_is:
            return "extended"
    try:
        run_experiment(cell.config, folder, progress=progress)
        extend.mark(folder)
        return "extended" if (folder / extend.NOTE).is_file() else "ok"
    except Exception as e:  # recorded and reported; one broken cell must not stop the grid
        # a bad input keeps the one line the command line would print (written not to quote the
        # data); a crash keeps its type and where it names, not its message (a KeyError quotes the
        # key: a label, a token): `python -m bench.run` on the cell's config shows it in full
        error = f"error: {e}" if isinstance(e, BenchError) else f"{library_message(e)} (a crash; message not kept)"
        atomic_write_json(
            folder / "failed.json",
            {
                "run_id": cell.run_id,
                "error": error[:2000],
                "config": cell.config.to_dict(),
                "status": "failed",
            },
        )
        return "failed"


def run_cells(
    cells: list[Cell],
    runs: Path,
    resume: bool,
    desc: str,
    parallel: int = 1,
    ray_address: str | None = None,
    then: Callable[[Cell, str], list[Cell]] | None = None,
) -> None:
    """Every cell, with a progress bar and a one-line tally; in parallel as Ray tasks when asked.

    `then(cell, status)` names the cells a finished (or already stored) cell makes runnable,
    e.g. a tuning group's seeds once its last sweep point is in: they go to the front of the
    queue, so no slot waits for a whole phase to end while work is ready."""
    from tqdm.auto import tqdm

    check_stored(cells, runs)

    def stored(cell: Cell) -> bool:
        return (runs / cell.run_id / "final.json").is_file()

    # bad data: one line before anything runs (and before the progress bar), not a failed cell per run
    check_sources([c for c in cells if not stored(c)])
    start = time.perf_counter()
    bar = tqdm(total=len(cells), desc=desc, unit="cell")
    statuses: dict[str, str] = {}

    def finished(cell: Cell, status: str) -> list[Cell]:
        """Record a cell's end; -> the follow-up cells still to run (stored ones count as skipped)."""
        statuses[cell.run_id] = status
        bar.update(1)
        bar.set_postfix_str(f"{cell.run_id}: {status}")
        ready = []
        for new in then(cell, status) if then else []:
            check_stored([new], runs)
            bar.total += 1
            bar.refresh()
            check_sources([] if stored(new) else [new])
            ready += finished(new, "skipped") if stored(new) else [new]
        return ready

    todo = []
    for cell in cells:
        todo += finished(cell, "skipped") if stored(cell) else [cell]
    if parallel > 1 or ray_address:
        run_one = functools.partial(run_cell, runs=runs.resolve(), resume=resume, progress=False)
        run_cells_parallel(todo, run_one, parallel, ray_address, finished)
    else:
        while todo:
            cell = todo.pop(0)
            bar.set_postfix_str(cell.run_id)
            todo[:0] = finished(cell, run_cell(cell, runs, resume))
    bar.close()
    tally = list(statuses.values())
    counts = {s: tally.count(s) for s in ("ok", "extended", "skipped", "failed", "crashed") if tally.count(s)}
    print(
        f"{desc}: {len(tally)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}) in {time.perf_counter() - start:.0f} s"
    )
