"""What a released Poisson batch size would cost under DP-SGD (README, "Differential privacy":
the timing side channel), as the README quotes it:

    python docs/measure_dp_batch_sizes.py > results/privacy/batch_sizes.md

For a client of R training rows at batch 16 (Poisson rate 16 / R) over 40 rounds of one epoch's
steps, the noise multiplier the accountant gives for each target epsilon (delta 1e-5), and the
epsilon of the same steps when every batch's size is released beside its noisy sum, on the two
datasets bench/federation/dp_side_channel.py describes (the other rows' gradients zero, or the
canary's reversed). R = 1,279 is a
client of NCBI-disease's whole training set split IID 4 ways (5,683 encoded rows less 10% held
out, over 4); the NCBI study's clients train on about 190 rows (its subsample; results/round_steps.md),
near the 200 row; 10,000 is a large hospital. Numbers only: no data.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from measure_common import this_code

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.federation.dp_side_channel import epsilon, step_rdp, step_rdp_opposed  # noqa: E402

BATCH, ROUNDS, DELTA = 16, 40, 1e-5
TARGETS = (1.0, 2.0, 4.0, 8.0)
CLIENT_ROWS = (200, 1279, 10_000)
# fewer than Opacus's 151 (the sigma / 2 column integrates far out at high orders); the conversion
# picks orders of 2.9-18 here, well inside them
ORDERS = [1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64]


def main() -> None:
    from opacus.accountants.utils import get_noise_multiplier

    orders = ORDERS
    lines = [
        "# Released batch sizes under DP-SGD: what the accountant does not count",
        "",
        f"Made by `python docs/measure_dp_batch_sizes.py` at commit {this_code()} "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); delta {DELTA:g}, batch {BATCH}, "
        f"{ROUNDS} rounds of one epoch's steps. Every column is the accountant's own method (Renyi DP "
        f"at the {len(ORDERS)} orders 1.25-64, Opacus's conversion to epsilon), so they compare like "
        "with like; none is the exact (epsilon, delta) of its mechanism. 'hidden' prices the noisy sums "
        "alone (Opacus's RDP, reproduced by the integration; sigma is the accountant's for the target "
        "at its own 151 orders, so 'hidden' can sit a little above the target); the last two add every step's batch size, released "
        "exactly, on two datasets (bench/federation/dp_side_channel.py): the other rows' gradients "
        "zero (the count hides the canary's draw), or the canary's reversed (the sum gives the "
        "others' count away). Each is one dataset: a lower bound on that release's worst case.",
        "",
        "| client rows | rate | steps | target | sigma | epsilon, sizes hidden | sizes released, others zero "
        "| sizes released, others opposed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows in CLIENT_ROWS:
        rate, steps = BATCH / rows, ROUNDS * math.ceil(rows / BATCH)
        for target in TARGETS:
            sigma = get_noise_multiplier(
                target_epsilon=target, target_delta=DELTA, sample_rate=rate, steps=steps, accountant="rdp"
            )
            hidden = epsilon(step_rdp(rows, rate, sigma, orders, False) * steps, orders, DELTA)
            released = epsilon(step_rdp(rows, rate, sigma, orders, True) * steps, orders, DELTA)
            opposed = epsilon(step_rdp_opposed(rows, rate, sigma, orders) * steps, orders, DELTA)
            lines.append(
                f"| {rows:,} | {rate:.4f} | {steps:,} | {target:g} | {sigma:.3f} | {hidden:.3f} | "
                f"{released:.3f} | {opposed:.3f} |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
