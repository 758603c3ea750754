"""A secure-aggregation round that reaches one client under client-level DP (Poisson sampling
draws one client in 25% of rounds at N=4, K=2). A sum over one client is that client's update:
masks would hide nothing, and the server's noise, added after it unmasks, would come too late.
So that client clips its update, adds the round's noise N(0, (zC)^2) itself and sends the
result in the clear, and the server adds no noise of its own: the server sees one draw of the
mechanism's output (the sampled clients' clipped sum plus the noise), the release the
accountant already counts, and never the update alone. That holds under --secure-rng, where
the client draws from its own OS entropy (bench.seeding.noise_generator). Seeded runs draw the
noise the server would have drawn, so a seeded run's numbers do not depend on who adds it, and
a seed holder (the server too) subtracts it and reads the clipped update."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from bench.federation import dp_noise
from bench.federation.secagg_client import Refused, clip_parts
from bench.federation.secagg_math import flat_parts
from bench.seeding import noise_generator


@dataclass(frozen=True)
class LoneNoise:
    """What the round's one client adds: N(0, std^2) per element, std = zC on the sum's scale,
    from `seed` (seeded runs) or from OS entropy (None: --secure-rng)."""

    std: float
    seed: int | None


@dataclass
class Noised:
    """A lone client's upload: its clipped update plus the round's noise, flat float32 (as the
    model's tensors travel), in the layout's order."""

    client: int
    vector: np.ndarray
    plain_bytes: int
    mask_s: float = 0.0


def noised_update(client: int, update: dict, layout) -> Noised | Refused:
    """Clip the whole update to the layout's norm, add the round's noise tensor by tensor (in the
    layout's order, as the server's draw goes), flatten."""
    t0 = time.perf_counter()
    parts = flat_parts(update, layout.names, layout.shapes)
    if not all(np.isfinite(p).all() for p in parts):
        return Refused(client, "non-finite update, refused before noising")
    parts = clip_parts(parts, layout.clip_norm)
    lone = layout.lone
    generator = noise_generator() if lone.seed is None else torch.Generator().manual_seed(lone.seed)
    noised = [
        p + dp_noise.gaussian(lone.std, tuple(shape), generator, lone.seed is None, torch.float64).numpy().ravel()
        for p, shape in zip(parts, layout.shapes)
    ]
    vector = np.concatenate(noised).astype(np.float32)
    return Noised(client, vector, vector.nbytes, time.perf_counter() - t0)  # every tensor travels, noised
