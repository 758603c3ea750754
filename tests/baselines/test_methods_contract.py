"""Every registered method runs on both tiny architectures, 2 clients, 2 rounds, serial."""

import json

import pytest

from baselines import METHODS
from bench.config import ExperimentConfig
from bench.engine.server import run_experiment
from tests.tiny import tiny_config


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-llama"])
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs(tiny_corpus, tmp_path, method, model):
    """Every registered method trains, scores and counts bytes; and README: final.json holds "the
    config with the lr used, package versions, git state" (no --lr here: the method's default)."""
    cfg = ExperimentConfig(
        task="i2b2-2010",
        method=method,
        model=model,
        clients=2,
        rounds=2,
        data_dir=str(tiny_corpus / "i2b2-2010"),
        backend="serial",
        max_length=64,
    )
    final = run_experiment(cfg, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [1, 2]
    assert final["status"] == "ok" and 0.0 <= final["metric"] <= 1.0
    assert len(final["per_client"]) == 2 and final["worst_client"] == min(final["per_client"])
    assert 0 < final["trainable_params"] <= final["total_params"]
    moves = METHODS.get(method).communicates
    assert (final["bytes_up_total"] > 0) == moves and (final["bytes_down_total"] > 0) == moves
    stored = json.loads((tmp_path / "final.json").read_text())
    assert stored["metric"] == final["metric"]
    assert stored["config"]["lr"] == METHODS.get(method).default_lr
    assert stored["versions"]["torch"] and stored["git"]["commit"]


def test_classification_task_runs(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, task="mimic-mortality", backend="serial", max_length=64)
    final = run_experiment(cfg, tmp_path, progress=False)
    assert final["metric_name"] == "macro_f1" and "auroc" in final["scores"]


def test_lora_fl_averages_the_adapter_factors_each_on_its_own():
    """FedIT: the server's LoRA state is the sample-weighted mean of each factor (A, B) as sent,
    not of their product: mean(B) @ mean(A) differs from mean(B @ A)."""
    import torch

    from baselines import METHODS
    from baselines.base import GLOBAL
    from bench.config import ExperimentConfig
    from bench.federation.comm import Result
    from bench.model.build import build_model
    from bench.model.layers import discover_layers

    cfg = ExperimentConfig(task="i2b2-2010", method="lora", model="tiny-bert", lora_rank=2)
    method = METHODS.get("lora")(cfg)
    model, _ = build_model("tiny-bert", "ner", 3, seed=0)
    model = method.configure(model, discover_layers(model))
    sent = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in sent) and any("lora_B" in n for n in sent)
    g = torch.Generator().manual_seed(0)
    states = [{n: torch.randn(t.shape, generator=g) for n, t in sent.items()} for _ in range(2)]
    mean = method.combine({}, [Result(c, n, s, 0.0) for c, (n, s) in enumerate(zip((1, 3), states))])[GLOBAL]
    for name in sent:
        assert torch.allclose(mean[name], 0.25 * states[0][name] + 0.75 * states[1][name], atol=1e-6)
    a = next(n for n in sent if "lora_A" in n)
    b = a.replace("lora_A", "lora_B")
    products = 0.25 * states[0][b] @ states[0][a] + 0.75 * states[1][b] @ states[1][a]
    assert not torch.allclose(mean[b] @ mean[a], products, atol=1e-3)
    # clients that disagree (one sends the other's factors negated: the same update B @ A): the
    # mean of their products is that update, the product of the means nothing at all
    opposed = [states[0], {n: -t for n, t in states[0].items()}]
    mean = method.combine({}, [Result(c, 1, s, 0.0) for c, s in enumerate(opposed)])[GLOBAL]
    assert torch.count_nonzero(mean[b] @ mean[a]) == 0 and torch.linalg.norm(states[0][b] @ states[0][a]) > 0
