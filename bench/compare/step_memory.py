"""The memory one trainer cannot do without: build a model, take a few AdamW steps on a random
batch, and print the peak private memory over the built model at each step (weights' gradients,
AdamW's two moments, activations and the allocator's slack), sampled every 10 ms, and each
step's seconds (so an allocator setting's memory and its time are read off one run):

    python -m bench.compare.step_memory --model minilm --batch-size 16 --length 64

Any engine's worker needs at least this much beside its runtime; what a worker holds beyond it
is the engine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import torch

from bench.errors import cli_entry
from bench.model.build import build_model


def private_dirty_kb() -> int:
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    return 0


def private_dirty_mb() -> int:
    return private_dirty_kb() // 1024


class Peak(threading.Thread):
    """The highest private memory seen every 10 ms until `stop()`: a sampler left running would
    take a share of a core from whatever this process does next (a test suite's later tests)."""

    def __init__(self):
        super().__init__(daemon=True, name="step-memory-peak")
        self.value = 0
        self._halt = threading.Event()  # not `_stop`: a Thread method of that name

    def run(self):
        while not self._halt.wait(0.01):
            self.value = max(self.value, private_dirty_mb())

    def stop(self):
        self._halt.set()
        self.join()


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare.step_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a worker of the suite has 1)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _measure(args)
    finally:  # a caller in this process (a test) keeps its own threads
        torch.set_num_threads(threads)


def _measure(args) -> int:
    model, _ = build_model(args.model, "ner", 3, seed=0)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch_size, args.length), generator=gen)
    labels = torch.randint(0, 3, (args.batch_size, args.length), generator=gen)
    peak = Peak()
    peak.start()
    try:
        time.sleep(0.05)
        built = private_dirty_mb()
        steps, seconds = [], []
        for _ in range(args.steps):
            peak.value = 0
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds.append(round(time.perf_counter() - start, 3))
            time.sleep(0.05)
            steps.append(peak.value - built)
    finally:
        peak.stop()
    weights_mb = sum(p.numel() * p.element_size() for p in params) / 2**20
    print(
        json.dumps(
            {
                "model": args.model,
                "batch": [args.batch_size, args.length],
                "private_after_build_mb": built,
                "peak_over_build_per_step_mb": steps,
                "step_s": seconds,
                "trainable_weights_mb": round(weights_mb),
                "grads_and_adamw_moments_mb": round(3 * weights_mb),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
