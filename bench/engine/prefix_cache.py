"""Frozen-prefix activation cache for layer-skipping.

When every trainable parameter lies in block k or above, the embeddings and blocks 0..k-1 are
frozen, so the hidden states entering block k are the same for an example in every round.
They are computed once per row, the first time a batch needs them (the frozen part in eval
mode, inside the run's own first pass over that row: there is no separate cache-building pass,
and rows no client ever reaches are never computed), and kept; from then on training and
evaluation run only blocks k.. and the head. The model's own forward still builds masks, rotary embeddings
and pooling: the embedding module is swapped for one that returns the cached states, and the
frozen blocks for pass-throughs.

Dropout: the uncached model applies dropout inside the frozen blocks while training; the cache
holds their eval-mode (dropout-free) output. With dropout off the two give the same losses to
float tolerance (tested); with dropout on they are different, equally valid, regularisations.
Architectures whose embedding stage is not one module (GPT-2 adds two, then applies dropout)
run uncached.

The states are also kept on disk ($BENCH_CACHE/prefix/), keyed by a hash of the frozen weights,
every row's token ids, k and dtype, so every cell of a grid with the same frozen prefix (seeds,
learning rates, partitions, methods with the same blocks) computes them once; a cell never reads
an entry whose key differs. An entry is written when a worker closes, merged with what other
workers (or cells) wrote under the same key. Least recently used entries are evicted over
BENCH_PREFIX_DISK_MB.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.data.tokenize import Encoded
from bench.engine.training import pad_ids
from bench.model.layers import LayerMap
from bench.store import save_checkpoint


class _StopForward(Exception):
    pass


class CachedInput(nn.Module):
    """Stands in for the embedding module: returns the hidden states set for this batch."""

    def __init__(self):
        super().__init__()
        self.current: torch.Tensor | None = None

    def forward(self, *args, **kwargs):
        return self.current


class PassThrough(nn.Module):
    """Stands in for a frozen block whose output is already in the cache."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def cache_plan(model: nn.Module, layers: LayerMap) -> tuple[int | None, str]:
    """(k, why): the block whose input can be cached, or None and the reason it cannot."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if any(n in trainable for n in layers.embeddings):
        return None, "embeddings train"
    blocks = [b for b in range(layers.n_blocks) if any(n in trainable for n in layers.block_params(model, b))]
    if not blocks or blocks[0] == 0:
        return None, "block 0 trains"
    embedding = layers.embedding_stage()
    if embedding is None:
        return None, "embedding stage is not one module"
    return blocks[0], embedding


DISK_BUDGET_MB = int(os.environ.get("BENCH_PREFIX_DISK_MB", 8192))  # all entries together; oldest used go first


def _save_bounded(entry: Path, hidden: dict) -> None:
    """Write an entry atomically, then evict least recently used entries over the disk budget."""
    save_checkpoint(entry, hidden)
    entries = sorted(entry.parent.glob("*.pt"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in entries)
    for old in entries:
        if total <= DISK_BUDGET_MB << 20 or old == entry:
            continue
        total -= old.stat().st_size
        old.unlink(missing_ok=True)


def _compact(row: torch.Tensor | None) -> torch.Tensor | None:
    """A row that owns exactly its own bytes (an entry written before rows were copies holds
    views of whole padded batches)."""
    if row is None or row.untyped_storage().nbytes() == row.numel() * row.element_size():
        return row
    return row.clone()


class PrefixCache:
    """Hidden states entering block k for every row of the given splits, and the swap-in."""

    def __init__(
        self,
        model: nn.Module,
        layers: LayerMap,
        k: int,
        embedding: str,
        splits: dict[str, Encoded],
        pad_id: int,
        device,
        dtype=torch.float32,
        budget_bytes: int = 4 << 30,
        store: Path | None = None,
    ):
        self.model, self.layers, self.k, self.embedding = model, layers, k, embedding
        self.pad_id, self.device, self.dtype = pad_id, device, dtype
        first = layers.block_params(model, k)[0]  # block k, the first one not cached, takes the batch
        self.compute_dtype = model.get_parameter(first).dtype
        width = model.config.hidden_size
        need = sum(len(ids) for enc in splits.values() for ids in enc.input_ids) * width * torch.finfo(dtype).bits // 8
        if need > budget_bytes:
            raise MemoryError(
                f"prefix cache needs {need / 2**20:.0f} MiB, over the {budget_bytes / 2**20:.0f} MiB budget"
            )
        self.entry = store / f"{self._key(splits)}.pt" if store is not None else None
        self.reused = self.entry is not None and self.entry.is_file()  # an entry existed when this run started
        self.hidden: dict[str, list] = {name: [None] * len(enc) for name, enc in splits.items()}
        if self.reused:
            self._merge(torch.load(self.entry, weights_only=True))
            os.utime(self.entry)  # recently used: evicted last
        self.splits, self.build_s, self.filled = splits, 0.0, 0  # rows computed by this worker, and the seconds
        self.bytes = need
        self._install()
        self._release_if_complete()

    def _key(self, splits: dict[str, Encoded]) -> str:
        """What the cached states depend on, and nothing else: the frozen prefix's weights (which
        name the model), the token ids of every row of every split, k and the cache dtype."""
        digest = hashlib.sha256(f"{self.k}|{self.dtype}|{self.embedding}".encode())
        blocks = f"{self.layers.block_prefix}."
        for name, p in self.model.named_parameters():
            frozen_block = name.startswith(blocks) and int(name[len(blocks) :].split(".")[0]) < self.k
            if name in self.layers.embeddings or frozen_block:
                digest.update(name.encode())
                digest.update(p.detach().float().cpu().numpy().tobytes())
        for name in sorted(splits):
            digest.update(name.encode())
            for ids in splits[name].input_ids:
                digest.update(np.asarray(ids, dtype=np.int64).tobytes())
                digest.update(b"|")
        return digest.hexdigest()[:32]

    def _merge(self, stored: dict) -> None:
        for name, rows in stored.items():
            if name in self.hidden and len(rows) == len(self.hidden[name]):
                self.hidden[name] = [
                    mine if mine is not None else _compact(theirs) for mine, theirs in zip(self.hidden[name], rows)
                ]

    def held_bytes(self) -> int:
        """The bytes the cached rows really hold: each distinct storage once, so a row that is a
        view of a larger tensor counts all of it."""
        storages = {}
        for rows in self.hidden.values():
            for row in rows:
                if row is not None:
                    storage = row.untyped_storage()
                    storages[storage.data_ptr()] = storage.nbytes()
        return sum(storages.values())

    def save(self) -> None:
        """Write what this worker computed into the disk entry (merged with what is there)."""
        if self.entry is None or not self.filled:
            return
        if self.entry.is_file():
            self._merge(torch.load(self.entry, weights_only=True))
        _save_bounded(self.entry, self.hidden)

    def _fill(self, split: str, rows: list[int]) -> None:
        """Compute the missing rows through the real frozen prefix (swapped back in for it)."""
        start = time.perf_counter()
        self._uninstall()
        try:
            encoded = self.splits[split]
            states = self._compute(Encoded([encoded.input_ids[r] for r in rows], []))
        finally:
            self._install()
        for r, state in zip(rows, states):
            self.hidden[split][r] = state
        self.build_s += time.perf_counter() - start
        self.filled += len(rows)
        self._release_if_complete()

    def _release_if_complete(self) -> None:
        """Once every row is cached the frozen modules are never run again: let them go (for a
        large model they are most of its memory)."""
        if self.originals is not None and all(h is not None for rows in self.hidden.values() for h in rows):
            self.originals = None

    @torch.no_grad()
    def _compute(self, encoded: Encoded, batch: int = 64) -> list[torch.Tensor]:
        captured: list[torch.Tensor] = []

        def grab(module, args, kwargs):
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _StopForward  # nothing above block k is needed

        block = self.model.get_submodule(self.layers.block_prefix)[self.k]
        hook = block.register_forward_pre_hook(grab, with_kwargs=True)
        was_training = self.model.training
        self.model.eval()
        out: list[torch.Tensor] = []
        try:
            for start in range(0, len(encoded), batch):
                ids = encoded.input_ids[start : start + batch]
                input_ids, mask = pad_ids(ids, self.pad_id)
                try:
                    self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
                except _StopForward:
                    pass
                hidden = captured.pop()
                # copies, not views: a view would keep its whole padded batch alive (and be saved whole)
                out += [hidden[i, : len(x)].to("cpu", self.dtype, copy=True) for i, x in enumerate(ids)]
        finally:
            hook.remove()
            self.model.train(was_training)
        return out

    def _swap(self, embedding: nn.Module, blocks: list[nn.Module]) -> tuple[nn.Module, list[nn.Module]]:
        """Put these modules in the embedding's and the frozen blocks' places; return the old ones."""
        parent, _, attr = self.embedding.rpartition(".")
        owner = self.model.get_submodule(parent) if parent else self.model
        old_embedding = getattr(owner, attr)
        setattr(owner, attr, embedding)
        module_list = self.model.get_submodule(self.layers.block_prefix)
        old_blocks = [module_list[i] for i in range(self.k)]
        for i, block in enumerate(blocks):
            module_list[i] = block
        return old_embedding, old_blocks

    def _install(self) -> None:
        if not hasattr(self, "input"):
            self.input = CachedInput()
            self.passes = [PassThrough() for _ in range(self.k)]
        self.originals = self._swap(self.input, self.passes)

    def _uninstall(self) -> None:
        self._swap(*self.originals)

    def feed(self, split: str, rows: list[int], width: int | None = None) -> None:
        """Set the cached hidden states of these rows (right-padded, to `width` tokens if given:
        a fixed shape's) as the next forward's input, computing the rows not cached yet."""
        missing = [r for r in dict.fromkeys(rows) if self.hidden[split][r] is None]
        if missing:
            self._fill(split, missing)
        states = [self.hidden[split][r] for r in rows]
        width = width or max(s.shape[0] for s in states)
        batch = torch.zeros((len(states), width, states[0].shape[1]), dtype=self.compute_dtype)
        for i, s in enumerate(states):
            batch[i, : s.shape[0]] = s  # cast on copy: a bfloat16 model's blocks take bfloat16, not float32
        self.input.current = batch.to(self.device)
