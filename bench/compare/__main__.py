"""Side by side with Flower: `python -m bench.compare` (what `make compare-flower` runs).

    python -m bench.compare [--flower-python .venv-flower/bin/python] [--workloads A,B,C]
                            [--train-subsample N] [--out results/perf]

For each workload (bench/compare/workloads.py) it runs this suite as a user runs it by default
(`python -m bench.run ...`, default execution, a cold prefix cache), then Flower's simulation
engine on the very sentences the suite's clients train on (bench/compare/flower_task.py, in
Flower's own environment), one at a time, and prints wall time, peak summed PSS of each
process tree and the test F1, with the ratios. Writes OUT/flower.json (the full workloads) or
OUT/flower-<variant>.json (fewer sentences, other workloads, or another suite execution).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.compare.memory import run_measured
from bench.compare.perf import machine
from bench.compare.workloads import BATCH, MAX_LENGTH, MODEL, ROUNDS, SEED, TASK, WORKLOADS, Workload
from bench.config import ExperimentConfig
from bench.data import load_task
from bench.engine.prepare import prepare_task
from bench.engine.prepare import subsample as take
from bench.errors import BenchError, OneLineArgumentParser, cli_entry
from bench.model.build import source_for

FLOWER_APP = Path(__file__).with_name("flower_app.py")


def suite_command(w: Workload, out: Path, subsample: int | None, workers: int | None = None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "bench.run",
        "--task",
        TASK,
        "--method",
        w.method,
        "--model",
        MODEL,
        "--clients",
        str(w.clients),
        "--clients-per-round",
        str(w.per_round),
        "--rounds",
        str(ROUNDS),
        "--max-length",
        str(MAX_LENGTH),
        "--batch-size",
        str(BATCH),
        "--lr",
        str(w.lr),
        "--seed",
        str(SEED),
        "--out",
        str(out),
        "--quiet",
    ]
    cmd += ["--layers", w.layers] if w.layers else []
    cmd += ["--workers", str(workers)] if workers else []
    return cmd + (["--train-subsample", str(subsample)] if subsample else [])


def _pairs(examples) -> list[list]:
    """Sentences as JSON for Flower's side: [tokens, tags] each."""
    return [[list(ex.tokens), list(ex.tags)] for ex in examples]


def pieces(split, examples, ids) -> tuple[list[list], list[int]]:
    """The word runs the suite encodes examples `ids` as (a long sentence split where the suite
    splits it), as [tokens, tags], and the position in `ids` of the sentence each came from."""
    runs, owner = [], []
    for position, e in enumerate(ids):
        firsts = [split.encoded.owner[r][1] for r in split.chunks[e]] + [len(examples[e].tokens)]
        for start, end in zip(firsts, firsts[1:]):
            runs.append([list(examples[e].tokens[start:end]), list(examples[e].tags[start:end])])
            owner.append(position)
    return runs, owner


def _scored(split, examples) -> dict:
    runs, owner = pieces(split, examples, range(len(examples)))
    return {"pieces": runs, "owner": owner, "sentences": _pairs(examples)}


def flower_work(w: Workload, subsample: int | None) -> dict:
    """What the Flower side needs: each client gets exactly the suite client's training sentences."""
    cfg = ExperimentConfig(
        task=TASK,
        method=w.method,
        layers=w.layers,
        model=MODEL,
        clients=w.clients,
        clients_per_round=w.per_round,
        max_length=MAX_LENGTH,
        seed=SEED,
        train_subsample=subsample,
    )
    task, data = prepare_task(cfg), load_task(TASK)
    train = take(data.splits["train"], subsample)
    return {
        "model_dir": source_for(MODEL).pretrained()[0],
        "labels": task.output_labels,
        "trainable": w.trainable,
        "clients": [pieces(task.train, train, ids)[0] for ids in task.clients],
        "client_sizes": [len(ids) for ids in task.clients],  # FedAvg weighs by sentences, as the suite does
        "validation": _scored(task.validation, data.splits["validation"]),
        "test": _scored(task.test, data.splits["test"]),
        "rounds": ROUNDS,
        "per_round": w.per_round,
        "batch_size": BATCH,
        "max_length": MAX_LENGTH,
        "lr": w.lr,
        "seed": SEED,
    }


def run_suite(w: Workload, tmp: Path, subsample: int | None, workers: int | None = None, label: str = "suite") -> dict:
    out, env = tmp / f"{label}-{w.name}", {k: v for k, v in os.environ.items() if k != "BENCH_WORKERS"}
    env["BENCH_CACHE"] = str(tmp / f"cache-{label}-{w.name}")  # cold: the run pays for its own prefix cache
    measured = run_measured(suite_command(w, out, subsample, workers), env, tmp / f"{label}-{w.name}.log")
    if measured["returncode"] != 0:
        raise BenchError(f"workload {w.name}: the suite run failed (log: {tmp / f'{label}-{w.name}.log'})")
    final = json.loads((out / "final.json").read_text())
    return {
        **measured,
        "metric": round(final["metric"], 4),
        "val_per_round": [h["val_metric"] for h in _rounds(out)],
        "execution": final["execution"],
        "prefix_cache": final.get("prefix_cache"),
        "command": " ".join(suite_command(w, Path("OUT"), subsample, workers)[1:]),
    }


def _rounds(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]


