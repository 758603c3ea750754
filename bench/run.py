"""`python -m bench.run`: one experiment, written to --out (config.json, partition.json,
rounds.jsonl, final.json, test_items.json and test_groups.json: the test predictions' per-example
records, and checkpoint.pt to resume from)."""

from __future__ import annotations

import json
import sys

from bench.config import ExperimentConfig
from bench.config_checks import BACKEND_NAMES
from bench.data.hf import add_column_flags
from bench.engine import execution
from bench.engine.ray_start import cluster_address
from bench.engine.server import run_experiment
from bench.errors import OneLineArgumentParser, cli_entry
from bench.registry import METHODS, PARTITIONERS


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m bench.run", description=__doc__)
    _task_flags(p)
    _federation_flags(p)
    _training_flags(p)
    _stopping_flags(p)
    _privacy_flags(p)
    _scale_flags(p)
    _protocol_flags(p)
    _speed_flags(p)
    _fault_flags(p)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _task_flags(p: OneLineArgumentParser) -> None:
    """What runs: the task, the method and its layers."""
    p.add_argument("--task", required=True)
    p.add_argument("--method", required=True, help=f"one of {', '.join(METHODS.names())} (baselines/, discovered)")
    p.add_argument("--layers", default=None, help="layerskip: top:K, bottom:K, list:a,b, every:N, auto:K")
    p.add_argument("--client-budgets", default=None, help="layerskip: by-size, or a JSON/YAML file {client: blocks}")


def _federation_flags(p: OneLineArgumentParser) -> None:
    """Who trains, and for how long: partition, clients, rounds."""
    kinds = [f"{n}:ALPHA" if PARTITIONERS.get(n).takes_alpha else n for n in PARTITIONERS.names()]
    p.add_argument("--partition", default="iid", help=f"one of {', '.join(kinds)} (partitions/, discovered)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--clients-per-round", type=int, default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--local-epochs", type=int, default=1)


def _training_flags(p: OneLineArgumentParser) -> None:
    """The model, the data it reads, and each client's training (with --mu, --lora-rank: method settings)."""
    p.add_argument("--model", default="minilm")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="weights and training (aggregation is fp32)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--label-level", default=None, choices=["category", "type"])
    add_column_flags(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--length-buckets",
        type=int,
        default=0,
        help="batches of similar-length rows, sorted within windows of N batches (0: off)",
    )
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--mu", type=float, default=0.01, help="fedprox proximal weight")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument(
        "--frozen-mode",
        default="train",
        choices=["train", "eval"],
        help="layerskip: eval keeps frozen blocks in eval mode (no dropout), as the prefix cache computes them",
    )
    p.add_argument("--train-subsample", type=int, default=None, help="a fixed random subset of the training examples")
    p.add_argument(
        "--val-subsample",
        type=int,
        default=None,
        help="a fixed subset of validation: rare classes whole, large ones capped, weighted (test stays whole)",
    )


def _stopping_flags(p: OneLineArgumentParser) -> None:
    """When a run stops, and how often it scores test."""
    p.add_argument(
        "--early-stop", action="store_true", help="stop once validation has stalled (--patience, --min-delta)"
    )
    p.add_argument(
        "--patience", type=int, default=3, help="rounds without a --min-delta gain on validation = converged"
    )
    p.add_argument("--min-delta", type=float, default=0.001)
    p.add_argument(
        "--test-every",
        type=int,
        default=0,
        help="score test every N rounds for curves (default 0: only the reported state)",
    )


