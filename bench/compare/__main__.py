"""Side by side with Flower: `python -m bench.compare` (what `make compare-flower` runs).

    python -m bench.compare [--flower-python .venv-flower/bin/python] [--workloads A,B,C]
                            [--sides suite,floor,...] [--repeats N] [--train-subsample N] [--out results/perf]

For each workload (bench/compare/workloads.py) it runs this suite as a user runs it by default
(`python -m bench.run ...`, default execution, a cold prefix cache), then Flower's simulation
engine on the very sentences the suite's clients train on (bench/compare/flower_task.py, in
Flower's own environment), one at a time, and prints wall time, peak summed PSS of each
process tree and the test F1, with the ratios. With `--repeats N` each workload's sides run N
times, interleaved (the order reversed every other time, so no side always runs first or
last; `--once` names sides that run only the first time, as context); each side reports the
median wall time and peak memory, every run under `repeats`, and the wall times' range. Writes
OUT/flower.json (the full workloads, every side, at any --repeats) or OUT/flower-<variant>.json
(fewer sentences, other workloads or sides, or another suite execution).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.compare.perf import machine
from bench.compare.sides import SIDES
from bench.compare.targets import targets_table, verdicts
from bench.compare.workloads import BATCH, MAX_LENGTH, MODEL, ROUNDS, TASK, WORKLOADS
from bench.errors import BenchError, OneLineArgumentParser, cli_entry

INSTALLED = (
    "import json, platform; from importlib import metadata; "
    "print(json.dumps({'python': platform.python_version(), "
    "'packages': {str(d.metadata['Name']).lower(): d.version for d in metadata.distributions()}}))"
)


def installed(python: str) -> dict:
    """Every distribution an interpreter's environment has (name -> version) and its Python."""
    return json.loads(subprocess.run([python, "-c", INSTALLED], capture_output=True, text=True, check=True).stdout)


def versions(python: str) -> dict:
    """Both sides' environments: the headline packages, and every installed one (Flower's side
    installs tokenizers, numpy and the rest on its own, so they may differ from the suite's)."""
    sides = {"suite": installed(sys.executable), "flower": installed(python)}
    headline = {"suite": ("torch", "transformers", "ray"), "flower": ("flwr", "ray", "torch", "transformers")}
    return {
        side: {
            **{name: found["packages"].get(name) for name in headline[side]},
            "python": found["python"],
            "packages": found["packages"],
        }
        for side, found in sides.items()
    }


def table(results: dict) -> str:
    """One row per workload and side, each figure next to its ratio to the suite's."""
    lines = [
        "| workload | side | wall s | / suite | peak PSS MB | / suite | test F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        suite = r.get("suite")
        for side, got in r.items():
            if side == "workload" or not got:
                continue
            wall = f"{got['wall_s'] / suite['wall_s']:.2f}" if suite else "-"
            pss = f"{got['peak_pss_mb'] / suite['peak_pss_mb']:.2f}" if suite else "-"
            low, high = got.get("wall_s_range", [got["wall_s"]] * 2)
            spread = f" ({low}-{high})" if low != high else ""
            lines.append(
                f"| {name} | {side} | {got['wall_s']}{spread} | {wall} | {got['peak_pss_mb']:.0f} | {pss} | {got['metric']:.3f} |"
            )
    return "\n".join(lines)


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flower-python", default=".venv-flower/bin/python", help="the Python of Flower's environment")
    parser.add_argument("--workloads", default="A,B,C")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"which of {', '.join(SIDES)} to run, in order")
    parser.add_argument("--repeats", type=int, default=1, help="run every side N times, interleaved; report medians")
    parser.add_argument(
        "--once",
        default="",
        help="sides that run once however many --repeats the others get (context, not the targets)",
    )
    parser.add_argument("--train-subsample", type=int, default=None, help="fewer training sentences, for a quick check")
    parser.add_argument(
        "--suite-workers", type=int, default=None, help="the suite with --workers N instead of its default"
    )
    parser.add_argument(
        "--suite-only", action="store_true", help="skip Flower (a variant of the suite, e.g. --suite-workers 1)"
    )
    parser.add_argument("--out", default="results/perf")
    return parser


def _workload_names(args) -> list[str]:
    """The workloads asked for, checked before anything runs (each takes minutes)."""
    names = args.workloads.split(",")
    if unknown := [n for n in names if n not in WORKLOADS]:
        raise BenchError(f"--workloads: unknown {', '.join(unknown)} (known: {', '.join(WORKLOADS)})")
    if unknown := [s for s in args.sides.split(",") if s not in SIDES]:
        raise BenchError(f"--sides: unknown {', '.join(unknown)} (known: {', '.join(SIDES)})")
    if args.repeats < 1:
        raise BenchError(f"--repeats {args.repeats}: must be at least 1")
    if unknown := [s for s in _once(args) if s not in _sides(args)]:
        raise BenchError(f"--once: {', '.join(unknown)} not among the sides run ({', '.join(_sides(args))})")
    if any(SIDES[s][1] for s in _sides(args)) and not Path(args.flower_python).is_file():
        raise BenchError(f"--flower-python {args.flower_python}: not found (make compare-flower builds it)")
    return names


