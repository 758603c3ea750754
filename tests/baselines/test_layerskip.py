"""layerskip trains and sends exactly the chosen blocks plus the head."""

import numpy as np
import pytest

from baselines import METHODS
from bench.config import ExperimentConfig
from bench.engine.prepare import prepare_task
from bench.engine.worker import Worker
from bench.errors import BenchError
from bench.federation.comm import Job, tensor_bytes
from bench.model.build import build_model
from bench.model.layers import discover_layers, parse_layer_spec


def test_top2_on_minilm_is_two_bert_layers_plus_head(tiny_corpus):
    cfg = ExperimentConfig(
        task="i2b2-2010",
        method="layerskip",
        layers="top:2",
        model="minilm",
        clients=2,
        data_dir=str(tiny_corpus / "i2b2-2010"),
        backend="serial",
        max_length=32,
        prefix_cache="off",
    )  # the frozen blocks stay in the model, to be compared
    task = prepare_task(cfg)
    worker = Worker(cfg.to_dict(), task)
    reference, _ = build_model("minilm", "ner", len(task.output_labels), seed=0)
    layer4 = sum(p.numel() for n, p in reference.named_parameters() if n.startswith("bert.encoder.layer.4."))
    layer5 = sum(p.numel() for n, p in reference.named_parameters() if n.startswith("bert.encoder.layer.5."))
    head = reference.classifier.weight.numel() + reference.classifier.bias.numel()
    assert worker.info()["trainable_params"] == layer4 + layer5 + head
    assert worker.info()["total_params"] == sum(p.numel() for p in reference.parameters())
    assert set(worker.trainable) == {
        n
        for n, _ in reference.named_parameters()
        if n.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "classifier."))
    }
    state = worker.initial_state()
    [result] = worker.train({"global": state}, [Job(0, task.clients[0][:8])], round_=0)
    assert tensor_bytes(result.state) == 4 * (layer4 + layer5 + head)  # float32: what one client sends up
    frozen_before = reference.bert.encoder.layer[0].attention.self.query.weight
    frozen_after = dict(worker.model.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    assert frozen_after.detach().equal(frozen_before.detach())  # the frozen part never changed


@pytest.mark.parametrize(
    "spec, expected", [("top:2", [4, 5]), ("bottom:2", [0, 1]), ("list:1,3", [1, 3]), ("every:2", [1, 3, 5])]
)
def test_layer_specs(spec, expected):
    assert parse_layer_spec(spec, 6) == expected


@pytest.mark.parametrize("spec", ["top:0", "top:7", "list:6", "middle:2", "top:x"])
def test_bad_layer_specs(spec):
    with pytest.raises(BenchError):
        parse_layer_spec(spec, 6)


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-llama"])
def test_block_discovery(name):
    model, _ = build_model(name, "ner", 3, seed=0)
    layers = discover_layers(model)
    assert layers.n_blocks == 2
    assert layers.head and all("embed" in n for n in layers.embeddings)
    assert np.all([not n.startswith(layers.block_prefix) for n in layers.head])


def test_every_method_is_registered():
    assert set(METHODS.names()) >= {"centralized", "local", "fedavg", "fedprox", "lora", "layerskip"}
