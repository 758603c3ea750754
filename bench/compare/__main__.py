"""Side by side with Flower: `python -m bench.compare` (what `make compare-flower` runs).

    python -m bench.compare [--flower-python .venv-flower/bin/python] [--workloads A,B,C]
                            [--train-subsample N] [--out results/perf]

For each workload (bench/compare/workloads.py) it runs this suite as a user runs it by default
(`python -m bench.run ...`, default execution, a cold prefix cache), then Flower's simulation
engine on the very sentences the suite's clients train on (bench/compare/flower_app.py, in
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
        "clients": [_pairs([train[i] for i in ids]) for ids in task.clients],
        "validation": _pairs(data.splits["validation"]),
        "test": _pairs(data.splits["test"]),
        "rounds": ROUNDS,
        "per_round": w.per_round,
        "batch_size": BATCH,
        "max_length": MAX_LENGTH,
        "lr": w.lr,
        "seed": SEED,
    }


def run_suite(w: Workload, tmp: Path, subsample: int | None, workers: int | None = None) -> dict:
    out, env = tmp / f"suite-{w.name}", {k: v for k, v in os.environ.items() if k != "BENCH_WORKERS"}
    env["BENCH_CACHE"] = str(tmp / f"cache-{w.name}")  # cold: the run pays for its own prefix cache
    measured = run_measured(suite_command(w, out, subsample, workers), env, tmp / f"suite-{w.name}.log")
    if measured["returncode"] != 0:
        raise BenchError(f"workload {w.name}: the suite run failed (log: {tmp / f'suite-{w.name}.log'})")
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


def run_flower(w: Workload, tmp: Path, subsample: int | None, python: str) -> dict:
    work, result = tmp / f"flower-{w.name}.json", tmp / f"flower-{w.name}-result.json"
    work.write_text(json.dumps(flower_work(w, subsample)))
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    measured = run_measured([python, str(FLOWER_APP), str(work), str(result)], env, tmp / f"flower-{w.name}.log")
    work.unlink()  # the sentences: not kept
    if measured["returncode"] != 0 or not result.is_file():
        raise BenchError(f"workload {w.name}: the Flower run failed (log: {tmp / f'flower-{w.name}.log'})")
    got = json.loads(result.read_text())
    return {**measured, "metric": round(got["test_f1"], 4), "val_per_round": [v["f1"] for v in got["val_f1"]]}


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
    lines = [
        "| workload | suite wall s | Flower wall s | Flower / suite | suite PSS MB | Flower PSS MB "
        "| suite / Flower memory | suite F1 | Flower F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        s, f = r["suite"], r["flower"]
        lines.append(
            f"| {name}: {WORKLOADS[name].title} | {s['wall_s']} | {f['wall_s']} | {f['wall_s'] / s['wall_s']:.2f} | "
            f"{s['peak_pss_mb']:.0f} | {f['peak_pss_mb']:.0f} | {s['peak_pss_mb'] / f['peak_pss_mb']:.2f} | "
            f"{s['metric']:.3f} | {f['metric']:.3f} |"
        )
    return "\n".join(lines)


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flower-python", default=".venv-flower/bin/python", help="the Python of Flower's environment")
    parser.add_argument("--workloads", default="A,B,C")
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
    if not Path(args.flower_python).is_file():
        raise BenchError(f"--flower-python {args.flower_python}: not found (make compare-flower builds it)")
    return names


def _compare(name: str, tmp: Path, args) -> dict:
    """One workload: the suite, then (unless --suite-only) Flower, with what each ran on."""
    w = WORKLOADS[name]
    print(f"workload {name} ({w.title}): suite ...", flush=True)
    suite = run_suite(w, tmp, args.train_subsample, args.suite_workers)
    print(f"  suite: {suite['wall_s']} s, {suite['peak_pss_mb']:.0f} MB, F1 {suite['metric']}", flush=True)
    flower = None if args.suite_only else run_flower(w, tmp, args.train_subsample, args.flower_python)
    if flower:
        print(f"  Flower: {flower['wall_s']} s, {flower['peak_pss_mb']:.0f} MB, F1 {flower['metric']}", flush=True)
    return {
        "suite": {**suite, "peak_rss_mb": suite["peak_pss_mb"]},
        "flower": flower and {**flower, "peak_rss_mb": flower["peak_pss_mb"]},
        "workload": {
            **vars(w),
            "rounds": ROUNDS,
            "max_length": MAX_LENGTH,
            "batch_size": BATCH,
            "task": TASK,
            "model": MODEL,
            "train_subsample": args.train_subsample,
        },
    }


def _report_name(args, names: list[str]) -> str:
    """flower.json for the full default comparison; any variant is named after what differs."""
    default = args.train_subsample is None and names == list(WORKLOADS) and not (args.suite_only or args.suite_workers)
    variant = "-".join(names) + (f"-subsample{args.train_subsample}" if args.train_subsample else "")
    variant += (f"-workers{args.suite_workers}" if args.suite_workers else "") + (
        "-suite-only" if args.suite_only else ""
    )
    return "flower.json" if default else f"flower-{variant}.json"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = _workload_names(args)
    tmp = Path(tempfile.mkdtemp(prefix="compare-flower-"))
    results = {name: _compare(name, tmp, args) for name in names}
    report = {
        "workloads": results,
        "machine": machine(),
        "versions": versions(args.flower_python),
        "memory": "peak_rss_mb holds the peak of the summed PSS of the process tree (shared pages counted once); "
        "peak_rss_sum_mb the summed RSS, for reference",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if not args.suite_only:
        print(table(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = _report_name(args, names)
    (out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
