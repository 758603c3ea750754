"""The checks that need a real GPU, in one short script for a lent GPU machine (issues 14, 26):

    python -m bench.compare.gpu_check --out results/perf/gpu.json [--rounds 2] [--parts plan_memory,...]
    python -m bench.compare.gpu_check --replan results/perf/gpu_plan_memory.json   # no GPU: today's plan beside it

1. `placement`: the worker's device and cache dtype on real CUDA (bench.engine.worker.placement;
   the CPU-only suite tests it with CUDA mocked).
2. `plan_memory`: `--plan`'s per-worker memory for LLaMA-3.2-1B's shape (llama16-random) at the
   paper grid's batch (8 x 256 tokens, bfloat16) and twice it, against the caching allocator's
   peak over two AdamW steps (the second is the steady state), for layer-skipping top:8 and
   bottom:8, FedAvg and LoRA; the two batches' difference gives the activation bytes per token,
   hidden unit and block that the plan's constant stands for (on the CPU only a few tokens could
   be afforded, so the activation term went unchecked there).
3. `federated`: a federated run of that shape on synthetic i2b2-2010 with 4 workers sharing the
   GPU at 0.25 each, and with 1 worker holding it whole: wall and compute seconds per round,
   rounds per hour, GPU utilisation and memory sampled by nvidia-smi every 0.5 s, and how many
   worker processes held the GPU at once.
4. `paper_plan`: `run_all.py --grid paper --study main --plan` on the synthetic releases, as
   printed there (its memory per worker and the GPU throughput it assumes, beside part 3's
   measured rounds). Not `--pilot`: the grid's 0.25-GPU workers are Ray actors, and Ray's wheel
   is too large to carry to a lent machine that has none.

Each part is written to --out as soon as it is done, so a part that fails or runs out of time
loses only itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.compare.gpu_sampler import GpuSampler
from bench.compare.plan_memory import measured_gb, planned_gb
from bench.config import ExperimentConfig
from bench.engine.worker import placement
from bench.model.shapes import model_shape
from bench.protocol.plan import cell_cost
from bench.registry import METHODS

PAPER_SHAPE = {"model": "llama16-random", "layers": "top:8", "dtype": "bfloat16", "batch": 8, "tokens": 256}
MEMORY_METHODS = [("layerskip", "top:8"), ("layerskip", "bottom:8"), ("fedavg", None), ("lora", None)]
MEMORY_BATCHES = (8, 16)  # the paper's batch, and twice it: the difference is one batch's activations


def check_placement() -> dict:
    found = {}
    for share, dtype in [(0.25, "bfloat16"), (0.25, "float32"), (0.0, "bfloat16")]:
        device, cache = placement(ExperimentConfig(task="conll", method="fedavg", gpus_per_worker=share, dtype=dtype))
        found[f"share {share:g}, {dtype}"] = {"device": device, "cache_dtype": str(cache).removeprefix("torch.")}
    return found


def _memory_config(method: str, layers: str | None, batch: int, model: str, dtype: str, tokens: int):
    return ExperimentConfig(
        task="i2b2-2010",
        method=method,
        layers=layers,
        model=model,
        dtype=dtype,
        batch_size=batch,
        max_length=tokens,
        gpus_per_worker=0.25,
    )


def replan(path: Path) -> list[dict]:
    """Today's plan beside a stored `plan_memory` measurement (`planned_gb_now`,
    `planned_over_measured_now`), the measured figures untouched: no GPU needed."""

    data = json.loads(path.read_text())
    for row in data["plan_memory"]:
        cfg = _memory_config(row["method"], row["layers"], row["batch"], row["model"], row["dtype"], row["tokens"])
        now = planned_gb(cfg)
        row.update(planned_gb_now=round(now, 3), planned_over_measured_now=round(now / row["measured_gb"], 3))
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data["plan_memory"]


def check_plan_memory() -> list[dict]:
    rows = []
    for method, layers in MEMORY_METHODS:
        measured = {}
        for batch in MEMORY_BATCHES:
            cfg = _memory_config(
                method, layers, batch, PAPER_SHAPE["model"], PAPER_SHAPE["dtype"], PAPER_SHAPE["tokens"]
            )
            planned, measured[batch] = planned_gb(cfg), measured_gb(cfg, device="cuda", steps=2)
            rows.append(
                {
                    **PAPER_SHAPE,
                    "batch": batch,
                    "method": method,
                    "layers": layers,
                    "steps": 2,
                    "planned_gb": round(planned, 3),
                    "measured_gb": round(measured[batch], 3),
                    "planned_over_measured": round(planned / measured[batch], 3),
                }
            )
        # one batch's activations, per token, hidden unit and block kept for the backward pass:
        # what bench.protocol.plan's ACTIVATION_FIT is fitted to (per 2-byte dtype)
        shape = model_shape(cfg.model, "ner", 3)
        kept = METHODS.get(method)(cfg).activation_blocks(shape)
        small, large = MEMORY_BATCHES
        extra = (measured[large] - measured[small]) * 1e9
        rows[-1]["activation_bytes_per_token_hidden_block"] = round(
            extra / ((large - small) * PAPER_SHAPE["tokens"] * shape.hidden * kept), 1
        )
    return rows


def federated_settings(data_dir: Path, workers: int) -> dict:
    """The federated run's settings, as ExperimentConfig fields (bench.run takes each as --field-name)."""
    return {
        "task": "i2b2-2010",
        "data_dir": str(data_dir / "i2b2-2010"),
        "method": "layerskip",
        "layers": PAPER_SHAPE["layers"],
        "model": PAPER_SHAPE["model"],
        "dtype": PAPER_SHAPE["dtype"],
        "clients": 4,
        "clients_per_round": 4,
        "max_length": PAPER_SHAPE["tokens"],
        "batch_size": PAPER_SHAPE["batch"],
        "train_subsample": 512,
        "lr": 1e-4,
        "seed": 0,
        "workers": workers,
        "gpus_per_worker": 1 / workers,
        "backend": "local",
    }


