"""`fedprox`: Li et al. 2020, "Federated Optimization in Heterogeneous Networks".
FedAvg plus a proximal term (mu/2)||w - w_round_start||^2 that keeps clients near the global model.
"""

from __future__ import annotations

import torch

from baselines.base import Method, register


@register("fedprox")
class FedProx(Method):
    def penalty(self, model, start):
        params = dict(model.named_parameters())
        total = sum(((params[n] - w.to(params[n].device)) ** 2).sum() for n, w in start.items())
        return 0.5 * self.cfg.mu * total if isinstance(total, torch.Tensor) else None
