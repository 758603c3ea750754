"""Padding with and without length-bucketed batches, counted (docs/PERFORMANCE.md):

    python docs/measure_length_buckets.py > results/perf/length_buckets.md

NCBI-disease's training sentences (shipped), minilm's tokenizer at max length 64, batch 16, one
epoch of the suite's own batching (bench.engine.training.epoch_batches) from seed 0: the token
positions the padded batches hold against the real tokens, for `--length-buckets` 0, 8 and 50.
Counts only; nothing is trained or timed.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.config import ExperimentConfig
from bench.engine.prepare import prepare_task
from bench.engine.training import epoch_batches

BATCH, SEED = 16, 0


def main() -> None:
    task = prepare_task(ExperimentConfig(task="ncbi-disease", method="centralized", model="minilm", max_length=64))
    encoded = task.train.encoded
    rows = np.arange(len(encoded.input_ids))
    real = sum(len(ids) for ids in encoded.input_ids)
    print("# Padding with length-bucketed batches\n")
    print(
        f"Made by `python docs/measure_length_buckets.py`: NCBI-disease's training split, {len(rows):,} encoded rows "
    )
    print(
        f"(a sentence over 64 tokens is cut in two), {real:,} real tokens, batch {BATCH}, one epoch from seed {SEED}.\n"
    )
    print("| --length-buckets | token positions in padded batches | / real tokens |")
    print("| ---: | ---: | ---: |")
    for buckets in (0, 8, 50):
        batches = epoch_batches(rows, encoded, BATCH, torch.Generator().manual_seed(SEED), buckets)
        held = sum(len(b) * max(len(encoded.input_ids[r]) for r in b) for b in batches)
        print(f"| {buckets} | {held:,} | {held / real:.2f}x |")


if __name__ == "__main__":
    main()
