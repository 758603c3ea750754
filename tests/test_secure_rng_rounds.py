"""Under --secure-rng every DP-SGD training the server sees is a release the accountant counts.

README (DP, --secure-rng): the noise comes from OS entropy, so a second training of the same
client in the same round is a second, independently noised release of its data. The streamed
aggregate (bench.engine.arrivals.streams) retrains the kept clients when one is rejected or
lost; with fresh noise that would hand the server releases the accountant never recorded, so
secure-rng rounds hold their updates instead and train each client once.
"""

from __future__ import annotations

import json
from collections import Counter

from bench.engine import arrivals, faults
from bench.engine import worker as worker_module
from bench.engine.server import run_experiment
from tests.tiny import rounds, tiny_config

ROUNDS = 1


def test_a_rejected_client_under_secure_rng_releases_nothing_the_accountant_missed(tiny_corpus, tmp_path, monkeypatch):
    """Three DP-SGD clients with OS-entropy noise; screening rejects client 1's update in each
    round. Every DP-SGD training must be one accountant entry (a retrained kept client would be
    an unaccounted release), and each client's upload must reach the server once per round."""
    original_screen = faults.screen_norms

    def screen_norms(norms, outliers=True):  # client 1's update is rejected in every round
        return {**original_screen(norms, outliers), **({1: "non-finite values"} if 1 in norms else {})}

    monkeypatch.setattr(faults, "screen_norms", screen_norms)
    trainings, uploads, current = [], Counter(), {}

    original_train_local = worker_module.train_local

    def train_local(*args, **kwargs):
        trainings.append(kwargs.get("dp") is not None)
        return original_train_local(*args, **kwargs)

    original_worker_train = worker_module.Worker.train

    def worker_train(self, states, jobs, round_, *args, **kwargs):
        current["round"] = round_  # the serial backend hands these results to the server next
        return original_worker_train(self, states, jobs, round_, *args, **kwargs)

    original_arrive = arrivals.Arrivals.__call__

    def arrive(self, res):
        uploads[(current["round"], res.client)] += 1
        return original_arrive(self, res)

    monkeypatch.setattr(worker_module, "train_local", train_local)
    monkeypatch.setattr(worker_module.Worker, "train", worker_train)
    monkeypatch.setattr(arrivals.Arrivals, "__call__", arrive)

    cfg = tiny_config(
        tiny_corpus,
        clients=3,
        rounds=ROUNDS,
        backend="serial",
        train_subsample=30,
        val_subsample=20,
        test_every=0,
        noise_multiplier=1.0,
        secure_rng=True,
    )
    run_experiment(cfg, tmp_path, progress=False)

    lines = rounds(tmp_path)
    rejected = [list(line["rejected"]) for line in lines]
    assert rejected == [["1"]] * ROUNDS  # the forced rejection happened, in every round
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["secure_rng"] is True
    entries = sum(len(history) for history in final["dp"]["accountants"].values())
    assert trainings and all(trainings)  # every local training was DP-SGD
    assert len(trainings) == entries == ROUNDS * 3  # one accounted release per client per round, none more
    assert uploads == {(r, c): 1 for r in range(ROUNDS) for c in range(3)}
