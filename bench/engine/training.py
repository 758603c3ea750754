"""Local training and prediction on token ids: batches, padding, the step loop."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from bench.data.tokenize import IGNORE, Encoded
from bench.federation.fixed_shape import FixedShape, for_client
from bench.federation.privacy import PrivateTraining, UnitPrivateTraining
from bench.seeding import noise_generator

EVAL_BATCH = 64


class Diverged(RuntimeError):
    """The model produced NaN or Inf: the run cannot go on meaningfully."""


def pad_ids(sequences: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and their attention mask, `width` tokens wide (default: the longest)."""
    longest = max(len(seq) for seq in sequences)
    if width is not None and longest > width:
        raise ValueError(f"a row of {longest} tokens does not fit a fixed width of {width}")
    width = width or longest
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def collate(
    encoded: Encoded, rows: list[int], pad_id: int, kind: str, device, width: int | None = None
) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and labels for a batch of encoded rows."""
    ids, mask = pad_ids([encoded.input_ids[r] for r in rows], pad_id, width)
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    if kind == "ner":
        labels = torch.full(ids.shape, IGNORE, dtype=torch.long)
        for i, r in enumerate(rows):
            labels[i, : len(encoded.labels[r])] = torch.tensor(encoded.labels[r])
    elif kind == "multilabel":
        labels = torch.tensor([encoded.labels[r] for r in rows], dtype=torch.float)
    else:
        labels = torch.tensor([encoded.labels[r] for r in rows], dtype=torch.long)
    batch["labels"] = labels.to(device)
    return batch


def example_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy averaged over each example's own labelled tokens, then over examples.

    Under DP-SGD this keeps one sentence's gradient independent of the other sentences in its
    batch (the HF loss averages over all the batch's tokens, so a sentence's weight would
    depend on its neighbours' lengths and the clipping bound would not bound sensitivity)."""
    return example_losses(logits, labels, "ner").mean()


