"""The serial backend: one in-process worker runs every client, in order."""

from __future__ import annotations

from bench.config import ExperimentConfig
from bench.engine.prepare import PreparedTask
from bench.engine.worker import Worker, kept


class SerialBackend:
    def __init__(self, cfg: ExperimentConfig, task: PreparedTask, dp=None):
        self.worker = Worker(cfg.to_dict(), task, dp)

    def info(self) -> dict:
        return self.worker.info()

    def initial_state(self):
        return self.worker.initial_state()

    def train(
        self, states: dict, jobs: list, round_: int, residuals: dict | None = None, secure=None, receive=kept
    ) -> tuple[list, set[int]]:
        """(results sorted by client, clients lost to crashes): in-process, nothing is lost. Each
        result goes to `receive` as it is made (it returns what to keep)."""
        results = [receive(res) for job in jobs for res in self.worker.train(states, [job], round_, residuals, secure)]
        return sorted(results, key=lambda r: r.client), set()

    def secagg(self, step: str, round_: int, per_client: dict) -> dict:
        """A secure-aggregation step, answered by the clients' side (the worker's parties)."""
        return self.worker.secagg(step, round_, per_client)

    def evaluate_many(self, requests: list[tuple[dict, str, list | None]]) -> list[dict]:
        return [self.worker.evaluate(state, split, examples) for state, split, examples in requests]

    def cache_reports(self) -> list:
        return [self.worker.cache_report()]

    def close(self) -> None:
        self.worker.close()
