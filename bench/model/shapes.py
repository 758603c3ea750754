"""A model's shape (blocks, parameters, width) without loading its weights: for cost plans.

The model is built from its config on PyTorch's `meta` device, so even a 1B model costs no
memory. A hub id that is not in the local cache is planned with a stated stand-in of the same
architecture (e.g. LLaMA-3.2-1B -> `llama16-random`), and the plan says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from bench.errors import BenchError
from bench.model.build import source_for
from bench.model.layers import discover_layers

STAND_INS = {"meta-llama/Llama-3.2-1B": "llama16-random", "Llama-3.2-1B": "llama16-random"}


@dataclass(frozen=True)
class ModelShape:
    spec: str
    n_blocks: int
    block_params: int  # one block's parameters (the stack is uniform)
    embedding_params: int
    head_params: int  # everything above the blocks: final norm, pooler, task head
    hidden: int
    note: str = ""  # e.g. which stand-in was planned with
    family: str = ""  # the architecture (transformers' model_type: llama, bert, ...)

    @property
    def compute_params(self) -> int:
        """Parameters every token's forward pass multiplies through (embeddings are a lookup)."""
        return self.n_blocks * self.block_params + self.head_params

    @property
    def total_params(self) -> int:
        return self.compute_params + self.embedding_params


def meta_model(spec: str, kind: str, num_labels: int, dtype: torch.dtype | None = None):
    """The model `spec` builds, on the meta device (no memory), in `dtype` (default float32)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    source = source_for(spec)
    tokenizer = source.tokenizer()
    if source.pretrained is not None:
        path, kwargs = source.pretrained()
        config = AutoConfig.from_pretrained(path, **kwargs)
    else:
        config = source.config(tokenizer)
    config.num_labels = num_labels
    auto = AutoModelForTokenClassification if kind == "ner" else AutoModelForSequenceClassification
    with torch.device("meta"):
        return auto.from_config(config, **({"dtype": dtype} if dtype is not None else {}))


@functools.cache
def model_shape(spec: str, kind: str = "ner", num_labels: int = 3) -> ModelShape:

    note = ""
    try:
        model = meta_model(spec, kind, num_labels)
    except BenchError:
        if spec not in STAND_INS:
            raise
        note = f"{spec} is not cached here: planned with {STAND_INS[spec]}, its shape"
        model = meta_model(STAND_INS[spec], kind, num_labels)
    layers = discover_layers(model)
    sizes = dict((n, p.numel()) for n, p in model.named_parameters())
    block = sum(sizes[n] for n in layers.block_params(model, 0))
    return ModelShape(
        spec,
        layers.n_blocks,
        block,
        sum(sizes[n] for n in layers.embeddings),
        sum(sizes[n] for n in layers.head),
        int(getattr(model.config, "hidden_size", 0)),
        note,
        str(getattr(model.config, "model_type", "")),
    )
