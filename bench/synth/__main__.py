"""`python -m bench.synth --out DIR [--seed N] [--scale tiny|small|medium]`"""

from __future__ import annotations

import sys

from bench.errors import OneLineArgumentParser, cli_entry
from bench.synth.generate import CORPORA, SCALES, write_corpus


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.synth", description=__doc__)
    parser.add_argument("--out", required=True, help="folder to write i2b2-2010/, i2b2-2014/, mimic-iii/ into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default="small", choices=list(SCALES))
    args = parser.parse_args(argv)
    out = write_corpus(args.out, seed=args.seed, scale=args.scale)
    print(f"wrote {', '.join(str(out / c) for c in CORPORA)} (scale {args.scale}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
