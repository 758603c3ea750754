"""Does `--plan`'s peak memory per worker hold? One short training step of a model's shape on
this CPU in its dtype, its peak resident memory next to what bench.protocol.plan plans for the
same settings.

    python -m bench.compare.plan_memory [--model llama16-random] [--layers top:8] [--dtype bfloat16]
                                        [--batch 1] [--tokens 2] [--dp] [--json]

The weights are zero-filled rather than initialised (a memory check, not a quality one: random
initialisation of a 1B model takes a minute here), and the step is a few tokens long because
bfloat16 matrix products are slow on CPUs without bf16 units; the plan's activation term is then
negligible, and what is checked is the weights, gradients and optimizer state that dominate a
large model's memory. `--dp` runs the steps as DP-SGD does (bench.federation.privacy's
PrivateTraining: Opacus's per-sample gradients, clipping and noise), which the plan counts as a
gradient per row for each trained parameter. Run it in a fresh process: the peak is the
process's high-water mark.
"""

from __future__ import annotations

import argparse
import json
import resource

import psutil
import torch

from bench.config import ExperimentConfig
from bench.federation.privacy import DpPlan, PrivateTraining
from bench.model.build import DTYPES
from bench.model.layers import discover_layers
from bench.model.shapes import meta_model, model_shape
from bench.protocol.plan import worker_memory_gb
from bench.registry import METHODS


def _config(args) -> ExperimentConfig:
    return ExperimentConfig(
        task="i2b2-2010",
        method="layerskip" if args.layers else "fedavg",
        layers=args.layers,
        model=args.model,
        dtype=args.dtype,
        batch_size=args.batch,
        max_length=args.tokens,
        noise_multiplier=1.0 if args.dp else None,
    )


def planned_gb(cfg: ExperimentConfig) -> float:
    method = METHODS.get(cfg.method)(cfg)
    return worker_memory_gb(cfg, model_shape(cfg.model, "ner", 3), method)


def measured_gb(cfg: ExperimentConfig, device: str = "cpu", steps: int = 2) -> float:
    """Peak memory above the footprint before the model, over `steps` AdamW steps (no weight
    decay, as bench.engine.training) on the method's trainable parameters (AdamW allocates its
    moments in its first step, after that step's activations are gone, so only a later step can
    hold both; on the H200 the first step's peak was as high): the process's resident high-water
    mark on the CPU, the caching allocator's peak on CUDA (the CUDA context, about 0.5 GB per
    process, is outside both the plan and this figure)."""
    on_gpu = device.startswith("cuda")
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = psutil.Process().memory_info().rss
    model = meta_model(cfg.model, "ner", 3, DTYPES[cfg.dtype]).to_empty(device=device)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.zero_()  # every page touched, as loaded weights would be
    model = METHODS.get(cfg.method)(cfg).configure(model, discover_layers(model))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4, weight_decay=0.0)
    ids = torch.ones((cfg.batch_size, cfg.max_length), dtype=torch.long, device=device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.zeros_like(ids)}
    private = _dp_sgd(model, optimizer, cfg) if cfg.private else None
    for _ in range(steps):  # from the second step on, AdamW's state is there beside the activations
        out = private.module(**private.inputs(batch)) if private else model(**batch)
        out.loss.backward()
        if private:
            private.step()
        else:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        del out
    if on_gpu:
        peak = torch.cuda.max_memory_allocated(device)
        del model, optimizer, trained
        torch.cuda.empty_cache()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return (peak - before) / 1e9


def _dp_sgd(model, optimizer, cfg: ExperimentConfig):
    """The training loop's DP-SGD wrapping, every row in the step (rate 1)."""
    plan = DpPlan("sample", cfg.noise_multiplier, cfg.max_grad_norm, cfg.dp_delta, None)
    return PrivateTraining(model, optimizer, plan, cfg.batch_size, cfg.batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare.plan_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama16-random", help="a model spec (default: LLaMA-3.2-1B's shape)")
    parser.add_argument("--layers", default="top:8", help="layer-skipping's trained blocks; empty: every parameter")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="AdamW steps (the second is the steady state)")
    parser.add_argument(
        "--dp", action="store_true", help="DP-SGD steps (per-sample gradients), as --noise-multiplier runs"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the sentence")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = _config(args)
    found = {"planned_gb": planned_gb(cfg), "measured_gb": measured_gb(cfg, steps=args.steps)}
    found["planned_over_measured"] = found["planned_gb"] / found["measured_gb"]
    if args.json:
        print(json.dumps({**vars(args), **found}))
    else:
        print(
            f"{args.model} {args.layers or 'all'} {args.dtype}{' DP-SGD' if args.dp else ''}, batch {args.batch} x {args.tokens}: planned "
            f"{found['planned_gb']:.2f} GB per worker, measured {found['measured_gb']:.2f} GB "
            f"(planned / measured {found['planned_over_measured']:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
