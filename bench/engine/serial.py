"""The serial backend: one in-process worker runs every client, in order."""

from __future__ import annotations

from bench.config import ExperimentConfig
from bench.engine.prepare import PreparedTask
from bench.engine.worker import Worker


class SerialBackend:
    def __init__(self, cfg: ExperimentConfig, task: PreparedTask, dp=None):
        self.worker = Worker(cfg.to_dict(), task, dp)

    def info(self) -> dict:
        return self.worker.info()

    def initial_state(self):
        return self.worker.initial_state()

    def train(
        self, states: dict, jobs: list, round_: int, residuals: dict | None = None, kits: dict | None = None
    ) -> tuple[list, set[int]]:
        """(results sorted by client, clients lost to crashes): in-process, nothing is lost."""
        return sorted(self.worker.train(states, jobs, round_, residuals, kits), key=lambda r: r.client), set()

    def evaluate_many(self, requests: list[tuple[dict, str, list | None]]) -> list[dict]:
        return [self.worker.evaluate(state, split, examples) for state, split, examples in requests]

    def cache_reports(self) -> list:
        return [self.worker.cache_report()]

    def close(self) -> None:
        self.worker.close()
