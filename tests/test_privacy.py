"""DP: honest epsilon (recomputed with Opacus), every method with DP, client-level DP, resume."""

import pytest
import torch

import bench.engine.server as server
from bench.config import ExperimentConfig
from bench.engine.server import run_experiment
from bench.errors import BenchError
from bench.privacy import DpPlan, clip_update, dp_fedavg, epsilon_of


def cfg(corpus, **kw):
    base = dict(task="i2b2-2010", method="layerskip", model="tiny-bert", clients=2, rounds=2, max_length=32,
                data_dir=str(corpus / "i2b2-2010"), backend="serial")  # fmt: skip
    return ExperimentConfig(**{**base, **kw})


def test_calibrated_epsilon_is_tight_and_recomputable(tiny_corpus, tmp_path):
    from opacus.accountants import RDPAccountant

    final = run_experiment(cfg(tiny_corpus, dp_epsilon=2.0, rounds=3), tmp_path, progress=False)
    assert final["epsilon"] <= 2.0 and final["epsilon"] >= 0.9 * 2.0
    for history in final["dp"]["accountants"].values():  # recompute from noise, rate and steps
        accountant = RDPAccountant()
        accountant.history = [tuple(h) for h in history]
        assert accountant.get_epsilon(1e-5) <= final["epsilon"] + 1e-9
    worst = max(epsilon_of([tuple(h) for h in hs], 1e-5) for hs in final["dp"]["accountants"].values())
    assert worst == pytest.approx(final["epsilon"])
    rounds = [x for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert len(rounds) == 3 and '"epsilon": ' in rounds[0]


@pytest.mark.parametrize("model", ["tiny-llama", "minilm"])
@pytest.mark.parametrize("method", ["fedavg", "fedprox", "layerskip", "lora"])
def test_dp_runs_for_every_method(tiny_corpus, tmp_path, model, method):
    final = run_experiment(cfg(tiny_corpus, method=method, model=model, rounds=1, noise_multiplier=1.0), tmp_path, progress=False)
    assert final["status"] == "ok" and final["epsilon"] > 0
    assert final["dp"]["noise_multiplier"] == 1.0


def test_client_level_dp(tiny_corpus, tmp_path):
    final = run_experiment(cfg(tiny_corpus, method="fedavg", dp_level="client", dp_epsilon=8.0, rounds=2, clients=4),
                           tmp_path, progress=False)  # fmt: skip
    assert 0.9 * 8.0 <= final["epsilon"] <= 8.0
    assert list(final["dp"]["accountants"]) == ["server"]
    with pytest.raises(BenchError, match="client-level DP needs a federated method"):
        run_experiment(cfg(tiny_corpus, method="centralized", dp_level="client", noise_multiplier=1.0), tmp_path / "x", progress=False)


def test_dp_fedavg_clips_and_averages_by_hand():
    start = {"w": torch.zeros(2)}
    states = [{"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([0.3, 0.4])}]  # norms 5 and 0.5
    assert torch.allclose(clip_update({"w": torch.tensor([3.0, 4.0])}, 1.0)["w"], torch.tensor([0.6, 0.8]))
    plan = DpPlan("client", noise_multiplier=1e-12, max_grad_norm=1.0, delta=1e-5, target_epsilon=None)
    out = dp_fedavg(start, states, plan, expected_clients=2, seed=0)
    assert torch.allclose(out["w"], torch.tensor([0.45, 0.6]), atol=1e-6)  # (0.6+0.3)/2, (0.8+0.4)/2


def test_resume_after_crash_gives_same_epsilon_and_metrics(tiny_corpus, tmp_path, monkeypatch):
    config = cfg(tiny_corpus, dp_epsilon=4.0, rounds=3)
    whole = run_experiment(config, tmp_path / "whole", progress=False)
    original, calls = server.write_rounds, []

    def crash_after_two(path, history):
        original(path, history)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between rounds would
    monkeypatch.setattr(server, "write_rounds", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(server, "write_rounds", original)
    resumed = run_experiment(config, tmp_path / "resumed", progress=False)
    assert resumed["epsilon"] == whole["epsilon"] and resumed["metric"] == whole["metric"]
    assert (tmp_path / "whole/rounds.jsonl").read_text().count("\n") == 3
