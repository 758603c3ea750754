"""Differential privacy: sample-level DP-SGD per client (Opacus) and client-level DP-FedAvg.

Sample-level: each client's local steps use Poisson-sampled batches, per-sample clipping and
Gaussian noise (Opacus' GradSampleModule and DPOptimizer wrapped around our own model and
optimizer; only trainable parameters get per-sample gradients). The privacy unit is one
encoded row: a sentence (chunk) for NER, an admission's note for MIMIC. Each client's RDP
accountant history lives across rounds, in the server state and the checkpoint.

Client-level (McMahan et al. 2018, "Learning Differentially Private Recurrent Language
Models"): clients are Poisson-sampled with rate q = K/N (bench.engine.sampling.sample_clients),
the server clips each client's update to norm C, sums, divides by the expected K and adds
N(0, (zC/K)^2), every round even when no client was drawn; the accountant's sample rate is q,
one step per round.

Accounting happens where the noise is drawn and records what was done: a client's entry is its
noise multiplier, its Poisson rate and the batches it actually drew, taken before updates are
screened (a rejected client still trained on its data); bench.federation.dp_accounting turns
the records into epsilon.

With `dp_epsilon`, the noise multiplier is calibrated for the planned rounds and local steps
of the client that needs the most noise, so no client's epsilon exceeds the target. A unit
whose rows sit at several clients (a document cut into sentences by an iid split) is in each
of their mechanisms: its loss is their composition (RDP adds), which the calibration and the
reported epsilon take (`shared_holders`: the sets of clients that share a unit; the calibration
is bench.federation.dp_calibration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import BenchError
from bench.federation import dp_noise
from bench.seeding import noise_generator


@dataclass(frozen=True)
class DpPlan:
    level: str  # "sample" or "client"
    noise_multiplier: float
    max_grad_norm: float
    delta: float
    target_epsilon: float | None
    unit: str = "row"  # what one unit of privacy is: an encoded row, a document, a patient (sample level)
    secure_rng: bool = False  # noise from OS entropy (bench.seeding.noise_generator), not from the seed
    shared_holders: tuple = ()  # the largest sets of clients that hold rows of one unit (composed)
    fixed_length: int | None = None  # --dp-fixed-shape: every step's row width (bench.federation.fixed_shape)
    unit_max_rows: int | None = None  # by document or patient: the most rows a drawn unit adds to a step

    @property
    def client_level(self) -> bool:
        """DP-FedAvg at the server (else DP-SGD in each client)."""
        return self.level == "client"


def sample_rate(rows: int, batch_size: int) -> float:
    return min(1.0, batch_size / max(rows, 1))


def steps_per_round(rows: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(rows / batch_size)


def client_level(cfg) -> bool:
    """Whether a run is under client-level DP (DP-FedAvg at the server); the one place it is asked."""
    return cfg.private and cfg.dp_level == "client"


def client_rate(cfg) -> float:
    """The chance a client takes part in a round: K/N (client-level DP's accountant rate)."""
    return cfg.per_round / cfg.clients


class PrivateTraining:
    """Wrap (model, optimizer) for DP-SGD and draw Poisson batches; undo the wrapping after."""

    def __init__(self, model: torch.nn.Module, optimizer, dp: DpPlan, rows: int, batch_size: int):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self.rate = sample_rate(rows, batch_size)
        self.module = GradSampleModule(model)
        self.optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=dp.noise_multiplier,
            max_grad_norm=dp.max_grad_norm,
            expected_batch_size=max(1, round(self.rate * rows)),
            # seeded runs draw noise from torch's global stream, which train_local seeds from the run's seed
            generator=noise_generator() if dp.secure_rng else None,
            secure_mode=dp.secure_rng,  # Opacus's sum of four draws, against floating-point attacks
        )
        self.noise_multiplier = dp.noise_multiplier

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Explicit per-row position ids: BERT and GPT-2 otherwise broadcast one row of them,
        which gives trainable position embeddings a per-sample gradient of batch size 1."""
        ids = batch["input_ids"]
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        return {**batch, "position_ids": positions}

    def batches(self, rows: np.ndarray, steps: int, generator: torch.Generator):
        """Poisson sampling: each row joins each batch with probability `rate` (may be empty)."""
        for _ in range(steps):
            yield rows[(torch.rand(len(rows), generator=generator) < self.rate).numpy()]

    def step(self, extra_grads: list[torch.Tensor] | None = None, batch_rows: np.ndarray | None = None) -> None:
        """Clip per sample, add noise, then add data-independent gradients (e.g. FedProx's)."""
        if self.optimizer.pre_step():
            if extra_grads is not None:
                for p, g in zip(self.optimizer.params, extra_grads):
                    p.grad.add_(g)
            self.optimizer.original_optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def noise_step(self) -> None:
        """An empty Poisson batch: the step DP-SGD's analysis counts there, noise alone (Opacus
        clips nothing, adds its noise to a zero sum and scales it as any batch)."""
        for p in self.optimizer.params:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        self.step()

    def close(self) -> None:
        self.module._close()


class UnitPrivateTraining(PrivateTraining):
    """User-level DP-SGD (McMahan et al. 2018's DP-FedAvg idea applied to one client's units):
    the privacy unit is a document or a patient, not a row. Units are Poisson-sampled with rate
    q (the expected batch holds `batch_size` rows, as at row level) and every row of a sampled
    unit joins the batch; each unit's *summed* gradient is clipped to C, however many rows it
    has, then Gaussian noise N(0, (sigma C)^2) is added to the sum, which is divided by the
    expected number of units. The accountant sees (sigma, q, steps) at the unit level. With
    `dp.unit_max_rows` = M a drawn unit adds a random M of its rows (all, if it has no more): the
    clipping bounds its influence whatever its rows, so the bound costs no privacy and caps a step's
    rows at M per unit, which a fixed shape (bench.federation.fixed_shape) needs."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer,
        dp: DpPlan,
        rows: np.ndarray,
        row_units: np.ndarray,
        batch_size: int,
        generator: torch.Generator,
    ):
        from opacus import GradSampleModule

        self.units, self.row_unit = np.unique(row_units, return_inverse=True)  # row_units[i]: the unit of rows[i]
        self.unit_of = np.zeros(int(rows.max()) + 1 if len(rows) else 0, dtype=np.int64)  # row id -> unit
        self.unit_of[rows] = self.row_unit
        self.rate = sample_rate(len(rows), batch_size)  # expected rows per batch = batch_size
        self.expected_units = max(self.rate * len(self.units), 1e-12)
        self.module = GradSampleModule(model)
        self.optimizer = optimizer
        self.noise_multiplier, self.clip, self.unit_name = dp.noise_multiplier, dp.max_grad_norm, dp.unit
        self.secure = dp.secure_rng
        self.noise = (
            noise_generator()
            if dp.secure_rng
            else torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        )
        self.last_clipped_norms: list[float] = []  # per sampled unit, for tests and inspection
        self.max_rows = dp.unit_max_rows
        self.fixed = False  # set under a fixed shape: the per-unit sums then take the step's shape

    def batches(self, rows: np.ndarray, steps: int, generator: torch.Generator):
        """Poisson sampling of units: each joins with probability `rate`, with all its rows (at
        most `max_rows` of them, drawn at random). With the bound, every step draws a key for
        every row and sorts them all, whatever the draw: the work does not show it."""
        start = np.r_[0, np.cumsum(np.bincount(self.row_unit))[:-1]]  # each unit's first place, sorted by unit
        for _ in range(steps):
            chosen = (torch.rand(len(self.units), generator=generator) < self.rate).numpy()
            if self.max_rows is None:
                yield rows[chosen[self.row_unit]]
                continue
            keys = torch.rand(len(rows), generator=generator).numpy()
            order = np.lexsort((keys, self.row_unit))  # by unit, then key: every row
            rank = np.arange(len(order)) - start[self.row_unit[order]]
            keep = np.zeros(len(rows), dtype=bool)
            keep[order] = (rank < self.max_rows) & chosen[self.row_unit[order]]
            yield rows[np.flatnonzero(keep)]

    def step(self, extra_grads: list[torch.Tensor] | None = None, batch_rows: np.ndarray | None = None) -> None:
        trained = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        unsampled = [n for n, p in trained if p.grad is not None and getattr(p, "grad_sample", None) is None]
        if unsampled:  # its plain gradient would reach the optimizer unclipped and without noise
            raise BenchError(
                f"DP-SGD by {self.unit_name}: {len(unsampled)} parameter(s) have a gradient but no per-sample "
                f"gradient (Opacus cannot sample their layer), e.g. {unsampled[0]}; freeze them or use --dp-unit row"
            )
        params = [p for _, p in trained if getattr(p, "grad_sample", None) is not None]  # unused ones have neither
        units = self.unit_of[np.asarray(batch_rows, dtype=np.int64)]
        padded = params[0].grad_sample.shape[0]
        if self.fixed:  # every row of the step gets a unit, the fillers one of their own (len(units)):
            # the unique and the sums run on the step's shape whatever the draw
            units = np.concatenate([units, np.full(padded - len(units), len(self.units), dtype=np.int64)])
        _, slot = torch.unique(torch.from_numpy(units), return_inverse=True)
        n = padded + 1 if self.fixed else int(slot.max()) + 1
        slot = slot.to(params[0].grad_sample.device)
        summed = [
            torch.zeros(
                (n, *p.grad_sample.shape[1:]), dtype=p.grad_sample.dtype, device=p.grad_sample.device
            ).index_add_(0, slot, p.grad_sample)
            for p in params
        ]
        norms = torch.sqrt(sum((g.flatten(1).double() ** 2).sum(1) for g in summed))
        factor = (self.clip / (norms + 1e-12)).clamp(max=1.0).to(summed[0].dtype)
        self.last_clipped_norms = (norms * factor.double()).tolist()
        for p, g in zip(params, summed):
            p.grad = self._noisy_mean(torch.einsum("u,u...->...", factor, g))
            p.grad_sample = None
        if extra_grads is not None:
            for p, g in zip([p for p in self.module.parameters() if p.requires_grad], extra_grads):
                p.grad.add_(g)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def noise_step(self) -> None:
        """An empty Poisson draw of units: noise alone on every trained parameter, over the
        expected number of units, as a drawn batch would have."""
        for p in self.module.parameters():
            if p.requires_grad:
                p.grad = self._noisy_mean(torch.zeros_like(p))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _noisy_mean(self, total: torch.Tensor) -> torch.Tensor:
        """A parameter's clipped sum plus N(0, (sigma C)^2), over the expected number of units."""
        noise = dp_noise.gaussian(self.noise_multiplier * self.clip, total.shape, self.noise, self.secure)
        return (total + noise.to(total.device, total.dtype)) / self.expected_units


def clip_update(update: dict[str, torch.Tensor], clip: float) -> dict[str, torch.Tensor]:
    norm = torch.sqrt(sum((t.double() ** 2).sum() for t in update.values()))
    scale = min(1.0, clip / (float(norm) + 1e-12))
    return {k: v * scale for k, v in update.items()}


def dp_fedavg(global_state: dict, client_states: list[dict], dp: DpPlan, expected_clients: int, seed: int) -> dict:
    """Client-level DP aggregation: clipped updates, averaged over the expected K, plus noise. A
    client with a layer budget sends only its blocks: the others are a zero update. In float32
    whatever the training dtype, as the plain average (bfloat16 sums of a hundred updates drift)."""
    clipped = [
        clip_update(
            {
                k: s[k].float() - g.float() if k in s else torch.zeros_like(g, dtype=torch.float32)
                for k, g in global_state.items()
            },
            dp.max_grad_norm,
        )
        for s in client_states
    ]
    summed = {  # from zero: a withheld round sums no client
        name: sum((c[name] for c in clipped), torch.zeros_like(g, dtype=torch.float32))
        for name, g in global_state.items()
    }
    return noisy_mean(global_state, summed, dp, expected_clients, seed)


def noisy_mean(global_state: dict, summed: dict, dp: DpPlan, expected_clients: int, seed: int) -> dict:
    """The server's half of DP-FedAvg: the sum of clipped updates (seen in the clear, or only as
    a secure-aggregation sum) over the expected K, plus N(0, (zC/K)^2) on every element."""
    generator = noise_generator() if dp.secure_rng else torch.Generator().manual_seed(seed)
    std = dp.noise_multiplier * dp.max_grad_norm / expected_clients
    out = {}
    for name, value in global_state.items():  # in float32, then back to the state's dtype
        noise = dp_noise.gaussian(std, value.shape, generator, dp.secure_rng, torch.float64).float()
        out[name] = (value.float() + summed[name].float() / expected_clients + noise).to(value.dtype)
    return out
