"""A worker builds the model once and runs any number of virtual clients on it, one after another.

A client is only its example ids, its seed and the state it starts from, so memory grows with
workers, not clients. The same class runs in-process (serial backend) and as a Ray actor.
"""

from __future__ import annotations

import numpy as np
import torch

from baselines import METHODS, Job, Result
from bench.comm import detach_state, load_state
from bench.config import ExperimentConfig
from bench.engine.prepare import PreparedTask, Split
from bench.engine.training import predict, train_local
from bench.layers import discover_layers
from bench.metrics import cls_scores, multilabel_scores, ner_scores
from bench.models import build_model
from bench.privacy import DpPlan


def client_seed(seed: int, client: int, round_: int) -> int:
    """Each client's RNG stream, from (seed, client, round) alone."""
    return int(np.random.default_rng([seed, client, round_]).integers(2**31 - 1))


class Worker:
    def __init__(self, cfg: dict, task: PreparedTask, dp: DpPlan | None = None):
        self.cfg = ExperimentConfig(**cfg)
        self.dp = dp if dp is not None and dp.level == "sample" else None
        torch.set_num_threads(self.cfg.threads_per_worker)  # same threads, same sums, any backend
        self.task = task
        self.device = "cuda" if self.cfg.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
        self.method = METHODS.get(self.cfg.method)(self.cfg)
        model, _ = build_model(self.cfg.model, task.kind, len(task.output_labels), self.cfg.seed)
        self.layers = discover_layers(model)
        self.model = self.method.configure(model, self.layers).to(self.device)
        self.trainable = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.lr = self.cfg.lr or self.method.default_lr

    def info(self) -> dict:
        total = sum(p.numel() for n, p in self.model.named_parameters() if "lora_" not in n)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {"trainable_params": trainable, "total_params": total, "n_blocks": self.layers.n_blocks, **self.method.describe()}

    def initial_state(self) -> dict[str, torch.Tensor]:
        return detach_state(self.model, self.trainable)

    def train(self, states: dict, jobs: list[Job], round_: int) -> list[Result]:
        results = []
        for job in jobs:
            start = states[job.start]
            load_state(self.model, start)
            rows = np.array([r for e in job.examples for r in self.task.train.chunks[e]], dtype=np.int64)
            loss, dp_steps = train_local(
                self.model, self.task.train.encoded, rows, kind=self.task.kind, pad_id=self.task.pad_id,
                epochs=self.cfg.local_epochs, batch_size=self.cfg.batch_size, lr=self.lr,
                warmup_ratio=self.cfg.warmup_ratio, seed=client_seed(self.cfg.seed, job.client, round_),
                penalty=(lambda m, s=start: self.method.penalty(m, s)), dp=self.dp, device=self.device,
            )  # fmt: skip
            results.append(Result(job.client, len(job.examples), detach_state(self.model, self.trainable), loss, dp_steps))
        return results

    def evaluate(self, state: dict, split: str = "test", examples: list[int] | None = None) -> dict:
        load_state(self.model, state)
        data: Split = getattr(self.task, split)
        examples = list(range(len(data.gold))) if examples is None else list(examples)
        rows = [r for e in examples for r in data.chunks[e]]
        preds = dict(zip(rows, predict(self.model, data.encoded, rows, kind=self.task.kind, pad_id=self.task.pad_id, device=self.device)))
        if self.task.kind == "ner":
            names = self.task.output_labels
            pred_tags = [[names[i] for r in data.chunks[e] for i in preds[r]] for e in examples]
            return ner_scores([data.gold[e] for e in examples], pred_tags)
        probs = np.stack([preds[data.chunks[e][0]] for e in examples])
        gold = np.array([data.gold[e] for e in examples])
        return (multilabel_scores if self.task.kind == "multilabel" else cls_scores)(gold, probs)