def example_losses(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Each example's own loss (a vector over the batch): what the HF losses average, per row."""
    if kind == "ner":
        per_token = nn.functional.cross_entropy(
            logits.transpose(1, 2).float(), labels, ignore_index=IGNORE, reduction="none"
        )
        labelled = (labels != IGNORE).float()
        return (per_token * labelled).sum(1) / labelled.sum(1).clamp(min=1.0)
    if kind == "multilabel":
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none").mean(1)
    return nn.functional.cross_entropy(logits.float(), labels, reduction="none")


def _private_loss(forward, inputs: dict, kind: str, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The loss for DP-SGD: per example, then over examples (classification losses already are).
    With `weights` (a fixed shape's 1 drawn, 0 filler), the weighted mean over all the step's rows:
    Opacus's per-sample gradients (mean reduction, times the rows) are then each drawn row's own
    and exactly zero for the filler."""
    if kind != "ner" and weights is None:
        return forward(**inputs).loss
    labels = inputs["labels"]
    logits = forward(**{k: v for k, v in inputs.items() if k != "labels"}).logits
    if weights is None:
        return example_mean_loss(logits, labels)
    return (example_losses(logits, labels, kind) * weights.to(logits.device)).mean()


def epoch_batches(
    rows: np.ndarray, encoded: Encoded, batch_size: int, generator: torch.Generator, buckets: int = 0
) -> list[np.ndarray]:
    """One epoch's batches: a seeded shuffle cut into batches; with `buckets` = W > 0, each
    window of W batches of the shuffle is sorted by row length before it is cut and the batches
    are shuffled again, so a batch holds rows of similar length (less padding) while which rows
    meet stays random beyond the window."""
    order = rows[torch.randperm(len(rows), generator=generator).numpy()]
    if not buckets:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window, batches = buckets * batch_size, []
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort([len(encoded.input_ids[r]) for r in part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train_local(
    model: nn.Module,
    encoded: Encoded,
    rows: np.ndarray,
    *,
    kind: str,
    pad_id: int,
    epochs: int,
    batch_size: int,
    lr: float,
    warmup_ratio: float,
    seed: int,
    penalty=None,
    dp=None,
    before_forward=None,
    device="cpu",
    row_units: np.ndarray | None = None,
    length_buckets: int = 0,
) -> tuple[float, tuple | None]:
    """Epochs of AdamW with linear warm-up over `rows`.

    Returns the mean training loss and, with DP, the accountant entry (sigma, rate, steps), where
    steps counts the batches actually drawn (each one a step of the accountant, empty or not).
    `before_forward(rows)` runs before each forward (the prefix cache feeds its states there).
    `row_units` (aligned with `rows`) makes DP-SGD's privacy unit a document or patient.
    `length_buckets` groups rows of similar length into batches (epoch_batches; not under DP,
    whose batches are Poisson samples).
    The shuffling generator and dropout are seeded from `seed`, so a client's training is the
    same on whichever worker runs it.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = epochs * -(-len(rows) // batch_size)
    optimizer, scheduler = _optimizer(params, lr, warmup_ratio, steps)
    private = _private_training(model, optimizer, dp, rows, row_units, batch_size, generator)
    shape = _fixed_shape(private, dp, rows, encoded, before_forward)
    if private:  # under --secure-rng the batches are secret too: subsampling's amplification assumes it
        batches = private.batches(rows, steps, noise_generator() if dp.secure_rng else generator)
    else:
        batches = _epochs(epochs, rows, encoded, batch_size, generator, length_buckets)
    step = functools.partial(_step, model, params, optimizer, private, kind, penalty)
    model.train()
    try:
        noise_only = private.noise_step if private else None
        losses, drawn = _fit(batches, step, scheduler, encoded, pad_id, kind, device, before_forward, noise_only, shape)
    finally:
        if private:
            private.close()
    accounted = (private.noise_multiplier, private.rate, drawn) if private else None
    return (float(np.mean(losses)) if losses else float("nan")), accounted


def _optimizer(params: list, lr: float, warmup_ratio: float, steps: int):
    """AdamW without weight decay, its learning rate warmed up linearly then held."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, int(warmup_ratio * steps))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))


def _private_training(model, optimizer, dp, rows, row_units, batch_size, generator) -> PrivateTraining | None:
    """DP-SGD's wrapping of (model, optimizer): per row, or per document or patient; None without DP."""
    if dp is None:
        return None
    if row_units is not None:
        return UnitPrivateTraining(model, optimizer, dp, rows, row_units, batch_size, generator)
    return PrivateTraining(model, optimizer, dp, len(rows), batch_size)


def _fixed_shape(private, dp, rows: np.ndarray, encoded: Encoded, before_forward) -> FixedShape | None:
    """Under --dp-fixed-shape, the shape of every step of this client (None otherwise). The prefix
    cache is filled for all the client's rows first: a row cached on its first draw would show it."""
    if not private or dp.fixed_length is None:
        return None
    lengths = [len(encoded.input_ids[r]) for r in rows]
    by_unit = isinstance(private, UnitPrivateTraining)
    if by_unit:  # its per-unit sums take the step's shape too
        private.fixed = True
    # by unit each drawn one adds at most M rows, and the cap is the rows' (bench.federation.fixed_shape)
    shape = for_client(rows, lengths, private.rate, dp.fixed_length, dp.unit_max_rows if by_unit else 1)
    if before_forward:
        for start in range(0, len(rows), shape.rows):
            before_forward(rows[start : start + shape.rows].tolist())
    return shape


def _epochs(epochs: int, rows: np.ndarray, encoded: Encoded, batch_size: int, generator, buckets: int):
    """`epochs` passes of epoch_batches, each shuffled when the one before is used up."""
    for _ in range(epochs):
        yield from epoch_batches(rows, encoded, batch_size, generator, buckets)


def _step(
    model, params, optimizer, private, kind: str, penalty, batch: dict, batch_rows: np.ndarray, weights=None
) -> float:
    """One batch's update; returns its loss. Under DP the penalty's gradient (FedProx's) is
    data-independent, so it is added after clipping and noise rather than clipped with the loss.
    `weights`: a fixed shape's (bench.federation.fixed_shape); `batch_rows` are then the drawn rows."""
    forward = private.module if private else model
    loss = _private_loss(forward, private.inputs(batch), kind, weights) if private else forward(**batch).loss
    extra = penalty(model) if penalty else None
    if private:
        loss.backward()
        private.step(torch.autograd.grad(extra, params) if extra is not None else None, batch_rows)
    else:
        optimizer.zero_grad(set_to_none=True)
        (loss + extra if extra is not None else loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    return float(loss.detach())


def _fit(
    batches, step, scheduler, encoded: Encoded, pad_id: int, kind: str, device, before_forward, noise_only, shape=None
):
    """`step` on every batch in turn: (the losses, how many batches were drawn). An empty
    Poisson batch (DP-SGD) is still a step, noise alone (`noise_only`): the accountant counts it,
    and skipping it would show, in the steps an optimizer took, that the batch was empty. Under a
    fixed shape every step, an empty one's too, runs on the shape's rows and width."""
    losses, drawn = [], 0
    width = shape.length if shape is not None else None
    for batch_rows in batches:
        drawn += 1
        rows, weights = shape.pad(batch_rows) if shape is not None else (batch_rows, None)
        if len(rows) > 0:
            batch = collate(encoded, rows.tolist(), pad_id, kind, device, width)
            if before_forward:
                before_forward(rows.tolist(), width)
            loss = step(batch, batch_rows, weights)
            if len(batch_rows) > 0:  # a padded empty draw's loss is the filler's, at weight zero
                losses.append(loss)
        elif noise_only is not None:
            noise_only()
        scheduler.step()
    return losses, drawn


@torch.no_grad()
def predict(
    model: nn.Module, encoded: Encoded, rows: list[int], *, kind: str, pad_id: int, before_forward=None, device="cpu"
) -> list:
    """Per row: NER the predicted label ids at labelled (first sub-word) positions; else probabilities."""
    model.eval()
    out: dict[int, object] = {}
    ordered = sorted(rows, key=lambda r: len(encoded.input_ids[r]))  # less padding
    for start in range(0, len(ordered), EVAL_BATCH):
        chunk = ordered[start : start + EVAL_BATCH]
        batch = collate(encoded, chunk, pad_id, kind, device)
        if before_forward:
            before_forward(chunk)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float().cpu()
        if not torch.isfinite(logits).all():
            raise Diverged("non-finite logits in evaluation")
        for i, r in enumerate(chunk):
            if kind == "ner":
                keep = batch["labels"][i].cpu() != IGNORE
                out[r] = logits[i][keep].argmax(-1).tolist()
            elif kind == "multilabel":
                out[r] = torch.sigmoid(logits[i]).numpy()
            else:
                out[r] = torch.softmax(logits[i], -1).numpy()
    return [out[r] for r in rows]
