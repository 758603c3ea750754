"""Run the benchmark grid: parse flags -> load a grid -> run each missing cell -> write the report."""

from __future__ import annotations

import sys

from bench.data import TASKS, load_task
from bench.data.stats import task_stats
from bench.errors import OneLineArgumentParser, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="run_all.py", description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.parse_args(argv)
    for name in TASKS.names():
        if TASKS.get(name).synth_subdir is None:
            continue
        stats = task_stats(load_task(name))
        print(f"{name}: " + ", ".join(f"{split} {v.get('sentences', v.get('examples'))}" for split, v in stats.items() if isinstance(v, dict) and split != "warnings"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
