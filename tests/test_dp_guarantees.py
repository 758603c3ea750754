"""The exact quantities the DP mechanisms guarantee, measured on what they release.

Each DP guarantee rests on a sensitivity bound and on a divisor fixed in advance: one unit's
contribution to the released gradient is at most C over the *expected* number of units (whatever
the number of trainable tensors, whatever the Poisson draw), DP-FedAvg's released mean moves by
at most C/K for one client (K the expected clients, not those that showed up), and the
calibrated noise keeps *every* client within the target epsilon, the one that needs the most
noise included. These tests measure those quantities on the released update (the parameters'
change under SGD with learning rate 1, not the code's own report) and on the accountant's
epsilon recomputed from each client's history.
"""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bench.federation.dp_accounting import epsilon_of
from bench.federation.privacy import (
    DpPlan,
    UnitPrivateTraining,
    clip_update,
    dp_fedavg,
    sample_rate,
    steps_per_round,
)

CLIP = 1.0
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook", "ignore:Optimal order is the largest alpha")


def _model(seed: int = 0) -> nn.Module:
    """Two linear layers with biases: four trainable tensors, all with a gradient."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))


def _released_gradient(
    model: nn.Module,
    inputs: torch.Tensor,
    rows: np.ndarray,
    units: np.ndarray,
    batch_size: int,
    seed: int,
    clip: float = CLIP,
) -> tuple[list[torch.Tensor], np.ndarray, UnitPrivateTraining]:
    """One noiseless per-unit DP-SGD step through the suite's class: the gradient it released
    (every trainable tensor's change under SGD with lr 1), the rows it drew, and the wrapper. A
    row's loss is the sum of the model's outputs."""
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    plan = DpPlan("sample", noise_multiplier=0.0, max_grad_norm=clip, delta=1e-5, target_epsilon=None, unit="patient")
    private = UnitPrivateTraining(model, optimizer, plan, rows, units, batch_size, torch.Generator().manual_seed(seed))
    batch_rows = next(private.batches(rows, 1, torch.Generator().manual_seed(seed)))
    # a mean over the batch's rows, as training's loss: Opacus (loss_reduction "mean") scales the
    # per-row gradients back by the batch size, so each is its own row's loss's gradient
    private.module(inputs[batch_rows]).sum(1).mean().backward()
    private.step(None, batch_rows)
    private.close()
    released = [b - p.detach() for b, p in zip(before, model.parameters())]
    return released, batch_rows, private


def _global_norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))


@pytest.mark.parametrize("unit", [0, 1, 2])
def test_one_units_released_gradient_is_clipped_over_all_trainable_tensors(unit):
    """README: "each unit's summed gradient is clipped to C, however many rows it has". One
    patient alone (rate 1, so the expected-unit divisor is 1) with a huge gradient in every
    tensor of a two-layer model: the gradient the step releases has global norm C over all four
    tensors together, not C in one tensor and unbounded in the rest."""
    inputs = torch.randn(9, 4, generator=torch.Generator().manual_seed(unit)) * 1e4
    rows = np.arange(3 * unit, 3 * unit + 3)  # this patient's three admissions only
    released, batch_rows, private = _released_gradient(_model(unit), inputs, rows, np.full(3, 7), 3, unit)
    assert sorted(batch_rows.tolist()) == rows.tolist()
    divisor = sample_rate(len(rows), 3) * 1  # rate 1 x one unit
    assert divisor == pytest.approx(private.expected_units) == 1.0
    assert all(float(g.abs().sum()) > 0 for g in released)  # every tensor carries part of it
    assert _global_norm(released) * divisor <= CLIP * (1 + 1e-5)
    assert _global_norm(released) * divisor == pytest.approx(CLIP, rel=1e-4)  # huge: clipped, not dropped


def test_the_unit_paths_divisor_is_the_expected_unit_count_not_the_drawn_one():
    """README: the clipped sum "is divided by the expected number of units" (q times the units),
    a constant fixed before the draw; dividing by the drawn count would make one unit's share
    depend on who else was sampled. Rate 1/3 over six patients (expected 2), a draw of another
    count: the released gradient is the sum of the per-patient clipped gradients, computed here
    by hand, over 2."""
    rows = np.arange(12)
    units = np.repeat(np.arange(6), 2)  # six patients, two admissions each
    inputs = torch.randn(12, 4, generator=torch.Generator().manual_seed(3)) * 30
    inputs[units % 2 == 0] /= 30  # some patients' gradients below the clip, some above
    clip = 10.0
    reference = _model(1)
    released, batch_rows, private = _released_gradient(copy.deepcopy(reference), inputs, rows, units, 4, 4, clip)
    expected_units = sample_rate(12, 4) * 6
    assert expected_units == pytest.approx(2.0) == pytest.approx(private.expected_units)
    drawn = sorted(set(units[batch_rows].tolist()))
    assert len(drawn) not in (0, 2), "precondition: the seed must draw a number of patients other than the expected"
    params = list(reference.parameters())
    total = [torch.zeros_like(p) for p in params]
    norms = []
    for patient in drawn:
        grads = torch.autograd.grad(reference(inputs[rows[units == patient]]).sum(), params)
        norm = _global_norm(list(grads))
        norms.append(norm)
        total = [t + g * min(1.0, clip / norm) for t, g in zip(total, grads)]
    assert min(norms) < clip < max(norms)  # both sides of the clip are exercised
    for got, want in zip(released, total):
        torch.testing.assert_close(got, want / expected_units, rtol=1e-4, atol=1e-6)


def test_dp_fedavg_divides_by_the_expected_clients_not_those_present():
    """README: the server "clips each client's update to norm C, sums, divides by the expected K
    and adds N(0, (zC/K)^2)". K = 4 expected, two present, no noise: the release is the clipped
    sum over 4 (over 2 it would double one client's influence against the noise), and one more
    client moves the release by its clipped update over K, at most C/K."""
    start = {"w": torch.zeros(2), "b": torch.zeros(1)}
    states = [
        {"w": torch.tensor([3.0, 4.0]), "b": torch.tensor([12.0])},
        {"w": torch.tensor([0.3, 0.4]), "b": torch.tensor([0.0])},
    ]
    plan = DpPlan("client", noise_multiplier=0.0, max_grad_norm=CLIP, delta=1e-5, target_epsilon=None)
    out = dp_fedavg(start, states, plan, expected_clients=4, seed=0)
    clipped = [clip_update(s, CLIP) for s in states]  # start is zero: each state is its update
    assert _global_norm(list(clipped[0].values())) == pytest.approx(CLIP)
    for name in start:
        summed = clipped[0][name] + clipped[1][name]
        torch.testing.assert_close(out[name], summed / 4, rtol=0, atol=1e-7)
        assert not torch.allclose(out[name], summed / 2) or not summed.any()
    canary = {"w": torch.tensor([-50.0, 20.0]), "b": torch.tensor([9.0])}
    shifted = dp_fedavg(start, [*states, canary], plan, expected_clients=4, seed=0)
    shift = _global_norm([shifted[n] - out[n] for n in start])
    assert shift == pytest.approx(CLIP / 4, rel=1e-5)  # the sensitivity the noise zC/K is sized for


def test_calibration_covers_the_client_that_needs_the_most_noise():
    """README: the noise multiplier is "calibrated for ... the client that needs the most noise,
    so no client's epsilon exceeds the target". Clients of 60, 100 and 140 rows (batch 16, ten
    rounds each) have different rates and step counts: recomputed from its own history, every
    client spends at most the target, and the worst spends it (within 1%)."""
    from bench.federation.dp_calibration import plan

    cfg = SimpleNamespace(
        dp_epsilon=8.0, noise_multiplier=None, dp_delta=1e-5, dp_level="sample", private=True, batch_size=16,
        local_epochs=1, max_grad_norm=CLIP, dp_unit="row", secure_rng=False, dp_fixed_shape=False, dp_unit_max_rows=None,
    )  # fmt: skip
    rows = {0: 60, 1: 100, 2: 140}
    sigma = plan(cfg, rows, {c: 10 for c in rows}).noise_multiplier
    spent = [epsilon_of([(sigma, sample_rate(n, 16), 10 * steps_per_round(n, 16, 1))], 1e-5) for n in rows.values()]
    assert len(set(np.round(spent, 3))) == 3  # the clients differ: one of them needs the most noise
    assert max(spent) <= 8.0 + 0.01
    assert max(spent) >= 0.99 * 8.0
    assert max(spent) == pytest.approx(7.997, abs=0.001)  # README's figure
    # the least-noise choice (each client's own calibration, the smallest sigma) would overspend
    from bench.federation.dp_calibration import _calibrate

    least = min(_calibrate(8.0, 1e-5, sample_rate(n, 16), 10 * steps_per_round(n, 16, 1)) for n in rows.values())
    overspent = max(
        epsilon_of([(least, sample_rate(n, 16), 10 * steps_per_round(n, 16, 1))], 1e-5) for n in rows.values()
    )
    assert overspent == pytest.approx(12.5, abs=0.05)  # README's figure