def _privacy_flags(p: OneLineArgumentParser) -> None:
    """Differential privacy: a target epsilon or a fixed noise, and its unit and clipping."""
    dp = p.add_mutually_exclusive_group()
    dp.add_argument("--dp-epsilon", type=float, default=None)
    dp.add_argument("--noise-multiplier", type=float, default=None)
    p.add_argument("--dp-delta", type=float, default=1e-5)
    p.add_argument("--dp-level", default="sample", choices=["sample", "client"], help="DP-SGD per client, or DP-FedAvg")
    p.add_argument("--dp-unit", default="row", choices=["row", "document", "patient"], help="DP-SGD's privacy unit")
    p.add_argument(
        "--dp-unit-holders",
        default="observed",
        choices=["observed", "all"],
        help="clients a unit may sit at, for calibration: read from the data, or every training client (data-free)",
    )
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="per-sample clipping bound (sample-level DP)")
    p.add_argument("--client-clip", type=float, default=1.0, help="per-update clipping bound (client-level DP)")
    p.add_argument(
        "--secure-rng",
        action="store_true",
        help="DP noise from OS entropy, not from the run's seed (runs then differ by their noise)",
    )
    p.add_argument(
        "--dp-fixed-shape",
        action="store_true",
        help="every DP-SGD step on the same rows x max_length, whatever its Poisson draw: "
        "its time does not show the draw (costs a cap of about 3-4x the batch; by document or patient, "
        "times --dp-unit-max-rows)",
    )
    p.add_argument(
        "--dp-unit-max-rows",
        type=int,
        metavar="N",
        help="by document or patient: a drawn unit adds at most N of its rows to a step, chosen at random "
        "(public; --dp-fixed-shape needs it there)",
    )


def _scale_flags(p: OneLineArgumentParser) -> None:
    """Execution only: how many workers, on what (results are equal across these)."""
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core on CPU, per GPU on GPU)"
    )
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--cpus-per-worker", type=int, default=None)
    p.add_argument(
        "--backend",
        default="auto",
        choices=list(BACKEND_NAMES),
        help="auto: serial for one worker, local processes for more on CPU, ray on GPUs or a cluster",
    )
    p.add_argument("--ray-address", default=cluster_address(None), help="a running Ray cluster (default: $RAY_ADDRESS)")


def _protocol_flags(p: OneLineArgumentParser) -> None:
    """What goes over the wire: secure aggregation, compression."""
    p.add_argument("--secagg", default="off", choices=["on", "off"], help="secure aggregation (SecAgg+) of the uploads")
    p.add_argument("--secagg-clip", type=float, default=1.0, help="per-element range of an update before quantisation")
    p.add_argument("--secagg-bits", type=int, default=32, help="width of the quantised, masked values")
    p.add_argument(
        "--secagg-transcript",
        default=None,
        metavar="FILE",
        help="write every secure-aggregation message the server saw",
    )
    p.add_argument(
        "--compress", default="none", help="uploads: none, fp16, bf16, int8, topk:F (top-k with error feedback)"
    )


def _speed_flags(p: OneLineArgumentParser) -> None:
    """Speed only: the frozen-prefix cache."""
    p.add_argument(
        "--prefix-cache", default="on", choices=["on", "off"], help="cache frozen-prefix activations (layerskip)"
    )
    p.add_argument("--prefix-cache-mb", type=int, default=4096, help="memory budget of that cache")


def _fault_flags(p: OneLineArgumentParser) -> None:
    """Simulated faults: dropouts, stragglers, crashed workers."""
    p.add_argument("--dropout", type=float, default=0.0, help="chance a sampled client drops out, per round")
    p.add_argument("--straggler-frac", type=float, default=0.0, help="chance a client misses the round deadline")
    p.add_argument("--max-retries", type=int, default=2, help="restarts of a crashed worker before its clients drop")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    out, quiet = args.pop("out"), args.pop("quiet")
    cfg = ExperimentConfig.from_dict({**args, "workers": 1 if args["workers"] is None else args["workers"]})

    if args["workers"] is None and execution.unchosen(cfg):  # said at the start of the run and kept in final.json
        cfg = execution.choose(cfg)

    final = run_experiment(cfg, out, progress=not quiet)
    keys = (
        "task",
        "method",
        "metric_name",
        "metric",
        "val_metric",
        "best_round",
        "converged",
        "bytes_up_total",
        "trainable_params",
        "epsilon",
        "status",
    )
    print(json.dumps({k: final.get(k) for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
