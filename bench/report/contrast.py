"""Any two configurations of a report against each other, seed by seed (the main table gives
each only against FedAvg and centralized):

    python -m bench.report.contrast results/ncbi "lora r8" "layerskip top:2"
    python -m bench.report.contrast results/ncbi "layerskip top:5" fedavg --partition dirichlet:0.5

For each partition both ran (or the one --partition names: a label that names two runs of a
seed on one partition, as FedAvg at two lrs under iid, can still be read on another): the mean
per-seed paired difference A - B in points over the reported seeds both have (the tuning seed
left out), with a t-interval over seeds (n - 1 degrees of freedom), n.s. where it holds 0 and
no verdict under MIN_SEEDS_FOR_VERDICT seeds, as the main table's Δ. A method that pools every
client's data (centralized: `partition_free`) pairs its runs with every partition. Each interval is at its own 95% level:
asking many contrasts of one study, some will exclude 0 by chance (no correction for multiple
comparisons is made). Reads DIR/summary.csv and each run's final.json; prints, writes nothing."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.registry import METHODS
from bench.report.render import seed_interval_text
from bench.report.stats import seed_paired_interval
from bench.report.tables import method_label

SUMMARY_NEEDS = ("run_id", "role", "status")
CONFIG_NEEDS = {"method", "seed", "partition"}


def _pooled(method: str) -> bool:
    """A method that pools every client's data (`partition_free`, centralized): its partition is
    nominal. A method no longer registered is read as partitioned."""
    return method in METHODS and METHODS.get(method).partition_free


def _bare(label: str) -> str:
    """'layerskip auto:2 [4 5]' -> 'layerskip auto:2': a user names auto:K without its blocks."""
    return re.sub(r" \[[\d ]*\]", "", label)


def reported_runs(folder: Path) -> list[dict]:
    """The report's reported runs (status ok), each its final.json with the run id; a missing or
    malformed file is one error naming it."""
    summary = folder / "summary.csv"
    if not summary.is_file():
        what = (
            "no summary.csv (build the report first: run_all.py --report-only)" if folder.is_dir() else "no such folder"
        )
        raise BenchError(f"{folder}: {what}")
    with open(summary, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in SUMMARY_NEEDS if rows and c not in rows[0]]
    if missing or not rows:
        raise BenchError(f"{summary}: " + (f"no column {', '.join(missing)}" if missing else "no runs"))
    return [_final(folder, r["run_id"]) for r in rows if r["role"] == "reported" and r["status"] == "ok"]


def _final(folder: Path, run_id: str) -> dict:
    path = folder / "runs" / run_id / "final.json"
    try:
        run = json.loads(path.read_text())
        cfg, metric = run["config"], run["metric"]
        if not isinstance(cfg, dict) or not CONFIG_NEEDS <= cfg.keys() or not isinstance(metric, (int, float)):
            raise TypeError
    except FileNotFoundError:
        raise BenchError(f"{path}: missing (summary.csv lists run {run_id} as reported)") from None
    except (ValueError, KeyError, TypeError):
        raise BenchError(
            f"{path}: not a finished run's record (JSON with a metric and a config naming method, seed and partition)"
        ) from None
    return {**run, "run_id": run_id}


def _pick(runs: list[dict], name: str, only: str | None = None) -> dict[str, dict[int, float]]:
    """partition -> seed -> metric of the configuration NAME (its label, with or without auto:K's
    blocks), on partition `only` alone when given (a pooled method's runs stand for every one)."""
    found: dict[str, dict[int, float]] = {}
    for run in runs:
        cfg = run["config"]
        if name in (method_label(run), _bare(method_label(run))) and cfg.get("dp_epsilon") is None:
            partition = "any" if _pooled(cfg["method"]) else cfg["partition"]
            if only is not None and partition not in ("any", only):
                continue
            if cfg["seed"] in found.get(partition, {}):  # two configurations under one label: say so
                raise BenchError(f"{name!r} names more than one run of seed {cfg['seed']} ({partition}); name one")
            found.setdefault(partition, {})[cfg["seed"]] = run["metric"]
    if not found:
        labels = sorted({_bare(method_label(r)) for r in runs})
        where = f" on partition {only}" if only is not None else ""
        raise BenchError(f"no reported runs of {name!r}{where} (configurations: {', '.join(labels)})")
    return found


def contrasts(runs: list[dict], a: str, b: str, partition: str | None = None) -> list[dict]:
    """One row per partition both ran (`partition` alone when given): seeds paired, the
    difference's seed-level interval."""
    mine, theirs = _pick(runs, a, partition), _pick(runs, b, partition)
    rows = []
    for partition in sorted((set(mine) | set(theirs)) - {"any"}) or ["any"]:
        x = mine.get(partition, mine.get("any"))  # a pooled side is read under each partition of the other
        y = theirs.get(partition, theirs.get("any"))
        if x is None or y is None or not set(x) & set(y):
            continue  # nothing to pair on this partition
        seeds = sorted(set(x) & set(y))
        found = seed_paired_interval([x[s] - y[s] for s in seeds])
        rows.append({"partition": partition, "seeds": seeds, "unpaired": sorted(set(x) ^ set(y)), "interval": found})
    return rows


def _line(row: dict, a: str, b: str) -> str:
    d = row["interval"]
    text = seed_interval_text(d["diff"], d["lo"], d["hi"], d["no_verdict"]) if d else "no interval (1 seed in common)"
    seeds = ", ".join(map(str, row["seeds"]))
    unpaired = f"; seeds {', '.join(map(str, row['unpaired']))} on one side only, left out" if row["unpaired"] else ""
    return f"{a} - {b}, points ({row['partition']}; seeds {seeds}{unpaired}): {text}"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="bench.report.contrast", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a report's folder (results/<grid>)")
    parser.add_argument("a", help="a configuration as the main table names it, e.g. 'lora r8'")
    parser.add_argument("b", help="the one it is set against, e.g. 'layerskip top:2'")
    parser.add_argument(
        "--partition",
        default=None,
        help="this partition only (e.g. dirichlet:0.5), for a label that names two runs of a seed on another",
    )
    args = parser.parse_args(argv)
    rows = contrasts(reported_runs(args.folder), args.a, args.b, args.partition)
    if not rows:
        raise BenchError(f"{args.a!r} and {args.b!r} share no partition and seed in {args.folder}")
    print("\n".join(_line(r, args.a, args.b) for r in rows))
    print("95% t-intervals over seeds, each at its own level (not corrected for multiple comparisons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
