"""Performance benchmark (not a test): prints a table and writes JSON.

    python -m bench.compare.perf [--out results/perf] [--quick]

1. frozen-prefix cache speed-up per round, next to its FLOP bound: layerskip top:2 on minilm,
   and 8 of 16 blocks on a 16-block LLaMA-shaped model (3 rounds each way; the median round,
   since a single round here varies by a quarter from one run to the next);
2. engine overhead (wall time minus client training and evaluation) at 10 and 100 clients
   per round on a tiny model;
3. peak memory at 10 and at 1,000 clients with the same workers;
4. rounds per hour of the quick grid's layerskip cell.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.config import ExperimentConfig
from bench.engine.cells import cpu_kind
from bench.engine.prepare import prepare_task
from bench.engine.server import run_experiment
from bench.errors import OneLineArgumentParser, cli_entry
from bench.protocol.host_speed import all_cores_tflops
from bench.store import git_state

NCBI = Path(__file__).resolve().parents[3] / "shared" / "data" / "ncbi-disease"


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **cpu_kind(),  # the processor model and a digest of its flags
        # the compute floor's rate: a minilm-width block on every core (docs/measure_flower_derived.py)
        "host_tflops": round(all_cores_tflops(), 4),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "git": git_state(),  # the code that was measured
    }


def run_cfg(out: Path, **kw) -> dict:
    """One experiment in this process; returns final.json plus its rounds."""

    final = run_experiment(ExperimentConfig(**kw), out, progress=False)
    final["history"] = [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]
    return final


def flop_bound(train_tokens: int, eval_tokens: int, n_blocks: int, k: int) -> float:
    """Speed-up bound of caching blocks 0..k-1: forward costs 1 per block and token, backward 2
    (through the trainable upper part only); embeddings and the head are left out."""
    upper = n_blocks - k
    uncached = train_tokens * (n_blocks + 2 * upper) + eval_tokens * n_blocks
    cached = train_tokens * 3 * upper + eval_tokens * upper
    return uncached / cached


def cache_speedup(tmp: Path, model: str, layers: str, task: str, rounds: int) -> dict:
    """Median round time without the cache, with it filled from each row's first use (its first
    round), and reusing it from disk; the speed-up, its FLOP bound, and two shares of the bound:
    of the speed-up (speedup / bound, the target's) and of the time the bound says can be saved."""
    kw = dict(task=task, method="layerskip", layers=layers, model=model, clients=4, rounds=rounds, max_length=64)
    timing = {}
    for cache in ("off", "fill", "on"):  # "fill" computes the cache inside its own rounds; "on" reuses it from disk
        final = run_cfg(tmp / f"{model}-{cache}", prefix_cache="off" if cache == "off" else "on", **kw)
        walls = [h["wall_s"] for h in final["history"]]
        timing[cache] = walls[0] if cache == "fill" else statistics.median(walls)
        info = final["method_info"]
    task_data = prepare_task(ExperimentConfig(**kw))
    train_tokens = sum(
        len(task_data.train.encoded.input_ids[r]) for c in task_data.clients for r in task_data.train.rows(c)
    )
    eval_tokens = sum(len(x) for x in task_data.test.encoded.input_ids)
    n, k = info["n_blocks"], min(info["blocks"])
    bound = flop_bound(train_tokens, eval_tokens, n, k)
    speedup = timing["off"] / timing["on"]
    return {
        "model": model,
        "layers": layers,
        "rounds": rounds,
        "round_s_uncached": round(timing["off"], 2),
        "round_s_cached": round(timing["on"], 2),
        "round_s_filling": round(timing["fill"], 2),
        "speedup": round(speedup, 3),
        "flop_bound": round(bound, 3),
        "share_of_bound": round(speedup / bound, 3),
        "share_of_bound_saving": round((1 - 1 / speedup) / (1 - 1 / bound), 3),
        "cache": info["prefix_cache"],
    }


def engine_overhead(tmp: Path, data: dict, per_round: int) -> dict:
    final = run_cfg(
        tmp / f"overhead-{per_round}",
        method="fedavg",
        model="tiny-bert",
        clients=per_round,
        rounds=2,
        max_length=48,
        backend="serial",
        **data,
    )
    last = final["history"][-1]  # the second round: nothing left to warm up
    return {
        "clients_per_round": per_round,
        "wall_s": last["wall_s"],
        "compute_s": last["compute_s"],
        "overhead_share": round(1 - last["compute_s"] / last["wall_s"], 4),
    }


def peak_memory(data: dict, clients: int) -> dict:
    """Peak RSS of a fresh process running 10 clients per round out of `clients`. It includes
    loading and preparing the data, which both client counts share: per-client state shows only
    where it lifts the peak above that."""
    code = (
        "import json,resource,sys,tempfile; from bench.compare.perf import run_cfg; from pathlib import Path;"
        f"run_cfg(Path(tempfile.mkdtemp()), method='fedavg', model='tiny-bert', clients={clients}, "
        "clients_per_round=10,"
        f" rounds=2, max_length=48, backend='serial', holdout_fraction=0.2, **{data!r});"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kb = int(out.stdout.strip().splitlines()[-1])
    return {"clients": clients, "peak_rss_kb": peak_kb, "peak_rss_mb": round(peak_kb / 1024, 1)}


def quick_cell_rate(tmp: Path) -> dict:
    """The quick grid's layerskip cell, median of 2 rounds; its frozen-prefix cache is already on
    disk (the cache measurement above filled it), as for every sweep point after a grid's first."""
    final = run_cfg(
        tmp / "quick-cell",
        task="i2b2-2010",
        method="layerskip",
        layers="top:2",
        model="minilm",
        clients=4,
        rounds=2,
        max_length=64,
    )
    per_round = statistics.median(h["wall_s"] for h in final["history"])
    return {"round_s": round(per_round, 2), "rounds_per_hour": round(3600 / per_round, 1), "prefix_cache": "on disk"}


@cli_entry
def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = OneLineArgumentParser(prog="python -m bench.compare.perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="perf-"))
    os.environ["BENCH_CACHE"] = str(tmp / "cache")  # the prefix cache starts cold: the first cached run fills it
    many, many_named = (
        ({"task": "conll", "data_dir": str(NCBI)}, "NCBI-disease (CoNLL form)")
        if NCBI.is_dir()
        else ({"task": "i2b2-2010"}, "i2b2-2010 (synthetic)")
    )
    result = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    result["cache"] = [
        cache_speedup(tmp, "minilm", "top:2", "i2b2-2010", rounds=3),
        cache_speedup(tmp, "llama16-mini", "top:8", "i2b2-2010", rounds=3),
    ]
    result["overhead_data"] = many_named  # recorded since 2026-12-07
    result["overhead"] = [engine_overhead(tmp, many, n) for n in (10, 100)]
    result["memory"] = [peak_memory(many, n) for n in (10, 1000)]
    result["memory_ratio"] = round(result["memory"][1]["peak_rss_mb"] / result["memory"][0]["peak_rss_mb"], 3)
    result["quick_cell"] = quick_cell_rate(tmp)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perf.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(
        f"machine: {m['processor']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
        f"GPU: {m['cuda']}"
    )
    print("| measure | value |\n|---|---|")
    for c in result["cache"]:
        print(
            f"| cache speed-up, {c['model']} {c['layers']} | {c['speedup']}x per round (median of {c['rounds']}: "
            f"{c['round_s_uncached']} s -> {c['round_s_cached']} s; {c['round_s_filling']} s while filling it); "
            f"FLOP bound {c['flop_bound']}x; {100 * c['share_of_bound']:.0f}% of the bound, "
            f"{100 * c['share_of_bound_saving']:.0f}% of the time it says can be saved |"
        )
    for o in result["overhead"]:
        print(
            f"| engine overhead, {o['clients_per_round']} clients/round "
            f"| {100 * o['overhead_share']:.1f}% of {o['wall_s']} s |"
        )
    for mem in result["memory"]:
        print(f"| peak memory, {mem['clients']} clients | {mem['peak_rss_mb']} MB |")
    print(f"| memory ratio 1000/10 clients | {result['memory_ratio']} |")
    q = result["quick_cell"]
    print(f"| quick grid layerskip cell, cache on disk | {q['rounds_per_hour']} rounds/hour ({q['round_s']} s/round) |")
    print(f"wrote {out / 'perf.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
