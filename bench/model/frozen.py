"""Frozen parts in eval mode: layerskip's `frozen_mode: eval`.

A frozen block then behaves as a fixed feature extractor whatever mode the model is in: no
dropout acts inside it while the blocks around it train. That is what the frozen-prefix cache
computes (its rows come from the frozen part in eval mode), so with it the cache changes speed
only, and top:k (cached) and bottom:k (frozen blocks above the trained ones, never cached) train
under one rule. A decoder like LLaMA has no dropout in its blocks, so there the two modes
agree. GPT-2 applies its embedding dropout in the model itself, not in a module of its own, so
that one stays under either mode.
"""

from __future__ import annotations

from torch import nn

from bench.model.layers import LayerMap


def frozen_modules(model: nn.Module, layers: LayerMap, trained_blocks) -> list[nn.Module]:
    """Every block that does not train, and the embedding stage where it is one module."""
    blocks, trained = model.get_submodule(layers.block_prefix), set(trained_blocks)
    frozen = [blocks[b] for b in range(layers.n_blocks) if b not in trained]
    stage = layers.embedding_stage()
    return ([model.get_submodule(stage)] if stage else []) + frozen


def _stay_in_eval(module: nn.Module, _args) -> None:
    if module.training:  # model.train() set it back: every forward undoes that first
        module.eval()


def keep_in_eval(modules: list[nn.Module]) -> None:
    for module in modules:
        module.register_forward_pre_hook(_stay_in_eval)
        module.eval()
