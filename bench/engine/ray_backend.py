"""The Ray backend: a fixed pool of worker actors shares the machine's CPUs and GPUs.

The prepared task goes into the object store once; each round the states clients start from
are put once and every actor reads them from there. Clients are dealt to actors round-robin in
client-id order and results are sorted by client id, so aggregation order, and so the numbers,
match the serial backend.
"""

from __future__ import annotations

import os

from bench.config import ExperimentConfig
from bench.engine.prepare import PreparedTask
from bench.engine.worker import Worker
from bench.synth.cache import cache_root


class RayBackend:
    def __init__(self, cfg: ExperimentConfig, task: PreparedTask, dp=None):
        import ray

        os.environ["BENCH_CACHE"] = str(cache_root().resolve())  # actors start elsewhere
        if not ray.is_initialized():
            local = {"num_cpus": max(os.cpu_count() or 1, cfg.workers * cfg.threads_per_worker),
                     "include_dashboard": False} if not cfg.ray_address else {}  # fmt: skip
            ray.init(address=cfg.ray_address, log_to_driver=False, configure_logging=False, **local)
        self.ray = ray
        # A crashed actor (killed process, CUDA OOM) is restarted and its call retried; the model
        # is rebuilt from the seed and clients are deterministic, so the retry gives the same result.
        actor = ray.remote(num_cpus=cfg.threads_per_worker if not cfg.ray_address else 1, num_gpus=cfg.gpus_per_worker,
                           max_restarts=cfg.max_retries, max_task_retries=cfg.max_retries)(Worker)  # fmt: skip
        task_ref = ray.put(task)
        self.workers = [actor.remote(cfg.to_dict(), task_ref, dp) for _ in range(cfg.workers)]

    def info(self) -> dict:
        return self.ray.get(self.workers[0].info.remote())

    def initial_state(self):
        return self.ray.get(self.workers[0].initial_state.remote())

    def train(self, states: dict, jobs: list, round_: int) -> tuple[list, set[int]]:
        """(results sorted by client, clients lost after the worker's retries ran out)."""
        needed = {job.start for job in jobs}
        states_ref = self.ray.put({k: states[k] for k in needed})  # one broadcast per round
        n = len(self.workers)
        batches = [(w, jobs[i::n]) for i, w in enumerate(self.workers) if jobs[i::n]]
        futures = [(w.train.remote(states_ref, batch, round_), batch) for w, batch in batches]
        results, lost = [], set()
        for future, batch in futures:
            try:
                results += self.ray.get(future)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
                lost |= {job.client for job in batch}
        return sorted(results, key=lambda r: r.client), lost

    def evaluate_many(self, requests: list[tuple[dict, str, list | None]]) -> list[dict]:
        n = len(self.workers)
        futures = [self.workers[i % n].evaluate.remote(state, split, ex) for i, (state, split, ex) in enumerate(requests)]
        return self.ray.get(futures)

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []
