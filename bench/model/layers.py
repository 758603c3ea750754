"""Finding the transformer blocks of any HF model, and the layer specs that pick among them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from bench.errors import BenchError


@dataclass(frozen=True)
class LayerMap:
    """A model's parameters grouped as embeddings (below the blocks), blocks, and head (above)."""

    block_prefix: str  # e.g. "bert.encoder.layer" or "model.layers"
    n_blocks: int
    embeddings: tuple[str, ...]
    head: tuple[str, ...]

    def block_params(self, model: nn.Module, index: int) -> list[str]:
        prefix = f"{self.block_prefix}.{index}."
        return [n for n, _ in model.named_parameters() if n.startswith(prefix)]

    def embedding_stage(self) -> str | None:
        """The one module that holds every embedding parameter (BERT's `bert.embeddings`,
        LLaMA's `model.embed_tokens`), or None where the model spreads them (GPT-2's `wte` and
        `wpe`, whose sum the model itself drops out)."""
        modules = sorted({n.rsplit(".", 1)[0] for n in self.embeddings})
        stage = modules[0] if len(modules) == 1 else _common_prefix(modules)
        if not stage or self.block_prefix.startswith(stage + "."):
            return None
        return stage


def _common_prefix(names: list[str]) -> str:
    parts = [n.split(".") for n in names]
    prefix = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        prefix.append(level[0])
    return ".".join(prefix)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def discover_layers(model: nn.Module) -> LayerMap:
    """The biggest ModuleList of same-typed modules is the stack of blocks.

    That holds for BERT (`bert.encoder.layer`), LLaMA (`model.layers`), GPT-2 (`transformer.h`)
    and most other HF architectures. Parameters registered before the blocks are embeddings,
    those after are the head (pooler, final norm, classifier), in registration order.
    """
    stacks = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and len({type(m) for m in mod}) == 1
    ]
    if not stacks:
        raise BenchError(f"no transformer blocks found in {type(model).__name__}")
    prefix, blocks = max(stacks, key=lambda s: _params(s[1]))
    names = [n for n, _ in model.named_parameters()]
    in_blocks = [i for i, n in enumerate(names) if n.startswith(prefix + ".")]
    first, last = in_blocks[0], in_blocks[-1]
    return LayerMap(prefix, len(blocks), tuple(names[:first]), tuple(names[last + 1 :]))


LAYER_SPEC = re.compile(r"^(top|bottom|every):(\d+)$|^list:(\d+(?:,\d+)*)$")


def parse_layer_spec(spec: str, n_blocks: int) -> list[int]:
    """Block indices (0 = nearest the embeddings) for `top:K`, `bottom:K`, `list:a,b`, `every:N`.

    `every:N` counts down from the top block, so it always includes the top one.
    """
    if spec.startswith("auto:"):
        raise BenchError(f"layer spec {spec!r} is resolved by the federated probe before training (method layerskip)")
    m = LAYER_SPEC.match(spec)
    if not m:
        raise BenchError(f"bad layer spec {spec!r}: expected top:K, bottom:K, list:a,b,... or every:N")
    if m.group(3):
        chosen = sorted({int(x) for x in m.group(3).split(",")})
        if chosen[-1] >= n_blocks:
            raise BenchError(f"layer spec {spec!r}: block {chosen[-1]} does not exist (model has {n_blocks})")
        return chosen
    kind, k = m.group(1), int(m.group(2))
    if not 1 <= k <= n_blocks:
        raise BenchError(f"layer spec {spec!r}: K must be between 1 and {n_blocks} for this model")
    if kind == "top":
        return list(range(n_blocks - k, n_blocks))
    if kind == "bottom":
        return list(range(k))
    return sorted(range(n_blocks - 1, -1, -k))


def default_layer_spec(n_blocks: int) -> str:
    """Half the blocks on deep models (8 of 16, the paper's choice), two on small ones."""
    return f"top:{n_blocks // 2}" if n_blocks >= 12 else f"top:{min(2, max(1, n_blocks - 1))}"
