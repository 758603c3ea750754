"""Run one command and print its wall time, the peak summed PSS of its process tree and each
process's own peak (the figures docs/PERFORMANCE.md quotes for the engine's memory):

    python -m bench.compare.measure_memory -- python -m bench.run --task ... --workers 4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.compare.memory import run_measured
from bench.errors import BenchError, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        raise BenchError("usage: python -m bench.compare.measure_memory -- COMMAND [ARGS...]")
    result = run_measured(command, log=Path("/dev/stderr"), every=0.5)  # its own output goes to stderr
    print(json.dumps(result))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
