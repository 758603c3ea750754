"""A worker builds the model once and runs any number of virtual clients on it, one after another.

A client is only its example ids, its seed and the state it starts from, so memory grows with
workers, not clients. The same class runs in-process (serial backend) and as a Ray actor.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from bench.config import ExperimentConfig
from bench.engine.prefix_cache import PrefixCache, cache_plan
from bench.engine.prepare import PreparedTask, Split
from bench.engine.scoring import all_examples, score_predictions
from bench.engine.training import predict, train_local
from bench.federation.budgets import blocks_for
from bench.federation.comm import Job, Result, detach_state, load_state, tensor_bytes
from bench.federation.compress import codec_for
from bench.federation.lone_round import noised_update
from bench.federation.privacy import DpPlan
from bench.federation.secagg_client import ClientParties, MaskLayout, Refused
from bench.model.build import DTYPES, build_model
from bench.model.layers import discover_layers
from bench.registry import METHODS
from bench.seeding import seed_of, seeded_torch
from bench.store import cache_root


def client_seed(seed: int, client: int, round_: int) -> int:
    """Each client's RNG stream, from (seed, client, round) alone."""
    return seed_of("client_training", seed, client, round_)


def kept(result):
    """A backend's default `receive`: every result kept as it came."""
    return result


def by_owner(per_client: dict, workers: int) -> dict[int, dict]:
    """A secure-aggregation step's messages grouped by the worker that holds each client's secrets
    (and trains it): worker `client mod workers`, in every backend."""
    parts: dict[int, dict] = {}
    for client, message in per_client.items():
        parts.setdefault(client % workers, {})[client] = message
    return parts


def _chaos(round_: int, client: int) -> None:
    """Fault injection for tests: BENCH_CHAOS_KILL=round:client:marker kills this process once."""
    spec = os.environ.get("BENCH_CHAOS_KILL")
    if spec:
        r, c, marker = spec.split(":", 2)
        if (int(r), int(c)) == (round_, client) and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)


def placement(cfg: ExperimentConfig) -> tuple[str, torch.dtype]:
    """(device, dtype of cached frozen-prefix activations): CUDA when the worker holds a GPU
    share and CUDA reports a device (under Ray, the one in its CUDA_VISIBLE_DEVICES), else the
    CPU. On a GPU the cache is half precision, the model's own half dtype where it has one (a
    bfloat16 model's activations can exceed float16's range); on the CPU, the model's own dtype
    (float32 unless the run asks for a half one)."""
    own = DTYPES[cfg.dtype]
    half = own in (torch.bfloat16, torch.float16)
    if cfg.gpus_per_worker > 0 and torch.cuda.is_available():
        return "cuda", own if half else torch.float16
    return "cpu", own


