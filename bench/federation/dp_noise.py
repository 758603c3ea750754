"""One Gaussian draw for every DP path: DP-SGD by row (inside Opacus's DPOptimizer), by document
or patient (bench.federation.privacy.UnitPrivateTraining) and DP-FedAvg at the server
(privacy.noisy_mean). Under `--secure-rng` every path draws as Opacus's `secure_mode` does: one
draw thrown away, then the sum of four N(0, std^2) draws halved (again N(0, std^2)), which
defeats the floating-point attacks on a single draw's representation (Opacus's notes cite
arXiv 2107.10138 and 2112.05307). Opacus's secure branch draws in float32 whatever the reference's
dtype (its note's 2^159 assumes 53-bit draws: about 2^72 with 24), on every path alike, and torch's
generator is a Mersenne Twister, not a cryptographic one. Seeded noise stays one draw of the
reference's dtype, so stored runs keep their numbers."""

from __future__ import annotations

import torch


def gaussian(std: float, shape, generator: torch.Generator, secure: bool, dtype=torch.float32) -> torch.Tensor:
    """N(0, std^2) noise of `shape`: Opacus's own function, so the row path and the others agree."""
    from opacus.optimizers.optimizer import _generate_noise  # opacus loads slowly: only with DP

    reference = torch.empty((), dtype=dtype).expand(shape)  # shape and dtype only: no buffer of its own
    return _generate_noise(std, reference, generator=generator, secure_mode=secure)
