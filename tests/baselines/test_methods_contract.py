"""Every registered method runs on both tiny architectures, 2 clients, 2 rounds, serial."""

import json

import pytest

from baselines import METHODS
from bench.config import ExperimentConfig
from bench.engine.server import run_experiment


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-llama"])
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs(tiny_corpus, tmp_path, method, model):
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
    assert json.loads((tmp_path / "final.json").read_text())["metric"] == final["metric"]


def test_classification_task_runs(tiny_corpus, tmp_path):
    cfg = ExperimentConfig(
        task="mimic-mortality",
        method="fedavg",
        model="tiny-bert",
        clients=2,
        rounds=1,
        data_dir=str(tiny_corpus / "mimic-iii"),
        backend="serial",
        max_length=64,
    )
    final = run_experiment(cfg, tmp_path, progress=False)
    assert final["metric_name"] == "macro_f1" and "auroc" in final["scores"]