def _sides(args) -> list[str]:
    """The sides asked for; --suite-only drops Flower's."""
    return [s for s in args.sides.split(",") if not (args.suite_only and SIDES[s][1])]


def _once(args) -> list[str]:
    """Sides run only in the first repeat (context beside the targets, which get every repeat)."""
    return [s for s in getattr(args, "once", "").split(",") if s]


def median_of(runs: list[dict]) -> dict:
    """One side's runs as one entry: the first run's details, the median wall time and peak
    memory, the wall times' range and every run's figures."""
    wall = [r["wall_s"] for r in runs]
    peak = statistics.median(r["peak_pss_mb"] for r in runs)
    return {
        **runs[0],
        "wall_s": round(statistics.median(wall), 2),
        "peak_pss_mb": peak,
        "peak_rss_mb": peak,
        "wall_s_range": [min(wall), max(wall)],
        "repeats": [{k: r[k] for k in ("wall_s", "peak_pss_mb", "metric")} for r in runs],
    }


def _compare(name: str, tmp: Path, args) -> dict:
    """One workload: each side in turn, one at a time, `--repeats` times (interleaved, the order
    reversed every other time), with what each ran on."""
    w = WORKLOADS[name]
    runs: dict[str, list[dict]] = {side: [] for side in _sides(args)}
    for repeat in range(args.repeats):
        for side in list(runs)[:: -1 if repeat % 2 else 1]:
            if repeat and side in _once(args):
                continue
            print(f"workload {name} ({w.title}): {side} ({repeat + 1}/{args.repeats}) ...", flush=True)
            fresh = tmp / f"repeat{repeat + 1}"  # each run starts cold: no finished run, no cache to reuse
            fresh.mkdir(parents=True, exist_ok=True)
            got = SIDES[side][0](w, fresh, args)
            print(f"  {side}: {got['wall_s']} s, {got['peak_pss_mb']:.0f} MB, F1 {got['metric']}", flush=True)
            runs[side].append(got)
    found: dict = {side: median_of(got) for side, got in runs.items()}
    found["workload"] = {
        **vars(w),
        "rounds": ROUNDS,
        "max_length": MAX_LENGTH,
        "batch_size": BATCH,
        "task": TASK,
        "model": MODEL,
        "train_subsample": args.train_subsample,
    }
    return found


def _report_name(args, names: list[str]) -> str:
    """flower.json for the full default comparison; any variant is named after what differs."""
    every = _sides(args) == list(SIDES)
    default = args.train_subsample is None and names == list(WORKLOADS) and every and not args.suite_workers
    variant = "-".join(names) + (f"-subsample{args.train_subsample}" if args.train_subsample else "")
    variant += "" if every or args.suite_only else "-" + "-".join(_sides(args))
    variant += (f"-workers{args.suite_workers}" if args.suite_workers else "") + (
        "-suite-only" if args.suite_only else ""
    )
    # repeats are recorded per side (`repeats`, `wall_s_range`), not a variant: the same comparison
    return "flower.json" if default else f"flower-{variant}.json"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = _workload_names(args)
    tmp = Path(tempfile.mkdtemp(prefix="compare-flower-"))
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()  # measure with nothing else running: this says whether that held
    host = machine()  # at the start: the code measured is what was imported, whatever lands meanwhile
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = _report_name(args, names)
    partial = out / f"{name}.partial"  # what is measured so far, if a long sitting is cut short
    results = {}
    for workload in names:
        results[workload] = _compare(workload, tmp, args)
        partial.write_text(json.dumps({"workloads": results, "started": started}, indent=2) + "\n")
    report = {
        "workloads": results,
        "machine": {**host, "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "versions": versions(args.flower_python) if Path(args.flower_python).is_file() else None,
        "memory": "peak_rss_mb holds the peak of the summed PSS of the process tree (shared pages counted once); "
        "peak_rss_sum_mb the summed RSS, for reference",
        "targets": [
            {"target": what, "workload": workload, "measured": x, "holds": ok}
            for what, workload, x, ok in verdicts(results)
        ],
        "repeats": args.repeats,
        "once": _once(args),
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(table(results))
    print(targets_table(results))
    (out / name).write_text(json.dumps(report, indent=2) + "\n")
    partial.unlink()
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
