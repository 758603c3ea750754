"""`layerskip`: layer-skipping federated fine-tuning (Zhang and Li, 2025).

Only the chosen transformer blocks and the task head train and move; embeddings and every other
block stay frozen and never leave the client. Blocks are picked by a layer spec (`top:K`,
`bottom:K`, `list:a,b`, `every:N`); the default is half the blocks on deep models (8 of 16,
the paper's trade-off) and `top:2` on small ones like `minilm`; `auto:K` lets a federated
probe pick them (bench.engine.layer_probe).

With per-client budgets (bench.federation.budgets) a client trains and sends only the top blocks of its
budget, and the server averages each tensor over exactly the clients that sent it.
"""

from __future__ import annotations

from baselines.base import GLOBAL, Job, Method, register
from bench.engine.layer_probe import resolve_auto_layers
from bench.errors import BenchError
from bench.federation.aggregate import weighted_average_partial
from bench.federation.budgets import client_budgets
from bench.model.frozen import frozen_modules, keep_in_eval
from bench.model.layers import default_layer_spec, parse_layer_spec
from bench.model.shapes import model_shape


@register("layerskip")
class LayerSkip(Method):
    # fewer trainable blocks need a larger step; chosen on small synthetic i2b2-2010 (3e-4: F1 0.62, 1e-3: 0.78,
    # 2e-3: 0.66) before the suite had a validation split, so on test. Grids that compare methods tune lr on
    # validation instead (bench.protocol.tuning); this default only serves single runs.
    default_lr = 1e-3
    supports_budgets = True
    secure_aggregable = True  # its own combine, with budgets too, is each tensor's mean over the clients that sent it

    def resolve(self, task):
        if not (self.cfg.layers or "").startswith("auto:"):
            if self.cfg.layers:  # a bad spec is one line here, not a traceback from every worker
                parse_layer_spec(self.cfg.layers, model_shape(self.cfg.model).n_blocks)
            return self.cfg, None
        # the probe reads each client's per-block gradient norms from its private data: outside any
        # DP accountant, and in the clear to the server, which secure aggregation exists to prevent
        guarded = {"differential privacy": self.cfg.private, "secure aggregation": self.cfg.secagg == "on"}
        protections = [name for name, on in guarded.items() if on]
        if protections:
            raise BenchError(
                f"--layers {self.cfg.layers} cannot run under {' and '.join(protections)}: its probe reads "
                "each client's gradient norms unprotected; pick the blocks on public data and pass them as list:..."
            )
        return resolve_auto_layers(self.cfg, task)

    def configure(self, model, layers):
        self.spec = self.cfg.layers or default_layer_spec(layers.n_blocks)
        self.blocks = parse_layer_spec(self.spec, layers.n_blocks)
        trainable = set(layers.head)
        for b in self.blocks:
            trainable.update(layers.block_params(model, b))
        for name, p in model.named_parameters():
            p.requires_grad_(name in trainable)
        if self.cfg.frozen_mode == "eval":
            keep_in_eval(frozen_modules(model, layers, self.blocks))
        return model

    def _planned_blocks(self, n_blocks: int) -> list[int]:
        spec = self.cfg.layers or default_layer_spec(n_blocks)
        return parse_layer_spec("top:" + spec.split(":")[1] if spec.startswith("auto:") else spec, n_blocks)

    def train_flops_per_token(self, shape):
        blocks = self._planned_blocks(shape.n_blocks)
        above_lowest = (shape.n_blocks - min(blocks)) * shape.block_params + shape.head_params
        trained = len(blocks) * shape.block_params + shape.head_params
        # forward everywhere, activation gradients down to the lowest trained block, weight
        # gradients for the trained blocks only (the prefix cache would save part of the forward)
        return 2.0 * shape.compute_params + 2.0 * above_lowest + 2.0 * trained

    def trainable_params(self, shape):
        return len(self._planned_blocks(shape.n_blocks)) * shape.block_params + shape.head_params

    def activation_blocks(self, shape):
        """From the lowest trained block up: below it nothing needs a gradient, so the frozen
        blocks' activations are not kept (top:8 of 16 keeps half; bottom:k keeps every block).
        auto:K's probe may pick any blocks, the lowest included: every block, as an upper bound."""
        if (self.cfg.layers or "").startswith("auto:"):
            return shape.n_blocks
        return shape.n_blocks - min(self._planned_blocks(shape.n_blocks))

    def describe(self):
        return {"layers": self.spec, "blocks": self.blocks}

    def round_jobs(self, clients, sampled):
        budgets = client_budgets(self.cfg.client_budgets, [len(c) for c in clients])
        return [Job(c, clients[c], budget=budgets[c]) for c in sampled]

    @property
    def streams_mean(self) -> bool:
        return self.cfg.client_budgets is None  # with budgets, each tensor's mean is over those who sent it

    def combine(self, states, results):
        if self.cfg.client_budgets is None:
            return super().combine(states, results)
        return {GLOBAL: weighted_average_partial(states[GLOBAL], [(r.n_samples, r.state) for r in results])}
