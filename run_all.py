"""Run a benchmark grid: parse flags -> load a grid -> tune -> run each missing cell -> write the report.

    python run_all.py [--grid quick|paper|ncbi|FILE.yaml] [--out DIR] [--resume] [--report-only] [--tune]

Finished cells (a final.json in DIR/runs/<run-id>/) are always skipped; --resume also continues
an interrupted cell from its last round checkpoint instead of restarting it. A failed cell is
recorded (failed.json) and the grid goes on. A grid with `tune:` first sweeps those settings on
its first seed and runs every seed with the values chosen on validation (bench.tuning).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

from bench import tuning
from bench.config import first_difference
from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.grid import Cell, expand, load_grid
from bench.report import to_csv, write_report
from bench.store import atomic_write_json, atomic_write_text

TUNING_COLUMNS = ["task", "method", "layers", "partition", "epsilon", "setting", "value", "val_metric", "chosen", "group", "run_id"]


def run_cell(cell: Cell, runs: Path, resume: bool) -> str:
    """Run one cell unless it is finished; returns its status."""
    from bench.engine.server import run_experiment

    folder = runs / cell.run_id
    stored = folder / "config.json"
    if (folder / "final.json").is_file():
        return "skipped"
    if folder.exists() and not resume:
        shutil.rmtree(folder)  # an unfinished attempt: start it over
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "failed.json").unlink(missing_ok=True)
    atomic_write_json(stored, cell.config.to_dict())
    try:
        run_experiment(cell.config, folder, progress=True)
        return "ok"
    except Exception as e:  # recorded and reported; one broken cell must not stop the grid
        atomic_write_json(folder / "failed.json", {"run_id": cell.run_id, "error": f"{type(e).__name__}: {e}"[:2000],
                                                   "config": cell.config.to_dict(), "status": "failed"})  # fmt: skip
        return "failed"


def check_stored(cells: list[Cell], runs: Path) -> None:
    """Refuse, before anything runs, to reuse a folder whose stored config is not the cell's."""
    for cell in cells:
        stored = runs / cell.run_id / "config.json"
        if stored.is_file() and (diff := first_difference(json.loads(stored.read_text()), cell.config)):
            raise BenchError(f"{stored.parent}: stored config differs from the grid's in {diff}; move the folder away to re-run")


def run_cells(cells: list[Cell], runs: Path, resume: bool, desc: str) -> None:
    from tqdm.auto import tqdm

    check_stored(cells, runs)
    start = time.perf_counter()
    statuses = []
    for cell in (bar := tqdm(cells, desc=desc, unit="cell")):
        bar.set_postfix_str(cell.run_id)
        statuses.append(run_cell(cell, runs, resume))
    counts = {s: statuses.count(s) for s in ("ok", "skipped", "failed") if statuses.count(s)}
    print(f"{desc}: {len(cells)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}) in {time.perf_counter() - start:.0f} s")


def stored_finals(runs: Path, cells: list[Cell]) -> dict[str, dict]:
    finals = {}
    for cell in cells:
        path = runs / cell.run_id / "final.json"
        if path.is_file():
            finals[cell.run_id] = json.loads(path.read_text())
    return finals


def tuned_cells(name: str, grid: dict, cells: list[Cell], out: Path, args) -> list[Cell]:
    """The cells with their tuned values: swept here (a grid's `tune`, or --tune) or read from
    the grid's `tuned` file. Writes DIR/tuning.csv and the choices file when it sweeps."""
    where = grid["_path"]
    tuned = Path(where).parent / grid["tuned"] if grid.get("tuned") else None
    swept = any(c.tune for c in cells)
    if args.tune and not swept:
        raise BenchError(f"{where}: --tune needs a 'tune' key in the grid")
    if not swept and tuned is None:
        return cells
    if tuned is not None and not args.tune and (tuned.is_file() or not swept):
        settings, choices = tuning.read_choices(tuned)
        return tuning.apply_choices(cells, settings, choices, str(tuned))
    cells = tuning.check_cells(cells, where)
    settings = sorted(cells[0].tune)
    points = tuning.sweep_points(cells)
    groups = list(dict.fromkeys(p.group for p in points))
    for i, group in enumerate([] if args.report_only else groups):  # one group at a time: results come whole
        mine = [p for p in points if p.group == group]
        run_cells([p.cell for p in mine], out / "runs", args.resume, f"grid {name}: sweep {i + 1}/{len(groups)}")
        choice, _ = tuning.choose(mine, stored_finals(out / "runs", [p.cell for p in mine]))
        seeds = [c for c in cells if tuning.group_of(c.config, settings) == group]
        run_cells(tuning.apply_choices(seeds, settings, choice, where), out / "runs", args.resume,
                  f"grid {name}: seeds {i + 1}/{len(groups)}")  # fmt: skip
    choices, rows = tuning.choose(points, stored_finals(out / "runs", [p.cell for p in points]))
    atomic_write_text(out / "tuning.csv", to_csv(rows, TUNING_COLUMNS))
    swept_values = {f"{c.config.method} {c.config.layers or ''}".strip(): c.tune for c in cells}
    tuning.write_choices(tuned or out / "tuned.yaml", name, swept_values, choices, rows)
    return tuning.apply_choices(cells, settings, choices, where)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="run_all.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="quick", help="quick, paper, ncbi, or a FILE.yaml")
    parser.add_argument("--out", default=None, help="default: results/<grid>")
    parser.add_argument("--resume", action="store_true", help="continue interrupted cells from their checkpoints")
    parser.add_argument("--report-only", action="store_true", help="rebuild tables and figures from stored results")
    parser.add_argument("--tune", action="store_true", help="sweep the grid's `tune` settings again and rewrite its `tuned` file")
    parser.add_argument("--model", default=None, help="override the grid's model (e.g. a local Llama-3.2-1B folder)")
    parser.add_argument("--data-dir", default=None, help="override the grid's data folder")
    args = parser.parse_args(argv)
    name, grid = load_grid(args.grid)
    out = Path(args.out or Path("results") / name)
    cells = expand(grid)
    overrides = {k: v for k, v in (("model", args.model), ("data_dir", args.data_dir)) if v is not None}
    if overrides:
        cells = [dataclasses.replace(c, run_id=cfg.run_id, config=cfg) for c, cfg in ((c, c.config.with_settings(**overrides)) for c in cells)]
    cells = tuned_cells(name, grid, cells, out, args)
    if not args.report_only:
        run_cells(cells, out / "runs", args.resume, f"grid {name}")
    if not (out / "runs").is_dir():
        raise BenchError(f"{out}: no stored results (run the grid first)")
    report = write_report(out, [c.run_id for c in cells])
    print(f"wrote {out / 'summary.csv'}, {report}, {out / 'tables'}/, {out / 'figures'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
