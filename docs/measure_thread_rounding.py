"""Does the torch thread count change a run's numbers? (README, "Reproducibility"):

    python docs/measure_thread_rounding.py > results/perf/thread_rounding.md

The thread count stays out of a run's identity (it is how a run executes, not what it computes),
so a run at 1 and at 2 threads shares its run id. Runs one configuration (the synthetic i2b2
corpus at its tiny scale, minilm, FedAvg at lr 3e-4, 2 clients, 3 rounds, serial) at 1 and 2 torch
threads and prints, per round, the training loss and validation F1 of each and how many
significant digits they share. Losses and scores only.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from measure_common import EQUAL, shared_digits, this_code

from bench.config import ExperimentConfig
from bench.engine.server import run_experiment
from bench.synth.generate import write_corpus


def digits(a: float, b: float) -> str:
    shared = shared_digits(a, b)
    return "all" if shared == EQUAL else str(shared)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus(Path(tmp) / "synth", seed=0, scale="tiny")
        base = ExperimentConfig(
            task="i2b2-2010", method="fedavg", model="minilm", clients=2, rounds=3, max_length=32,
            backend="serial", data_dir=str(corpus / "i2b2-2010"), lr=3e-4,
        )  # fmt: skip
        runs = {}
        for threads in (1, 2):
            out = Path(tmp) / f"t{threads}"
            run_experiment(base.with_settings(cpus_per_worker=threads), out, progress=False)
            runs[threads] = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    commit = this_code()
    print("# One run at 1 and at 2 torch threads\n")
    print(
        f"Made by `python docs/measure_thread_rounding.py` at commit {commit}: minilm, FedAvg at lr 3e-4, 2 clients, "
    )
    print("3 rounds, the tiny synthetic i2b2 corpus, serial backend; this machine's CPU.\n")
    print("| round | training loss, 1 thread | 2 threads | digits shared | validation F1, 1 thread | 2 threads |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for one, two in zip(runs[1], runs[2]):
        loss1, loss2 = one["train_loss"], two["train_loss"]
        print(
            f"| {one['round']} | {loss1:.10f} | {loss2:.10f} | {digits(loss1, loss2)} | "
            f"{one['val_metric']:.6f} | {two['val_metric']:.6f} |"
        )


if __name__ == "__main__":
    main()
