"""The floor for a comparison workload: the same training and scoring work as the suite's run,
with the same processes and threads, and no federated engine around it.

    python -m bench.compare.floor --workload A [--train-subsample N] [--workers W] RESULT.json

Each of W processes (one torch thread each: the suite's default here) builds the model once; per
round the parent hands each process its share of the round's clients (the suite's selection,
data, seeds and training loop, bench.engine.training), gets the trained tensors back through
shared memory, averages them as the suite does (bench.federation.aggregate), and scores
validation (before round 1 and after every round), test (the best validation round's state,
and the last one's where they differ) and every client's held-out slice, cut across the
processes, as the suite does. For memory it does what any script can and the suite does: its
processes fork from the suite's fork server (imports preloaded and frozen), drop gradients and give
freed heap back after each call and round (bench.engine.heap), the parent builds no model (a
process sends the start state) and adds each update to the mean as it comes back (RunningMean);
so it is a floor for memory as well as time (at 80 sentences of workload A the first three took
its peak from 3,051 MB to 2,029, the suite's 2,045; full workloads: docs/PERFORMANCE.md). No
checkpoints, screening, byte accounting, retries or logs: whatever the suite takes beyond this
is its engine's overhead (docs/PERFORMANCE.md). Nor a prefix cache: on C, whose frozen blocks
the suite caches, the floor recomputes them, so suite / floor there is not the engine's overhead
(the targets are on A and B, where nothing is frozen). It recomputes them in eval mode, as the
suite's cache computed them, so both train the same model (dropout acts only above the prefix).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.compare.workloads import WORKLOADS
from bench.config import ExperimentConfig
from bench.engine import execution, fork_server, heap
from bench.engine.prefix_cache import cache_plan
from bench.engine.prepare import prepare_task
from bench.engine.sampling import sample_clients
from bench.engine.scoring import all_examples, score_predictions
from bench.engine.training import predict, train_local
from bench.engine.worker import client_seed
from bench.federation.aggregate import RunningMean
from bench.federation.comm import detach_state, load_state, state_sha256
from bench.model.build import build_model
from bench.model.frozen import frozen_modules, keep_in_eval
from bench.model.layers import discover_layers
from bench.registry import METHODS

STATE: dict = {}  # in each process: the config, the task, the model and the names that train


def _setup(cfg_dict: dict, task) -> None:
    cfg = ExperimentConfig(**cfg_dict)
    torch.set_num_threads(cfg.threads_per_worker)  # as the suite's workers
    model, _ = build_model(cfg.model, task.kind, len(task.output_labels), cfg.seed, cfg.dtype)
    layers = discover_layers(model)
    model = METHODS.get(cfg.method)(cfg).configure(model, layers)
    STATE.update(cfg=cfg, task=task, model=model, trained=[n for n, p in model.named_parameters() if p.requires_grad])
    if cfg.prefix_cache != "off":  # the part the suite's cache computes in eval mode, kept in eval mode here
        keep_in_eval(frozen_prefix(model, layers))


def frozen_prefix(model, layers) -> list:
    """The modules the suite's prefix cache stands in for (the embeddings and the frozen blocks
    below the lowest trained one), or none where it does not apply."""
    k, _ = cache_plan(model, layers)
    return [] if k is None else frozen_modules(model, layers, trained_blocks=range(k, layers.n_blocks))


def _shared(state: dict) -> dict:
    """The tensors in shared memory: they cross to and from the pool without being copied."""
    return {name: tensor.share_memory_() for name, tensor in state.items()}


def _start_state() -> dict:
    state = _shared(detach_state(STATE["model"], STATE["trained"]))
    heap.trim()
    return state


def _train(state: dict, client: int, round_: int) -> tuple[int, dict]:
    """(client, its trained tensors)."""
    cfg, task, model = STATE["cfg"], STATE["task"], STATE["model"]
    load_state(model, state)
    examples = task.clients[client]
    train_local(
        model,
        task.train.encoded,
        task.train.rows(examples),
        kind=task.kind,
        pad_id=task.pad_id,
        epochs=cfg.local_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_ratio=cfg.warmup_ratio,
        seed=client_seed(cfg.seed, client, round_),
    )
    update = _shared(detach_state(model, STATE["trained"]))
    for p in model.parameters():
        p.grad = None  # not needed until the next client's first step, as the suite's worker drops them
    heap.trim()  # the optimizer, gradients and activations just freed: as the suite's workers after a call
    return client, update


def _train_job(job: tuple) -> tuple[int, dict]:
    return _train(*job)


def _predict(state: dict, split: str, examples: list[int]) -> dict:
    task = STATE["task"]
    load_state(STATE["model"], state)
    data = getattr(task, split)
    rows = data.rows(examples).tolist()
    preds = dict(zip(rows, predict(STATE["model"], data.encoded, rows, kind=task.kind, pad_id=task.pad_id)))
    heap.trim()
    return preds


def _cut(pool, state: dict, split: str, examples: list[int], workers: int) -> dict:
    """Predictions for `examples`, one share per process."""
    preds: dict = {}
    shares = np.array_split(np.asarray(examples, dtype=np.int64), workers)
    for part in pool.starmap(_predict, [(state, split, s.tolist()) for s in shares if len(s)], chunksize=1):
        preds.update(part)
    return preds


def _score(pool, task, state: dict, split: str, workers: int) -> float:
    examples = all_examples(task, split, None)
    return score_predictions(task, split, examples, _cut(pool, state, split, examples, workers))["metric"]


def _own_scores(pool, task, state: dict, workers: int) -> list[float]:
    """Each client's score on its held-out slice, as the suite reports at the end."""
    every = [int(e) for h in task.holdouts for e in h]
    preds = _cut(pool, state, "train", every, workers)
    return [score_predictions(task, "train", h.tolist(), preds)["metric"] for h in task.holdouts]


