"""`centralized`: the upper bound. All clients' training data pooled in one place, full
fine-tuning, the same number of passes over the data as the federated runs; nothing moves.
"""

from __future__ import annotations

import numpy as np

from baselines.base import Job, Method, register


@register("centralized")
class Centralized(Method):
    communicates = False
    partition_free = True

    def round_jobs(self, clients, sampled):
        return [Job(0, np.sort(np.concatenate(clients)))]
