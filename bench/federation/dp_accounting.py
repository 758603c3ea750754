"""What a DP mechanism's record has spent: epsilon from Opacus RDP accountant histories, alone
and composed (a unit in several clients' mechanisms: RDP adds).

Opacus' RDPAccountant.get_epsilon operation for operation (its default orders, each entry's RDP
times its steps, summed in history order), with each (noise, rate) pair's one-step RDP computed
once: a calibration's search and every round's ledger ask for the same pairs again, and one pair
takes Opacus 0.03-0.4 s here. tests/test_privacy.py checks it equals Opacus' accountant to the bit.
"""

from __future__ import annotations

import functools

import numpy as np

History = list[tuple[float, float, int]]  # Opacus RDP history: (noise multiplier, sample rate, steps)


def epsilon_of(history: History, delta: float) -> float:
    """Epsilon spent by one accountant history, as Opacus' RDPAccountant computes it."""
    from opacus.accountants.analysis.rdp import get_privacy_spent

    if not history:
        return 0.0
    rdp = sum([_one_step_rdp(noise, rate) * steps for noise, rate, steps in history])
    epsilon, _ = get_privacy_spent(orders=_orders(), rdp=rdp, delta=delta)
    return float(epsilon)


def _orders() -> list:
    from opacus.accountants import RDPAccountant

    return RDPAccountant.DEFAULT_ALPHAS


@functools.lru_cache(maxsize=4096)
def _one_step_rdp(noise_multiplier: float, rate: float) -> np.ndarray:
    """Opacus' compute_rdp for one step (its `rdp * steps` with steps 1: the same values)."""
    from opacus.accountants.analysis.rdp import compute_rdp

    rdp = compute_rdp(q=rate, noise_multiplier=noise_multiplier, steps=1, orders=_orders())
    rdp.setflags(write=False)  # shared by every caller
    return rdp


def composed_epsilon(histories: list[History], delta: float) -> float:
    """Epsilon of a unit that is in each of these mechanisms: their histories composed."""
    return epsilon_of([entry for history in histories for entry in history], delta)
