"""`python -m partitions show --task TASK [--data-dir DIR] --partition P --clients N --seed S --json
[--plot FILE.png]`"""

from __future__ import annotations

import json
import sys

from bench.data import TASKS, load_task
from bench.data.hf import add_column_flags, column_options
from bench.data.partition_view import describe
from bench.errors import BenchError, OneLineArgumentParser, cli_entry, require_folder_of
from bench.registry import PARTITIONERS
from bench.report.partition_plot import plot
from bench.synth.cache import data_dir_for


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m partitions", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    show = sub.add_parser("show", help="per-client label counts and divergence of a partition")
    show.add_argument("--task", required=True, help=f"one of {', '.join(TASKS.names())}, or hf:SOURCE")
    show.add_argument("--data-dir", default=None)
    show.add_argument(
        "--partition", required=True, help=f"{', '.join(PARTITIONERS.names())} (dirichlet:ALPHA, quantity:ALPHA)"
    )
    show.add_argument("--clients", type=int, required=True)
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--json", action="store_true", help="print one JSON object")
    add_column_flags(show)
    show.add_argument("--plot", default=None, metavar="FILE.png", help="write a heatmap and divergence figure")
    args = parser.parse_args(argv)
    if args.plot and not args.plot.lower().endswith((".png", ".pdf")):
        raise BenchError(f"--plot {args.plot}: expected a .png or .pdf file name")
    require_folder_of("--plot", args.plot)
    description = describe(
        load_task(args.task, data_dir_for(args.task, args.data_dir), **column_options(args)),
        args.partition,
        args.clients,
        args.seed,
    )
    if args.plot:
        plot(description, args.plot)
    if args.json:
        print(json.dumps({k: description[k] for k in ("clients", "divergence", "task", "partition", "seed")}))
    else:
        for c in description["clients"]:
            print(f"client {c['id']}: {c['size']} examples, divergence {c['divergence']:.3f}, labels {c['labels']}")
        print(f"mean divergence {description['divergence']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
