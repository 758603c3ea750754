"""Run a benchmark grid: parse flags -> load a grid -> run each missing cell -> write the report.

    python run_all.py [--grid quick|paper|ncbi|FILE.yaml] [--out DIR] [--resume] [--report-only]

Finished cells (a final.json in DIR/runs/<run-id>/) are always skipped; --resume also continues
an interrupted cell from its last round checkpoint instead of restarting it. A failed cell is
recorded (failed.json) and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.grid import Cell, expand, load_grid
from bench.report import write_report
from bench.store import atomic_write_json


def run_cell(cell: Cell, runs: Path, resume: bool) -> str:
    """Run one cell unless it is finished; returns its status."""
    from bench.engine.server import run_experiment

    folder = runs / cell.run_id
    if (folder / "final.json").is_file():
        return "skipped"
    if folder.exists() and not resume:
        shutil.rmtree(folder)  # an unfinished attempt: start it over
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "failed.json").unlink(missing_ok=True)
    atomic_write_json(folder / "config.json", cell.config.to_dict())
    try:
        run_experiment(cell.config, folder, progress=True)
        return "ok"
    except Exception as e:  # recorded and reported; one broken cell must not stop the grid
        atomic_write_json(folder / "failed.json", {"run_id": cell.run_id, "error": f"{type(e).__name__}: {e}"[:2000],
                                                   "config": cell.config.to_dict(), "status": "failed"})  # fmt: skip
        return "failed"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="run_all.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="quick", help="quick, paper, ncbi, or a FILE.yaml")
    parser.add_argument("--out", default=None, help="default: results/<grid>")
    parser.add_argument("--resume", action="store_true", help="continue interrupted cells from their checkpoints")
    parser.add_argument("--report-only", action="store_true", help="rebuild tables and figures from stored results")
    parser.add_argument("--model", default=None, help="override the grid's model (e.g. a local Llama-3.2-1B folder)")
    parser.add_argument("--data-dir", default=None, help="override the grid's data folder")
    args = parser.parse_args(argv)
    name, grid = load_grid(args.grid)
    out = Path(args.out or Path("results") / name)
    cells = expand(grid)
    overrides = {k: v for k, v in (("model", args.model), ("data_dir", args.data_dir)) if v is not None}
    if overrides:
        cells = [Cell(c.run_id, dataclasses.replace(c.config, **overrides)) for c in cells]
    if not args.report_only:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        statuses = []
        for cell in (bar := tqdm(cells, desc=f"grid {name}", unit="cell")):
            bar.set_postfix_str(cell.run_id)
            statuses.append(run_cell(cell, out / "runs", args.resume))
        counts = {s: statuses.count(s) for s in ("ok", "skipped", "failed") if statuses.count(s)}
        print(f"grid {name}: {len(cells)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}) in {time.perf_counter() - start:.0f} s")
    if not (out / "runs").is_dir():
        raise BenchError(f"{out}: no stored results (run the grid first)")
    report = write_report(out, [c.run_id for c in cells])
    print(f"wrote {out / 'summary.csv'}, {report}, {out / 'tables'}/, {out / 'figures'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
