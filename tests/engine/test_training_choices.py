"""The README's "Training choices" for local training without DP: each round a fresh AdamW with
no weight decay and a linear warm-up over the first 10% of the round's steps (moments and
warm-up restart every round), and gradients clipped to norm 1.0 by `clip_grad_norm_`.

Trained through `train_local` (what a client's round runs) on a two-layer stand-in for a HF
model, so no weights are downloaded."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bench.config import ExperimentConfig
from bench.data.tokenize import Encoded
from bench.engine import training
from bench.engine.training import _optimizer, train_local

VOCAB, ROWS, BATCH, EPOCHS = 12, 40, 4, 2  # 20 local steps: a warm-up of 2 at 10%
STEPS = EPOCHS * ROWS // BATCH
LR = 0.01


class Tiny(nn.Module):
    """What train_local needs of a HF model: forward(input_ids, attention_mask, labels).loss."""

    def __init__(self, loss_scale: float = 1.0):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, 2)
        self.loss_scale = loss_scale

    def forward(self, input_ids, attention_mask, labels=None):
        mask = attention_mask.unsqueeze(-1).float()
        logits = self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else self.loss_scale * nn.functional.cross_entropy(logits, labels)
        return SimpleNamespace(loss=loss, logits=logits)


def encoded() -> Encoded:
    rng = np.random.default_rng(0)
    ids = [rng.integers(1, VOCAB, size=int(n)).tolist() for n in rng.integers(3, 9, size=ROWS)]
    return Encoded(ids, rng.integers(0, 2, size=ROWS).tolist())


def a_round(model: nn.Module, seed: int) -> float:
    loss, dp = train_local(
        model,
        encoded(),
        np.arange(ROWS),
        kind="cls",
        pad_id=0,
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        warmup_ratio=ExperimentConfig.warmup_ratio,
        seed=seed,
    )
    assert dp is None
    return loss


def watch_steps(monkeypatch) -> list[dict]:
    """Per optimizer step, seen just before it: which optimizer, its lr, the norm of the gradient
    it applies, and the largest Adam moment it already holds (0.0 while it holds none)."""
    steps: list[dict] = []
    real = training._optimizer

    def spy(params, lr, warmup_ratio, n):
        optimizer, scheduler = real(params, lr, warmup_ratio, n)

        def before(opt, args, kwargs):
            params = [p for g in opt.param_groups for p in g["params"]]
            moments = [s[k].abs().max().item() for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq")]
            steps.append(
                {
                    "optimizer": opt,
                    "lr": opt.param_groups[0]["lr"],
                    "grad_norm": torch.cat([p.grad.flatten() for p in params]).norm().item(),
                    "moments": max(moments, default=0.0),
                }
            )

        optimizer.register_step_pre_hook(before)
        return optimizer, scheduler

    monkeypatch.setattr(training, "_optimizer", spy)
    return steps


def lr_multipliers(steps: int, warmup_ratio: float = 0.1) -> list[float]:
    """The learning rate of each step, as a multiple of the base lr."""
    optimizer, scheduler = _optimizer([nn.Parameter(torch.zeros(1))], 1.0, warmup_ratio, steps)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_adamw_without_weight_decay_and_a_linear_warm_up_over_the_first_tenth():
    assert ExperimentConfig.warmup_ratio == 0.1
    optimizer, _ = _optimizer([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))], LR, 0.1, STEPS)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.param_groups and all(g["weight_decay"] == 0.0 for g in optimizer.param_groups)
    # The pinned values: lr x (s + 1) / warm-up steps, full lr on the last warm-up step, held after.
    assert lr_multipliers(20) == pytest.approx([0.5] + [1.0] * 19)  # 10% of 20 steps: 2
    # 10% rounded down: under 20 steps no warm-up (README: the studies' iid clients, 12-13 and 6 steps)
    assert lr_multipliers(13) == pytest.approx([1.0] * 13) and lr_multipliers(6) == pytest.approx([1.0] * 6)
    assert lr_multipliers(23)[:2] == pytest.approx([0.5, 1.0]) and lr_multipliers(47)[:4] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0]
    )  # centralized's 23 and 47 steps (results/round_steps.md): over 2 and 4
    tenths = [(s + 1) / 10 for s in range(10)]
    assert lr_multipliers(100) == pytest.approx(tenths + [1.0] * 90)  # 10% of 100 steps: 10, even steps of 0.1
    assert lr_multipliers(100)[:10] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_without_dp_each_step_clips_the_gradient_to_norm_one(monkeypatch):
    clips: list[tuple[float, float]] = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip_spy(parameters, max_norm, *args, **kwargs):
        total = real_clip(parameters, max_norm, *args, **kwargs)
        clips.append((max_norm, float(total)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_spy)
    steps = watch_steps(monkeypatch)
    a_round(Tiny(loss_scale=1000.0), seed=1)  # a loss large enough that every raw gradient is over 1
    assert len(clips) == len(steps) == STEPS
    assert all(max_norm == 1.0 for max_norm, _ in clips)
    assert min(raw for _, raw in clips) > 10.0  # the positive control: there was something to clip
    assert [s["grad_norm"] for s in steps] == pytest.approx([1.0] * STEPS, rel=1e-4)  # what AdamW got

    # A clip, not a normalisation: a gradient already under 1 reaches AdamW as it was.
    clips.clear()
    steps.clear()
    a_round(Tiny(loss_scale=1e-3), seed=1)
    assert max(raw for _, raw in clips) < 1.0
    assert [s["grad_norm"] for s in steps] == pytest.approx([raw for _, raw in clips], rel=1e-4)


def test_each_round_starts_a_fresh_optimizer_and_warm_up(monkeypatch):
    steps = watch_steps(monkeypatch)
    model = Tiny()  # one model object across rounds, as a worker keeps it
    a_round(model, seed=1)
    after_round_1 = {k: v.clone() for k, v in model.state_dict().items()}
    a_round(model, seed=2)
    first, second = steps[:STEPS], steps[STEPS:]
    assert len(second) == STEPS
    assert first[0]["optimizer"] is not second[0]["optimizer"]
    assert all(s["optimizer"] is second[0]["optimizer"] for s in second)
    warm_up = [LR / 2] + [LR] * (STEPS - 1)
    assert [s["lr"] for s in first] == pytest.approx(warm_up)
    assert [s["lr"] for s in second] == pytest.approx(warm_up)  # the warm-up restarts
    assert first[-1]["moments"] > 0.0 and second[1]["moments"] > 0.0  # the probe sees moments when there are some
    assert second[0]["moments"] == 0.0  # round 2's first step holds none of round 1's

    # Black-box: round 2 is the same as a fresh start from round 1's weights.
    fresh = Tiny()
    fresh.load_state_dict(after_round_1)
    a_round(fresh, seed=2)
    for name, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[name]), name


def test_the_warm_up_is_ten_percent_of_the_steps_rounded_down_not_to_nearest():
    """README: "linear warm-up over the first 10% of its local steps, rounded down ... A round of
    fewer than 20 local steps has no warm-up (W = 1)". At 15-19 steps 10% is 1.5-1.9: rounded
    down, W = 1 (full lr from the first step); rounded to nearest it would be 2. At 35, 3 not 4."""
    for steps in range(15, 20):
        assert lr_multipliers(steps) == pytest.approx([1.0] * steps), steps
    assert lr_multipliers(35)[:4] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])  # W = 3 (3.5 rounded down)