def run(workload: str, subsample: int | None, workers: int | None) -> dict:
    w = WORKLOADS[workload]
    cfg = w.config(subsample)
    cfg = execution.choose(cfg) if workers is None else cfg.with_settings(workers=workers, cpus_per_worker=None)
    workers = cfg.workers  # the suite's default processes and threads, unless asked
    fork_server.warm_up()  # its imports overlap the corpus's loading, as the suite's server starts it
    task = prepare_task(cfg)
    ctx = fork_server.context()  # the suite's: its preloaded, frozen imports shared by the processes
    with ctx.Pool(workers, initializer=_setup, initargs=(cfg.to_dict(), task)) as pool:
        state = pool.apply(_start_state)  # from a process, as the suite's server asks a worker: no model here
        val = [_score(pool, task, state, "validation", workers)]
        best = None  # (validation metric, state) of the best trained round: what the suite reports
        for round_ in range(cfg.rounds):  # 0-based, as the suite's rounds draw clients and seeds
            clients = sample_clients(cfg, round_)
            # the suite's mean (by examples, fp32, client order), each update added as it comes back and
            # dropped, as the suite's server does, not all of a round's held at once
            mean = RunningMean({int(c): len(task.clients[c]) for c in clients})
            for client, update in pool.imap_unordered(_train_job, [(state, c, round_) for c in clients]):
                mean.add(int(client), update)
                del update
            state = _shared(mean.result())
            del mean
            heap.trim()  # the clients' states are gone, as the suite's server does each round
            val.append(_score(pool, task, state, "validation", workers))
            if best is None or val[-1] > best[0]:
                best = (val[-1], state)
        test = _score(pool, task, best[1], "test", workers)
        last = test if best[1] is state else _score(pool, task, state, "test", workers)  # the suite's metric_last
        own = _own_scores(pool, task, best[1], workers)
    return {
        "val_per_round": val,
        "metric": test,
        "metric_last": last,
        "per_client": own,
        "workers": workers,
        "state_sha256": state_sha256(state),  # the last round's, as the suite's checkpoint holds it
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--train-subsample", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="default: the suite's default on this machine")
    parser.add_argument("result")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    found = run(args.workload, args.train_subsample, args.workers)
    found["wall_s"] = round(time.perf_counter() - start, 2)
    with open(args.result, "w") as f:
        json.dump(found, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
