"""The Ray backend: a fixed pool of worker actors shares the machine's CPUs and GPUs.

The prepared task goes into the object store once; each round the states clients start from
are put once and every actor reads them from there (so is each state to score). Clients are
handed out dynamically, a free actor taking the next client, and results are sorted by client id,
so aggregation order, and so the numbers, match the serial backend.
"""

from __future__ import annotations

import os

from bench.config import ExperimentConfig
from bench.engine.prepare import PreparedTask
from bench.engine.ray_gpus import actor_cpus, require_gpus
from bench.engine.ray_start import cluster_address, connect
from bench.engine.scoring import CutEvaluation
from bench.engine.worker import Worker, by_owner, kept
from bench.store import cache_root


class RayBackend:
    def __init__(self, cfg: ExperimentConfig, task: PreparedTask, dp=None):
        import ray

        os.environ["BENCH_CACHE"] = str(cache_root().resolve())  # actors start elsewhere
        # connected here: disconnect at close, so the next cell's resources apply
        self.owns_ray = not ray.is_initialized()
        started_here = False
        if self.owns_ray:
            cpus = max(os.cpu_count() or 1, cfg.workers * cfg.threads_per_worker)
            started_here = connect(ray, cfg.ray_address, {"num_cpus": cpus, "include_dashboard": False})
        if not cluster_address(cfg.ray_address):  # a cluster on this machine, whoever started it (a grid's driver)
            need = cfg.workers * cfg.gpus_per_worker
            require_gpus(
                ray, need, f"--workers {cfg.workers} x --gpus-per-worker {cfg.gpus_per_worker:g}", self.owns_ray
            )
        self.ray = ray
        # A crashed actor (killed process, CUDA OOM) is restarted and its call retried; the model
        # is rebuilt from the seed and clients are deterministic, so the retry gives the same result.
        reserved = actor_cpus(ray, cfg)
        actor = ray.remote(
            num_cpus=reserved,
            num_gpus=cfg.gpus_per_worker,
            max_restarts=cfg.max_retries,
            max_task_retries=cfg.max_retries,
        )(Worker)
        self.task = task  # to score the merged predictions
        # the token cache's files are mapped only on a cluster this process started here; one it
        # joined (other machines, Ray Client, autoscaling) gets the rows themselves
        task_ref = ray.put(task if started_here else task.in_memory())
        settings = cfg.to_dict()
        if cfg.gpus_per_worker > 0 and not cfg.cpus_per_worker:  # execution only: the run id stays
            # a GPU actor's torch threads are the cores it reserves, not its node's over the run's
            # workers (32 quarter-GPU actors on a 64-core node would each run 16)
            settings["cpus_per_worker"] = max(1, int(reserved))
        self.workers = [actor.remote(settings, task_ref, dp) for _ in range(cfg.workers)]

    def info(self) -> dict:
        return self.ray.get(self.workers[0].info.remote())

    def initial_state(self):
        return self.ray.get(self.workers[0].initial_state.remote())

    def owner(self, client: int) -> int:
        """The actor that holds a client's secure-aggregation secrets (and so trains it)."""
        return client % len(self.workers)  # as by_owner groups it

    def secagg(self, step: str, round_: int, per_client: dict) -> dict:
        """A secure-aggregation step, each client's part sent to the actor that holds its secrets."""
        futures = [
            self.workers[i].secagg.remote(step, round_, part)
            for i, part in by_owner(per_client, len(self.workers)).items()
        ]
        replies = {}
        for future in futures:  # every actor works at once; then each answer is collected
            try:
                replies.update(self.ray.get(future))
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
                pass  # its clients' secrets died with it: they answer nothing
        return replies

    def train(
        self, states: dict, jobs: list, round_: int, residuals: dict | None = None, secure=None, receive=kept
    ) -> tuple[list, set[int]]:
        """(results sorted by client, clients lost after the worker's retries ran out); each
        result goes to `receive` as it arrives (it returns what to keep)."""
        needed = {job.start for job in jobs}
        states_ref = self.ray.put({k: states[k] for k in needed})  # one broadcast per round
        pending, idle, running = list(jobs), list(range(len(self.workers))), {}
        results, lost = [], set()
        while pending or running:
            while pending and idle:  # a free actor takes the next client (under secagg: the one holding its secrets)
                n = next((n for n, j in enumerate(pending) if secure is None or self.owner(j.client) in idle), None)
                if n is None:
                    break
                job = pending.pop(n)
                worker = self.owner(job.client) if secure is not None else idle[-1]
                idle.remove(worker)
                kept = {job.client: residuals[job.client]} if residuals and job.client in residuals else None
                running[self.workers[worker].train.remote(states_ref, [job], round_, kept, secure)] = (worker, job)
            done, _ = self.ray.wait(list(running), num_returns=1)
            worker, job = running.pop(done[0])
            idle.append(worker)
            try:
                results += [receive(res) for res in self.ray.get(done[0])]
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
                lost.add(job.client)
        return sorted(results, key=lambda r: r.client), lost

    def evaluate_many(self, requests: list[tuple[dict, str, list | None]]) -> list[dict]:
        """Every actor predicts a share of the rows, scored here from the merged predictions
        (bench.engine.scoring); each distinct state goes into the object store once."""
        refs = {}
        for state, _, _ in requests:
            refs.setdefault(id(state), self.ray.put(state))
        cut = CutEvaluation(self.task, requests, len(self.workers))
        futures = [
            self.workers[i].predict_batch.remote(call[1], *[refs[k] for k in call[0]]) if call else None
            for i, call in enumerate(cut.calls)
        ]
        return cut.scores([self.ray.get(f) if f is not None else [] for f in futures])

    def cache_reports(self) -> list:
        return self.ray.get([w.cache_report.remote() for w in self.workers])

    def close(self) -> None:
        try:
            self.ray.get([w.close.remote() for w in self.workers])  # each keeps its prefix cache on disk
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
            pass
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []
        if self.owns_ray:
            self.ray.shutdown()
