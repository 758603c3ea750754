"""`python -m bench.data stats --task TASK [--data-dir DIR] --json`"""

from __future__ import annotations

import json
import sys

from bench.data import TASKS, load_task
from bench.data.hf import add_column_flags, column_options
from bench.data.stats import task_stats
from bench.errors import OneLineArgumentParser, cli_entry
from bench.synth.cache import data_dir_for


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m bench.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    stats = sub.add_parser("stats", help="counts per split, label and site")
    stats.add_argument("--task", required=True, help=f"one of {', '.join(TASKS.names())}, or hf:SOURCE")
    stats.add_argument("--data-dir", default=None, help="release folder (default: synthetic corpus)")
    stats.add_argument("--label-level", default=None, choices=["category", "type"], help="i2b2-2014 only")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    add_column_flags(stats)
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {"label_level": args.label_level} if args.label_level else {}
    stats = task_stats(load_task(args.task, data_dir_for(args.task, args.data_dir), **options, **column_options(args)))
    if args.json:
        print(json.dumps(stats))
        return 0
    for split, values in stats.items():
        if isinstance(values, dict):
            print(f"{split}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
