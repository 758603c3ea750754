"""The DP audit's figures, as the README quotes them ("Audited by the attack DP-SGD exists to
stop"; the loss that would leak):

    python docs/measure_dp_audit.py > results/privacy/dp_audit.md

Runs the attacks of tests/test_dp_audit.py (whose bounds the tests assert) and prints what each
measures: the separation of the canary's two worlds in standard deviations (one DP-SGD step
allows 1/sigma), for the row and patient paths, a four-row patient under both units, the
client level (DP-FedAvg) at sigma 1 and 2, the noise's own scale on untouched weights, and the
separation a released training loss would give at sigma 10^6 and without noise. Also a second
and third set of trials for the row path at sigma 1, the draw the test's fixed trials are one of.
Synthetic linear models only: no data, no text.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

import torch
from measure_common import this_code

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the attacks live with their bounds, in tests/
from tests.test_dp_audit import _hospital_separation, _private_step, _separation, _separations  # noqa: E402

warnings.filterwarnings("ignore", message="Full backward hook")  # Opacus's hooks, as the tests filter them


def se(trials: int) -> float:
    """Standard error of a separation near 1 sd over trials + trials draws (sqrt(2 / n) + O(d^2 / n))."""
    return math.sqrt(2 / trials)


def main() -> None:
    torch.set_num_threads(1)
    lines = [
        "# The DP audit's measured separations",
        "",
        f"Made by `python docs/measure_dp_audit.py` at {this_code()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Separation: the gap between the canary's two worlds in pooled standard deviations of what the "
        "attacker sees (one step of the Gaussian mechanism allows 1/sigma). The tests' bounds are in "
        "tests/test_dp_audit.py.",
        "",
        "| what the attacker sees | setting | trials (each world) | separation, sd | allowed (1/sigma) | standard error |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]

    def row(what: str, setting: str, trials: int, value: float, allowed: str) -> None:
        lines.append(f"| {what} | {setting} | {trials} | {value:.2f} | {allowed} | {se(trials):.3f} |")

    for first, label in ((0, "the test's trials"), (2000, "trials 2000-3999"), (4000, "trials 4000-5999")):
        row(
            "one client's update",
            f"DP-SGD, row level, sigma 1, {label}",
            1000,
            _separation(1.0, 1, "row", 1000, first),
            "1",
        )
    row("one client's update", "DP-SGD, patient level, sigma 1", 1000, _separation(1.0, 1, "patient", 1000), "1")
    row("one client's update", "a patient's 4 rows, row level, sigma 1", 400, _separation(1.0, 4, "row"), "4 (4 rows)")
    row("one client's update", "a patient's 4 rows, patient level, sigma 1", 400, _separation(1.0, 4, "patient"), "1")
    row("one client's update", "DP-SGD, row level, no noise", 400, _separation(0.0, 1, "row"), "unbounded")
    row("the released global model", "client level, sigma 1", 4000, _hospital_separation(1.0, 4000), "1")
    row("the released global model", "client level, sigma 2", 4000, _hospital_separation(2.0, 4000), "0.5")
    update, loss = _separations(1e6, 1, "row")
    row("one client's update", "DP-SGD, row level, sigma 10^6", 400, update, "10^-6")
    row("the step's training loss (never released)", "DP-SGD, row level, sigma 10^6", 400, loss, "(not private)")
    row(
        "the step's training loss (never released)",
        "DP-SGD, row level, no noise",
        400,
        _separations(0.0, 1, "row")[1],
        "-",
    )
    lines += [
        "",
        "| noise on the 3,998 weights no row touches (4 steps) | measured std | stated (sigma C / B) |",
        "| --- | ---: | ---: |",
    ]
    for unit in ("row", "patient"):
        noise = torch.cat([_private_step(1.0, 1, False, unit, t, width=4000)[0][2:] for t in range(4)])
        lines.append(f"| {unit} level, sigma 1 | {float(noise.std()):.4f} | 0.5 |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
