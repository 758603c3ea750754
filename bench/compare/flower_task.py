"""The Flower side of `make compare-flower`, its task: data, model, train and test functions, as
Flower's task.py holds them (the ClientApp and ServerApp are in flower_apps.py; flower_app.py
launches them), written as Flower's quickstart-huggingface and quickstart-pytorch examples write
theirs, on token classification instead of IMDB.

It runs in Flower's own environment (.venv-flower: flwr[simulation] 1.42 and its pinned Ray)
and imports nothing from this suite, nor from Flower: the suite's tests run its training
function beside the suite's own (tests/test_compare.py).

    .venv-flower/bin/python bench/compare/flower_app.py WORK.json RESULT.json

WORK.json (written by bench.compare) holds the model folder, the label names, each client's
training pieces (the very word runs the suite's clients train on: its sentences, long ones split
where the suite splits them), the validation and test pieces with the sentence each came from,
each client's held-out slice (`holdouts`), rounds, local epochs, clients per round and which
clients train in each round (`round_clients`), batch size, max length, learning rate, which
blocks train ("all" or "top:K"), each client's sentence count (FedAvg's weight, as the suite
weighs), the seed, each client's seed per round (`client_seeds`), whether the frozen blocks run
in eval mode (`frozen_prefix_eval`) and the CPUs per client (`num_cpus`; absent: Flower's
default). RESULT.json gets the validation F1 per round (0: the start state), the test F1 of the
best validation round's model (the suite reports that state; entity-level, strict IOB2,
micro-averaged: the suite's metric) and of the last one, each client's held-out F1, and which
clients each round averaged.

Aligned with the suite where its defaults differ from Flower's examples, so both sides do the
same work (docs/PERFORMANCE.md lists what still differs): the same pieces rather than truncation
at the window; AdamW without weight decay, a linear warm-up over the first 10% of a client's
steps, gradients clipped to norm 1 (bench.engine.training); each client's shuffle and dropout
drawn as the suite draws them, from the suite's seed for that client and round: dropout from
the global generator seeded after the model is built, each epoch's order a permutation from a
generator of the same seed (a DataLoader's `shuffle` would take a draw of its own first); the
start state's head drawn from the seed as the suite's build_model draws it; the suite's clients
each round, averaged in client order (flower_apps.py); where the suite's prefix cache stands in
for the frozen blocks (C), those blocks run in eval mode, as the cache computed them;
evaluation tokenized once per process and scored in length-sorted batches of 64 (the suite's
scorer); and the suite's closing scores: the last round's state on test where it is not the
best one, and each client's held-out slice with the best state.
"""

from __future__ import annotations

import functools
import json
import os
import warnings

import torch
from torch.optim import AdamW
from torch.utils.data import DataLoader, Subset
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, logging

warnings.filterwarnings("ignore", category=FutureWarning)
logging.set_verbosity_error()

WORK: dict = {}  # the workload, read once per process (Flower's examples cache their FederatedDataset likewise)


def work() -> dict:
    """The workload; Ray's worker processes find its file through the environment they inherit."""
    if not WORK:
        with open(os.environ["BENCH_FLOWER_WORK"]) as f:
            WORK.update(json.load(f))
    return WORK


# --- task: data, model, train and test functions (Flower's task.py) ---


def encode(sentences: list, tokenizer) -> list[dict]:
    """First sub-word of each word carries its tag; the rest and the special tokens -100."""
    labels = {name: i for i, name in enumerate(work()["labels"])}
    rows = []
    for words, tags in sentences:
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=work()["max_length"])
        seen, row_labels = set(), []
        for word in enc.word_ids():
            row_labels.append(-100 if word is None or word in seen else labels[tags[word]])
            seen.add(word)
        rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": row_labels})
    return rows


@functools.cache
def tokenizer():
    """Loaded once per process (each load reads the files again)."""
    return AutoTokenizer.from_pretrained(work()["model_dir"])


@functools.cache
def collator():
    return DataCollatorForTokenClassification(tokenizer=tokenizer())


def load_data(sentences: list) -> list[dict]:
    return encode(sentences, tokenizer())