def run_federated(data_dir: Path, work: Path, workers: int, rounds: int) -> dict:
    out = work / f"run-w{workers}"
    settings = federated_settings(data_dir, workers)
    flags = [
        x
        for k, v in settings.items()
        for x in (f"--{k.replace('_', '-')}", f"{v:g}" if isinstance(v, float) else str(v))
    ]
    command = [sys.executable, "-m", "bench.run", *flags, "--rounds", str(rounds), "--out", str(out), "--quiet"]
    start = time.perf_counter()
    with GpuSampler() as sampler:
        done = subprocess.run(command, capture_output=True, text=True, timeout=200)
    wall = time.perf_counter() - start
    rounds_file = out / "rounds.jsonl"
    lines = [json.loads(x) for x in rounds_file.read_text().splitlines()] if rounds_file.is_file() else []
    final = json.loads((out / "final.json").read_text()) if (out / "final.json").is_file() else {}
    per_round = [round(x["wall_s"], 2) for x in lines]
    steady = sum(per_round[1:]) / len(per_round[1:]) if len(per_round) > 1 else None
    flop = cell_cost(ExperimentConfig(**settings)).round_flops / 1e12  # one round, as the planner counts it
    return {
        "workers": workers,
        "gpus_per_worker": 1 / workers,
        "returncode": done.returncode,
        "stderr_tail": done.stderr[-600:] if done.returncode else "",
        "wall_s": round(wall, 1),
        "round_wall_s": per_round,
        "round_compute_s": [round(x["compute_s"], 2) for x in lines],
        "rounds_per_hour_after_round_1": round(3600 / steady, 1) if steady else None,
        "planned_round_tflop": round(flop, 4),
        "effective_tflops_after_round_1": round(flop / steady, 3) if steady else None,  # the plan states 250
        "val_metric": [round(x["val_metric"], 4) for x in lines],
        "status": final.get("status"),
        "gpu": sampler.summary(),
    }


def paper_plan(data_dir: Path) -> dict:
    command = [sys.executable, "run_all.py", "--grid", "paper", "--study", "main", "--plan"]
    command += ["--data-dir", str(data_dir), "--model", PAPER_SHAPE["model"], "--out", str(data_dir.parent / "paper")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return {"returncode": done.returncode, "stdout": done.stdout[-6000:], "stderr_tail": done.stderr[-800:]}


def device_facts() -> dict:
    import transformers

    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gb": round(props.total_memory / 1e9, 1),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="JSON file to write, part by part")
    parser.add_argument("--replan", metavar="FILE", help="add today's plan to a stored plan_memory measurement; no GPU")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", default="all", help="comma-separated: placement, plan_memory, federated, paper_plan")
    parser.add_argument("--model", default=PAPER_SHAPE["model"], help="a smaller stand-in to rehearse the script")
    parser.add_argument("--layers", default=PAPER_SHAPE["layers"], help="the federated run's trained blocks")
    args = parser.parse_args(argv)
    PAPER_SHAPE.update(model=args.model, layers=args.layers)
    if args.replan:
        for row in replan(Path(args.replan)):
            print(
                f"{row['method']} {row['layers'] or ''} batch {row['batch']}: planned {row['planned_gb_now']:.2f} GB, "
                f"measured {row['measured_gb']:.2f} GB ({row['planned_over_measured_now']:.2f})"
            )
        return 0
    if not args.out:
        parser.error("--out is required")
    if not torch.cuda.is_available():
        print("gpu_check: CUDA reports no device; these checks need a GPU", file=sys.stderr)
        return 2
    found: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = Path(args.out)

    def part(name, fn):
        start = time.perf_counter()
        try:
            found[name] = fn()
        except Exception as e:  # noqa: BLE001 - one part failing must not lose the others
            found[name] = {"error": f"{type(e).__name__}: {e}"[:1000]}
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(found, indent=2) + "\n")

    wanted = (
        {"placement", "plan_memory", "federated", "paper_plan"} if args.parts == "all" else set(args.parts.split(","))
    )
    part("device", device_facts)
    if "placement" in wanted:
        part("placement", check_placement)
    if "plan_memory" in wanted:
        part("plan_memory", check_plan_memory)
    if wanted & {"federated", "paper_plan"}:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            subprocess.run([sys.executable, "-m", "bench.synth", "--out", str(data), "--scale", "small"], check=True)
            for workers in (4, 1) if "federated" in wanted else ():
                part(f"federated_w{workers}", lambda w=workers: run_federated(data, Path(tmp), w, args.rounds))
            if "paper_plan" in wanted:
                part("paper_plan", lambda: paper_plan(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
