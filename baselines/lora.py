"""`lora`: LoRA-FL. Low-rank adapters (Hu et al. 2021, via PEFT) plus the task head train and
move; FedAvg of the adapter matrices, as in FedIT (Zhang et al. 2024). Target modules are PEFT's
per-architecture defaults (BERT query/value, LLaMA q_proj/v_proj, GPT-2 c_attn).
"""

from __future__ import annotations

from baselines.base import Method, register


@register("lora")
class LoRA(Method):
    default_lr = 1e-3  # single runs only; the quick grid's validation sweep chose 1e-2 on i2b2-2010 (tuned/quick.yaml)
    added_param_markers = ("lora_", "original_module")  # the adapters, and PEFT's frozen copy of the head

    def configure(self, model, layers):
        from peft import LoraConfig, TaskType, get_peft_model

        # For these task types PEFT trains (and we send) the head too: `classifier` / `score`.
        token_level = "TokenClassification" in type(model).__name__
        config = LoraConfig(
            task_type=TaskType.TOKEN_CLS if token_level else TaskType.SEQ_CLS,
            r=self.cfg.lora_rank,
            lora_alpha=self.cfg.lora_alpha,
            lora_dropout=0.0,
        )
        return get_peft_model(model, config)

    def describe(self):
        return {"lora_rank": self.cfg.lora_rank, "lora_alpha": self.cfg.lora_alpha}

    def train_flops_per_token(self, shape):
        # the backward pass still carries activation gradients through every block; weight
        # gradients only for the (negligible) adapters
        return 4.0 * shape.compute_params

    def trainable_params(self, shape):
        targets_per_block = 2  # query/value (BERT) or q_proj/v_proj (LLaMA), PEFT's defaults
        return shape.n_blocks * targets_per_block * self.cfg.lora_rank * 2 * shape.hidden + shape.head_params