def epoch_loader(rows: list[dict], batch_size: int, generator: torch.Generator) -> DataLoader:
    """One epoch's batches in the suite's order: a permutation drawn from the client's generator.
    The DataLoader gets a generator of its own, since its iterator draws a seed from the one it
    is given (the global one if none) before any batch."""
    order = torch.randperm(len(rows), generator=generator).tolist()
    return DataLoader(Subset(rows, order), batch_size=batch_size, collate_fn=collator(), generator=torch.Generator())


def get_model():
    model = AutoModelForTokenClassification.from_pretrained(work()["model_dir"], num_labels=len(work()["labels"]))
    trainable = work()["trainable"]
    if trainable != "all":  # "top:K": only the top K blocks and the head train
        k = int(trainable.split(":")[1])
        n = model.config.num_hidden_layers
        keep = ("classifier.",) + tuple(f"bert.encoder.layer.{b}." for b in range(n - k, n))
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(keep)
    return model


def initial_model():
    """The start state: the pretrained weights and a head drawn from the seed, as the suite's
    build_model draws it (Flower's example leaves the head to whatever the global stream holds)."""
    torch.manual_seed(work()["seed"])
    return get_model()


def trained_state(model) -> dict:
    """What travels: the parameters that train (all of them for full fine-tuning)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


WARMUP_RATIO, MAX_GRAD_NORM = 0.1, 1.0  # the suite's defaults (bench.engine.training)


def frozen_prefix(model) -> list:
    """The embeddings and the blocks below the top K (what the suite's prefix cache stands in for)."""
    trainable = work()["trainable"]
    if trainable == "all" or not work().get("frozen_prefix_eval"):
        return []
    blocks = model.bert.encoder.layer
    return [model.bert.embeddings, *blocks[: len(blocks) - int(trainable.split(":")[1])]]


def train_fn(model, rows: list[dict], epochs: int, lr: float, seed: int) -> None:
    torch.manual_seed(seed)  # dropout: the suite seeds the global generator once the model is built
    generator = torch.Generator().manual_seed(seed)  # the order of each epoch
    batch_size = work()["batch_size"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, int(WARMUP_RATIO * epochs * -(-len(rows) // batch_size)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    for module in frozen_prefix(model):
        module.eval()
    for _ in range(epochs):
        for batch in epoch_loader(rows, batch_size, generator):
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()


def spans(tags: list[str]) -> set:
    """Strict IOB2 entities (type, start, end): a B- followed by I- of the same type. The suite's
    bench.data.spans.iob2_spans, copied because this file imports nothing from the suite;
    tests/data/test_spans.py holds the two to the same spans, malformed IOB2 included."""
    out, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and tag != f"I-{kind}":
            out.add((kind, start, i))
            start = None
        if tag.startswith("B-"):
            start, kind = i, tag[2:]
    return out


EVAL_BATCH = 64  # the suite's
ENCODED: dict = {}  # split -> its pieces tokenized, once per process (the suite tokenizes once too)


def _encoded(key: str, part: dict) -> list[dict]:
    if key not in ENCODED:
        ENCODED[key] = encode(part["pieces"], tokenizer())
    return ENCODED[key]


def test_fn(model, split: str, part: dict | None = None) -> float:
    """Entity-level micro F1 over a split's sentences (or `part`'s, named `split`): its pieces
    scored in length-sorted batches (the suite's scorer), each piece's first-sub-word predictions
    joined back into its sentence."""
    names, part = work()["labels"], part or work()[split]
    rows = _encoded(split, part)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    preds: dict[int, list[str]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), EVAL_BATCH):
            chunk = order[start : start + EVAL_BATCH]
            batch = collator()([rows[i] for i in chunk])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for i, row, labels in zip(chunk, logits.argmax(-1), batch["labels"]):
                preds[i] = [names[int(p)] for p, gold in zip(row, labels) if gold != -100]
    joined: list[list[str]] = [[] for _ in part["sentences"]]
    for i, s in enumerate(part["owner"]):
        joined[s] += preds[i]
    tp = n_pred = n_gold = 0
    for (_words, tags), pred in zip(part["sentences"], joined):
        pred = pred + ["O"] * (len(tags) - len(pred))
        gold_spans, pred_spans = spans(tags), spans(pred)
        tp, n_pred, n_gold = tp + len(gold_spans & pred_spans), n_pred + len(pred_spans), n_gold + len(gold_spans)
    return 0.0 if tp == 0 else 2 * tp / (n_pred + n_gold)