class Worker:
    def __init__(self, cfg: dict, task: PreparedTask, dp: DpPlan | None = None):
        self.cfg = ExperimentConfig(**cfg)
        self.dp = dp if dp is not None and not dp.client_level else None
        torch.set_num_threads(self.cfg.threads_per_worker)  # same threads, same sums, any backend
        self.task = task
        self.device, self.cache_dtype = placement(self.cfg)
        self.method = METHODS.get(self.cfg.method)(self.cfg)
        model, _ = build_model(self.cfg.model, task.kind, len(task.output_labels), self.cfg.seed, self.cfg.dtype)
        self.layers = discover_layers(model)
        with seeded_torch("method_setup", self.cfg.seed):  # adapters and added parameters: from the seed
            self.model = self.method.configure(model, self.layers).to(self.device)
        self.trainable = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.trainable_set = set(self.trainable)
        # the base model's size: counted before the prefix cache swaps frozen blocks out, and
        # without LoRA's adapters or the frozen head copy PEFT keeps beside the trained one
        added = self.method.added_param_markers
        self.total_params = sum(p.numel() for n, p in self.model.named_parameters() if not any(m in n for m in added))
        self.lr = self.cfg.lr or self.method.default_lr
        self.codec = codec_for(self.cfg.compress) if self.method.communicates else None
        self.parties = ClientParties()  # secure aggregation: the secrets of the clients this worker runs
        self.cache, self.cache_note = self._prefix_cache()

    def _prefix_cache(self) -> tuple[PrefixCache | None, str]:
        """The frozen-prefix cache where it applies (and is on), else None and why not."""
        if self.cfg.prefix_cache == "off":
            return None, "off"
        k, where = cache_plan(self.model, self.layers)
        if k is None:
            return None, f"not applicable: {where}"
        splits = {name: getattr(self.task, name).encoded for name in ("train", "validation", "test")}
        try:
            cache = PrefixCache(
                self.model,
                self.layers,
                k,
                where,
                splits,
                self.task.pad_id,
                self.device,
                self.cache_dtype,
                budget_bytes=self.cfg.prefix_cache_mb << 20,
                store=cache_root() / "prefix",
            )
        except MemoryError as e:
            return None, f"not used: {e}"
        return cache, f"blocks 0-{k - 1} cached ({cache.bytes / 2**20:.1f} MiB)"

    def _budget_params(self, budget) -> list[str]:
        """The parameters a client with this layer budget trains and sends (head included)."""
        if budget is None:
            return self.trainable
        blocks = blocks_for(budget, self.method.blocks)
        names = set(self.layers.head).union(*(self.layers.block_params(self.model, b) for b in blocks))
        return [n for n in self.trainable if n in names]

    def _feeder(self, split: str):
        return (lambda rows, width=None: self.cache.feed(split, rows, width)) if self.cache else None

    def info(self) -> dict:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "trainable_params": trainable,
            "total_params": self.total_params,
            "n_blocks": self.layers.n_blocks,
            "block_prefix": self.layers.block_prefix,  # the server counts each tensor's holders with it
            "prefix_cache": self.cache_note,
            **self.method.describe(),
        }

    def cache_report(self) -> dict | None:
        """Whether the prefix cache's disk entry existed at the start, and what this worker computed."""
        if self.cache is None:
            return None
        return {
            "reused": self.cache.reused,
            "build_s": round(self.cache.build_s, 3),
            "rows_computed": self.cache.filled,
        }

    def close(self) -> None:
        """Keep what the prefix cache computed for the next cell with the same frozen prefix."""
        if self.cache is not None:
            self.cache.save()

    def initial_state(self) -> dict[str, torch.Tensor]:
        return detach_state(self.model, self.trainable)

    def secagg(self, step: str, round_: int, per_client: dict) -> dict:
        """A secure-aggregation step for the clients this worker runs (their secrets stay here)."""
        return self.parties.secagg(step, round_, per_client)

    def train(
        self,
        states: dict,
        jobs: list[Job],
        round_: int,
        residuals: dict | None = None,
        secure: MaskLayout | None = None,
    ) -> list[Result]:
        """Each job's local training; with --compress, the update goes out encoded (and a client
        with error feedback gets back what it kept, to add next round); with secure aggregation
        (`secure`), it goes out masked with the client's own secrets, held in this worker: the
        server never sees it in the clear."""
        results = []
        for job in jobs:
            _chaos(round_, job.client)
            start = states[job.start]
            load_state(self.model, start)
            sent = self._budget_params(job.budget)
            for name, p in self.model.named_parameters():
                p.requires_grad_(name in sent)
            rows = self.task.train.rows(job.examples)
            t0 = time.perf_counter()
            loss, dp_steps = train_local(
                self.model,
                self.task.train.encoded,
                rows,
                kind=self.task.kind,
                pad_id=self.task.pad_id,
                epochs=self.cfg.local_epochs,
                batch_size=self.cfg.batch_size,
                lr=self.lr,
                warmup_ratio=self.cfg.warmup_ratio,
                seed=client_seed(self.cfg.seed, job.client, round_),
                penalty=(lambda m, s=start: self.method.penalty(m, s)),
                dp=self.dp,
                before_forward=self._feeder("train"),
                device=self.device,
                row_units=self._dp_units(rows),
                length_buckets=self.cfg.length_buckets,
            )
            train_s = time.perf_counter() - t0
            loss = None if self.cfg.private else loss  # on private data, outside the mechanism: never released
            state, kept = detach_state(self.model, sent), None
            if secure is not None:
                update = {k: (state[k].float() - start[k].float()).numpy() for k in state}
                if secure.lone is not None:  # the round's only client: it adds the round's DP noise itself
                    state = noised_update(job.client, update, secure)
                elif kit := self.parties.kit(job.client, secure):
                    state = kit.mask_update(update, len(job.examples), tensor_bytes(state))
                else:
                    state = Refused(job.client, "its round secrets were lost with its worker")
            elif self.codec is not None:
                update = {k: state[k].float() - start[k].float() for k in state}
                state, kept = self.codec.encode(update, (residuals or {}).get(job.client))
            for name, p in self.model.named_parameters():
                p.requires_grad_(name in self.trainable_set)
                p.grad = None  # not needed until the next client's first step
            results.append(Result(job.client, len(job.examples), state, loss, dp_steps, train_s, job.start, kept))
        return results

    def _dp_units(self, rows: np.ndarray) -> np.ndarray | None:
        """Each row's privacy unit under DP-SGD by document or patient; None by row or without DP."""
        return self.task.train_units[self.cfg.dp_unit][rows] if self.dp and self.cfg.dp_unit != "row" else None

    def evaluate(self, state: dict, split: str = "test", examples: list[int] | None = None) -> dict:
        t0 = time.perf_counter()
        scores = self._scores(state, split, examples)
        return {**scores, "eval_s": time.perf_counter() - t0}

    def predict(self, state: dict, split: str, examples: list[int]) -> dict:
        """Encoded row -> prediction for these examples' rows (scored by whoever holds the task)."""
        load_state(self.model, state)
        data: Split = getattr(self.task, split)
        rows = data.rows(examples).tolist()
        return dict(
            zip(
                rows,
                predict(
                    self.model,
                    data.encoded,
                    rows,
                    kind=self.task.kind,
                    pad_id=self.task.pad_id,
                    before_forward=self._feeder(split),
                    device=self.device,
                ),
            )
        )

    def predict_batch(self, requests: list[tuple[int, str, list]], *states: dict) -> list[tuple[dict, float]]:
        """Several predictions in one call, with the seconds each took."""
        out = []
        for i, split, examples in requests:
            t0 = time.perf_counter()
            out.append((self.predict(states[i], split, examples), time.perf_counter() - t0))
        return out

    def _scores(self, state: dict, split: str, examples: list[int] | None) -> dict:
        examples = all_examples(self.task, split, examples)
        return score_predictions(self.task, split, examples, self.predict(state, split, examples))
