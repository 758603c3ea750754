"""`layerskip`: layer-skipping federated fine-tuning (Zhang and Li, 2025).

Only the chosen transformer blocks and the task head train and move; embeddings and every other
block stay frozen and never leave the client. Blocks are picked by a layer spec (`top:K`,
`bottom:K`, `list:a,b`, `every:N`); the default is half the blocks on deep models (8 of 16,
the paper's trade-off) and `top:2` on small ones like `minilm`.
"""

from __future__ import annotations

from baselines.base import Method, register
from bench.layers import default_layer_spec, parse_layer_spec


@register("layerskip")
class LayerSkip(Method):
    default_lr = 3e-4  # fewer trainable blocks tolerate (and need) a larger step

    def configure(self, model, layers):
        self.spec = self.cfg.layers or default_layer_spec(layers.n_blocks)
        self.blocks = parse_layer_spec(self.spec, layers.n_blocks)
        trainable = set(layers.head)
        for b in self.blocks:
            trainable.update(layers.block_params(model, b))
        for name, p in model.named_parameters():
            p.requires_grad_(name in trainable)
        return model

    def describe(self):
        return {"layers": self.spec, "blocks": self.blocks}
