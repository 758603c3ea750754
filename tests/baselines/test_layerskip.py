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


def test_gpt2_blocks_are_found_by_the_same_rule_and_its_embeddings_are_not_one_stage():
    """GPT-2 (built from a config, no weights): blocks `transformer.h`, embeddings `wte` and
    `wpe` beside them, so neither the prefix cache nor frozen_mode's embedding stage applies."""
    from transformers import GPT2Config, GPT2ForTokenClassification

    from bench.engine.prefix_cache import cache_plan

    model = GPT2ForTokenClassification(GPT2Config(n_layer=3, n_embd=32, n_head=2, vocab_size=100, num_labels=3))
    layers = discover_layers(model)
    assert (layers.block_prefix, layers.n_blocks) == ("transformer.h", 3)
    assert layers.embeddings == ("transformer.wte.weight", "transformer.wpe.weight")
    assert layers.embedding_stage() is None
    cfg = ExperimentConfig(task="i2b2-2010", method="layerskip", layers="top:1", frozen_mode="eval")
    model = METHODS.get("layerskip")(cfg).configure(model, layers)
    assert cache_plan(model, layers) == (None, "embedding stage is not one module")
    assert not model.transformer.h[0].training and model.transformer.h[2].training  # frozen blocks only
    assert model.transformer.drop.training  # the embedding dropout is no block's: it stays (README)


def test_every_method_is_registered():
    assert set(METHODS.names()) >= {"centralized", "local", "fedavg", "fedprox", "lora", "layerskip"}


@pytest.mark.parametrize("spec, frozen", [("bottom:1", [1]), ("list:0", [1]), ("top:1", [0])])
def test_frozen_mode_eval_keeps_frozen_blocks_and_embeddings_out_of_dropout(spec, frozen):
    """With the model in training mode, frozen_mode eval runs every frozen block and the
    embeddings in eval mode (train: in training mode), trained blocks in training mode; and the
    part below the lowest trained block gives the same output on two passes over one input under
    eval and different ones under train (dropout acts there)."""
    import torch

    def passes(mode: str) -> tuple[dict, dict]:
        cfg = ExperimentConfig(task="i2b2-2010", method="layerskip", layers=spec, model="tiny-bert", frozen_mode=mode)
        model, _ = build_model("tiny-bert", "ner", 3, seed=0)
        layers = discover_layers(model)
        model = METHODS.get("layerskip")(cfg).configure(model, layers)
        blocks = model.get_submodule(layers.block_prefix)
        watched = {"embeddings": model.get_submodule(layers.embedding_stage())} | {str(b): blocks[b] for b in range(2)}
        training, outs = {}, {}

        def hook(name):
            def record(module, _args, out):
                training[name] = any(m.training for m in module.modules())
                outs.setdefault(name, []).append(out[0] if isinstance(out, tuple) else out)

            return record

        for name, module in watched.items():
            module.register_forward_hook(hook(name))
        model.train()
        ids = torch.randint(5, 90, (2, 12), generator=torch.Generator().manual_seed(0))
        for _ in range(2):
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        return training, {name: torch.equal(*pair) for name, pair in outs.items()}

    assert model_dropout_is_on()
    (eval_training, eval_same), (train_training, train_same) = passes("eval"), passes("train")
    for name in ["embeddings", *map(str, frozen)]:
        assert not eval_training[name] and train_training[name]
    for b in (b for b in range(2) if b not in frozen):
        assert eval_training[str(b)] and train_training[str(b)]
    below = ["embeddings", *(str(b) for b in frozen if b == 0)]  # nothing trained beneath them
    assert all(eval_same[n] and not train_same[n] for n in below)


def model_dropout_is_on() -> bool:
    model, _ = build_model("tiny-bert", "ner", 3, seed=0)
    return model.config.hidden_dropout_prob > 0


def test_frozen_mode_eval_is_layerskip_only():
    with pytest.raises(BenchError, match="frozen_mode eval applies to layerskip only"):
        ExperimentConfig(task="i2b2-2010", method="fedavg", frozen_mode="eval")
    with pytest.raises(BenchError, match="frozen_mode eval with client_budgets is not supported"):
        ExperimentConfig(task="i2b2-2010", method="layerskip", frozen_mode="eval", client_budgets="by-size")
