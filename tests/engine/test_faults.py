"""Faults: bad updates rejected, dropouts and stragglers, a killed Ray worker, divergence."""

import pytest
import torch

import bench.engine.worker as worker_module
from bench.engine.faults import screen_updates
from bench.engine.server import run_experiment
from bench.engine.training import Diverged
from bench.federation.comm import Result
from tests.tiny import rounds, tiny_config


def cfg(corpus, **kw):
    return tiny_config(corpus, **{"clients": 4, "rounds": 2, "cpus_per_worker": 1, **kw})


def test_screen_rejects_nan_and_outliers():
    start = {"global": {"w": torch.zeros(3)}}
    ok = [Result(c, 10, {"w": torch.full((3,), 0.1 * (c + 1))}, 0.0) for c in range(3)]
    nan = Result(3, 10, {"w": torch.tensor([0.0, float("nan"), 0.0])}, 0.0)
    huge = Result(4, 10, {"w": torch.full((3,), 100.0)}, 0.0)
    kept, rejected = screen_updates(ok + [nan, huge], start)
    assert [r.client for r in kept] == [0, 1, 2]
    assert rejected[3] == "non-finite values" and "median" in rejected[4]


def test_dropout_and_stragglers_are_recorded_and_weighted(tiny_corpus, tmp_path):
    run_experiment(
        cfg(tiny_corpus, dropout=0.3, straggler_frac=0.3, rounds=3, backend="serial"), tmp_path, progress=False
    )
    lines = rounds(tmp_path)
    one_client_bytes = None
    for line in lines:
        absent = set(line["dropped"]) | set(line["stragglers"])
        assert not absent & set(line["clients"])
        if line["clients"]:  # a straggler's upload travelled too, only late: it counts (#24)
            one_client_bytes = line["bytes_up"] // (len(line["clients"]) + len(line["stragglers"]))
            assert line["bytes_up"] == one_client_bytes * (len(line["clients"]) + len(line["stragglers"]))
            assert line["bytes_down"] == one_client_bytes * (4 - len(line["dropped"]))  # stragglers got the model
    assert any(line["dropped"] or line["stragglers"] for line in lines)


def test_killed_ray_worker_gives_same_result(tiny_corpus, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    reference = run_experiment(cfg(tiny_corpus, backend="serial"), tmp_path / "serial", progress=False)
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("BENCH_CHAOS_KILL", f"1:2:{marker}")  # round index 1, client 2: the process exits
    try:
        faulted = run_experiment(cfg(tiny_corpus, backend="ray", workers=2), tmp_path / "ray", progress=False)
    finally:
        ray.shutdown()
    assert marker.exists(), "the fault was not injected"
    assert faulted["metric"] == reference["metric"]
    assert all(not line["lost"] for line in rounds(tmp_path / "ray"))


def test_diverged_run_is_marked(tiny_corpus, tmp_path, monkeypatch):
    calls = []
    original = worker_module.Worker._scores

    def diverge_in_round_two(self, *args):
        calls.append(1)
        if len(calls) == 4:  # the untrained model's validation, round 1's validation and test; round 2's diverges
            raise Diverged("non-finite logits in evaluation")
        return original(self, *args)

    monkeypatch.setattr(worker_module.Worker, "_scores", diverge_in_round_two)
    final = run_experiment(cfg(tiny_corpus, backend="serial", rounds=3), tmp_path, progress=False)
    assert final["status"] == "diverged" and final["metric"] is None and final["rounds"] == 1


@pytest.mark.parametrize("level", [None, "client"], ids=["no-dp", "client-level-dp"])
def test_client_level_dp_rejects_no_finite_update_for_its_norm(tiny_corpus, tmp_path, monkeypatch, level):
    """A fourth update 100x the others' norm is an outlier, rejected without DP (the control).
    Under client-level DP it is clipped and kept: rejecting it by the median of the others' raw
    norms would make one client's inclusion depend on the others' data beyond the clip the
    noise is sized for, and the reason would record raw norms."""
    from bench.engine import arrivals, faults

    calls = []

    def scripted(state, start):
        calls.append(1)
        return 100.0 if len(calls) % 4 == 0 else 1.0

    monkeypatch.setattr(faults, "update_norm", scripted)
    monkeypatch.setattr(arrivals, "update_norm", scripted)  # the streamed path takes norms as updates arrive
    dp = {"dp_level": "client", "noise_multiplier": 1.0} if level else {}
    run_experiment(cfg(tiny_corpus, rounds=1, backend="serial", train_subsample=40, **dp), tmp_path, progress=False)
    (line,) = rounds(tmp_path)
    assert calls and (line.get("rejected") or {}) == ({} if level else {"3": line["rejected"]["3"]})


def test_without_the_outlier_screen_a_non_finite_update_is_still_rejected():
    """README: under client-level DP the screen "rejects only non-finite updates": the outlier
    (100x the median) stays, the NaN and the Inf go, as they do with the screen on."""
    from bench.engine.faults import screen_norms

    norms = {0: 1.0, 1: 1.1, 2: float("nan"), 3: 100.0, 4: float("inf")}
    assert set(screen_norms(norms, outliers=False)) == {2, 4}
    assert set(screen_norms(norms, outliers=True)) == {2, 3, 4}  # the control: the screen on takes the outlier too
