"""The sides of a comparison workload (`python -m bench.compare`): the suite as a user runs it
(and with one worker), Flower's simulation (at its default client resources and at one CPU a
client) on the very word runs the suite's clients train on, and the floor; each run as its own
process tree, measured (wall time, peak summed PSS) by bench.compare.memory."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from bench.compare.memory import run_measured
from bench.compare.workloads import BATCH, MAX_LENGTH, MODEL, ROUNDS, SEED, TASK, Workload
from bench.data import load_task
from bench.engine.prepare import prepare_task
from bench.engine.sampling import sample_clients
from bench.engine.subsample import subsample as take
from bench.engine.worker import client_seed
from bench.errors import BenchError
from bench.federation.comm import state_sha256
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
        "--local-epochs",
        str(w.local_epochs),
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


def _holdout(split, examples, ids) -> dict:
    runs, owner = pieces(split, examples, ids)
    return {"pieces": runs, "owner": owner, "sentences": _pairs([examples[e] for e in ids])}


def flower_work(w: Workload, subsample: int | None) -> dict:
    """What the Flower side needs: each client gets exactly the suite client's training sentences,
    and its seeds, round by round; each round's clients are the suite's."""
    cfg = w.config(subsample)
    task, data = prepare_task(cfg), load_task(TASK)
    train = take(data.splits["train"], subsample)
    return {
        "client_seeds": [[client_seed(SEED, c, r) for r in range(ROUNDS)] for c in range(len(task.clients))],
        "round_clients": [[int(c) for c in sample_clients(cfg, r)] for r in range(ROUNDS)],
        "holdouts": [_holdout(task.train, train, h.tolist()) for h in task.holdouts],
        "frozen_prefix_eval": w.layers is not None and cfg.prefix_cache != "off",  # as the suite's cache runs them
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
        "local_epochs": w.local_epochs,
        "seed": SEED,
    }


def _measured(w: Workload, what: str, cmd: list[str], env: dict, log: Path, output: Path) -> dict:
    """One side's process tree run and measured; a run that fails or leaves no output is one line
    naming its log."""
    measured = run_measured(cmd, env, log)
    if measured["returncode"] != 0 or not output.is_file():
        raise BenchError(f"workload {w.name}: the {what} run failed (log: {log})")
    return measured


def _own_env(cache: Path) -> dict:
    """This environment with the side's default execution (no BENCH_WORKERS) and an empty cache
    of its own (cold: a run pays for its own prefix cache)."""
    return {k: v for k, v in os.environ.items() if k != "BENCH_WORKERS"} | {"BENCH_CACHE": str(cache)}


def run_suite(w: Workload, tmp: Path, subsample: int | None, workers: int | None = None, label: str = "suite") -> dict:
    out, env = tmp / f"{label}-{w.name}", _own_env(tmp / f"cache-{label}-{w.name}")
    if out.exists():  # bench.run would skip a finished run: a measurement of nothing
        raise BenchError(f"workload {w.name}: {out} exists; each measured run needs a fresh folder")
    cmd = suite_command(w, out, subsample, workers)
    measured = _measured(w, "suite", cmd, env, tmp / f"{label}-{w.name}.log", out / "final.json")
    final = json.loads((out / "final.json").read_text())
    return {
        **measured,
        "metric": round(final["metric"], 4),
        "metric_last": round(final["metric_last"], 4),
        "val_per_round": [h["val_metric"] for h in _rounds(out)],
        "per_client": final["per_client"],
        "execution": final["execution"],
        "prefix_cache": final.get("prefix_cache"),
        "state_sha256": state_sha256(torch.load(out / "checkpoint.pt", weights_only=False)["states"]["global"]),
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
    t0 = time.perf_counter()
    given = flower_work(w, subsample)
    prepared_s = time.perf_counter() - t0  # outside Flower's measured tree (recorded since 2026-12-07)
    work.write_text(json.dumps({**given, "num_cpus": num_cpus}))
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        cmd = [python, str(FLOWER_APP), str(work), str(result)]
        measured = _measured(w, "Flower", cmd, env, tmp / f"{label}-{w.name}.log", result)
    finally:
        work.unlink()  # the sentences: not kept
    got = json.loads(result.read_text())
    if got["trained"] != [sorted(c) for c in given["round_clients"]]:  # else the sides trained different clients
        raise BenchError(
            f"workload {w.name}: Flower trained clients {got['trained']}, the suite {given['round_clients']}"
        )
    return {
        **measured,
        "metric": round(got["test_f1"], 4),
        "metric_last": round(got["test_f1_last"], 4),
        "val_per_round": [v["f1"] for v in got["val_f1"] if v["round"] > 0],  # as the suite's rounds.jsonl
        "per_client": got["per_client"],
        "client_resources": {"num_cpus": num_cpus} if num_cpus else "Flower's default",
        "prepared_outside_s": round(prepared_s, 2),  # the harness's (warm) seconds cutting Flower's data
        # torch threads each client trained with, per round, and the driver's (absent before 2026-12-07)
        "torch_threads": {"clients": got.get("client_threads"), "driver": got.get("driver_threads")},
    }


def run_floor(w: Workload, tmp: Path, subsample: int | None) -> dict:
    """The same training and scoring with no federated engine (bench.compare.floor)."""
    result = tmp / f"floor-{w.name}.json"
    cmd = [sys.executable, "-m", "bench.compare.floor", "--workload", w.name, str(result)]
    cmd += ["--train-subsample", str(subsample)] if subsample else []
    measured = _measured(w, "floor", cmd, _own_env(tmp / f"cache-floor-{w.name}"), tmp / f"floor-{w.name}.log", result)
    got = json.loads(result.read_text())
    return {
        **measured,
        "metric": round(got["metric"], 4),
        "metric_last": round(got["metric_last"], 4),
        "val_per_round": got["val_per_round"][1:],
        "per_client": got["per_client"],
        "state_sha256": got["state_sha256"],  # the last state's bits: equal to the suite's where both trained one model
    }


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