def run_flower(
    w: Workload, tmp: Path, subsample: int | None, python: str, num_cpus: int | None = None, label: str = "flower"
) -> dict:
    """Flower's simulation at its default client resources (`num_cpus` None: 2 CPUs a client, so
    one client at a time on this machine) or at `num_cpus` per client."""
    work, result = tmp / f"{label}-{w.name}.json", tmp / f"{label}-{w.name}-result.json"
    work.write_text(json.dumps({**flower_work(w, subsample), "num_cpus": num_cpus}))
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    measured = run_measured([python, str(FLOWER_APP), str(work), str(result)], env, tmp / f"{label}-{w.name}.log")
    work.unlink()  # the sentences: not kept
    if measured["returncode"] != 0 or not result.is_file():
        raise BenchError(f"workload {w.name}: the Flower run failed (log: {tmp / f'{label}-{w.name}.log'})")
    got = json.loads(result.read_text())
    return {
        **measured,
        "metric": round(got["test_f1"], 4),
        "val_per_round": [v["f1"] for v in got["val_f1"] if v["round"] > 0],  # as the suite's rounds.jsonl
        "client_resources": {"num_cpus": num_cpus} if num_cpus else "Flower's default",
    }


def run_floor(w: Workload, tmp: Path, subsample: int | None) -> dict:
    """The same training and scoring with no federated engine (bench.compare.floor)."""
    result = tmp / f"floor-{w.name}.json"
    cmd = [sys.executable, "-m", "bench.compare.floor", "--workload", w.name, str(result)]
    cmd += ["--train-subsample", str(subsample)] if subsample else []
    env = {k: v for k, v in os.environ.items() if k != "BENCH_WORKERS"} | {
        "BENCH_CACHE": str(tmp / f"cache-floor-{w.name}")
    }
    measured = run_measured(cmd, env, tmp / f"floor-{w.name}.log")
    if measured["returncode"] != 0 or not result.is_file():
        raise BenchError(f"workload {w.name}: the floor run failed (log: {tmp / f'floor-{w.name}.log'})")
    got = json.loads(result.read_text())
    return {**measured, "metric": round(got["metric"], 4), "val_per_round": got["val_per_round"][1:]}


# Each side of a workload: (runner, whether it needs Flower). `suite` is the suite as a user runs
# it; `suite_w1` with one worker (the fair pair of Flower's default, one client at a time);
# `flower_equal` Flower with one CPU a client (two at a time here, as its simulation guide sets
# it); `flower` Flower's default; `floor` the same work without an engine.
SIDES = {
    "suite": (lambda w, tmp, args: run_suite(w, tmp, args.train_subsample, args.suite_workers), False),
    "suite_w1": (lambda w, tmp, args: run_suite(w, tmp, args.train_subsample, 1, "suite_w1"), False),
    "flower_equal": (
        lambda w, tmp, args: run_flower(w, tmp, args.train_subsample, args.flower_python, 1, "flower_equal"),
        True,
    ),
    "flower": (lambda w, tmp, args: run_flower(w, tmp, args.train_subsample, args.flower_python), True),
    "floor": (lambda w, tmp, args: run_floor(w, tmp, args.train_subsample), False),
}


def versions(python: str) -> dict:
    import ray
    import torch
    import transformers

    code = (
        "import flwr, ray, torch, transformers; "
        "print(flwr.__version__, ray.__version__, torch.__version__, transformers.__version__)"
    )
    flwr, ray_f, torch_f, tf_f = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "suite": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "ray": ray.__version__,
            "python": sys.version.split()[0],
        },
        "flower": {"flwr": flwr, "ray": ray_f, "torch": torch_f, "transformers": tf_f},
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
            lines.append(
                f"| {name} | {side} | {got['wall_s']} | {wall} | {got['peak_pss_mb']:.0f} | {pss} | {got['metric']:.3f} |"
            )
    return "\n".join(lines)


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flower-python", default=".venv-flower/bin/python", help="the Python of Flower's environment")
    parser.add_argument("--workloads", default="A,B,C")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"which of {', '.join(SIDES)} to run, in order")
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
    if any(SIDES[s][1] for s in _sides(args)) and not Path(args.flower_python).is_file():
        raise BenchError(f"--flower-python {args.flower_python}: not found (make compare-flower builds it)")
    return names


def _sides(args) -> list[str]:
    """The sides asked for; --suite-only drops Flower's."""
    return [s for s in args.sides.split(",") if not (args.suite_only and SIDES[s][1])]


def _compare(name: str, tmp: Path, args) -> dict:
    """One workload: each side in turn, one at a time, with what each ran on."""
    w = WORKLOADS[name]
    found: dict = {}
    for side in _sides(args):
        print(f"workload {name} ({w.title}): {side} ...", flush=True)
        got = SIDES[side][0](w, tmp, args)
        print(f"  {side}: {got['wall_s']} s, {got['peak_pss_mb']:.0f} MB, F1 {got['metric']}", flush=True)
        found[side] = {**got, "peak_rss_mb": got["peak_pss_mb"]}
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
    return "flower.json" if default else f"flower-{variant}.json"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = _workload_names(args)
    tmp = Path(tempfile.mkdtemp(prefix="compare-flower-"))
    load_before = os.getloadavg()  # measure with nothing else running: this says whether that held
    results = {name: _compare(name, tmp, args) for name in names}
    report = {
        "workloads": results,
        "machine": {**machine(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "versions": versions(args.flower_python) if Path(args.flower_python).is_file() else None,
        "memory": "peak_rss_mb holds the peak of the summed PSS of the process tree (shared pages counted once); "
        "peak_rss_sum_mb the summed RSS, for reference",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(table(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = _report_name(args, names)
    (out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
