"""The Flower side of `make compare-flower` (its task, ClientApp and ServerApp; flower_app.py
launches them), written as Flower's own quickstart-huggingface and
quickstart-pytorch examples write it (Flower 1.42 Message API: a ClientApp whose train() builds
the model from the pretrained weights, loads the received arrays, trains one local epoch with
AdamW and replies; a ServerApp running the FedAvg strategy with a centralized `evaluate_fn`),
on token classification instead of IMDB.

It runs in Flower's own environment (.venv-flower: flwr[simulation] 1.42 and its pinned Ray),
so it imports nothing from this suite, and it is a module of its own so that the apps travel to
Ray's actors by reference, as `flwr run` loads an app (defined in a `__main__` script they would
be pickled by value, with the whole workload in them, on every client call):

    .venv-flower/bin/python bench/compare/flower_app.py WORK.json RESULT.json

WORK.json (written by bench.compare) holds the model folder, the label names, each client's
training pieces (the very word runs the suite's clients train on: its sentences, long ones split
where the suite splits them), the validation and test pieces with the sentence each came from,
rounds, local epochs, clients per round, batch size, max length, learning rate, which blocks train ("all" or
"top:K"), each client's sentence count (FedAvg's weight, as the suite weighs), the seed and the
CPUs per client (`num_cpus`; absent: Flower's default). RESULT.json gets the validation F1 per
round (0: the start state) and the test F1 of the best validation round's model (the suite
reports that state; entity-level, strict IOB2, micro-averaged: the suite's metric).

Aligned with the suite where its defaults differ from Flower's examples, so both sides do the
same work (docs/PERFORMANCE.md lists what still differs): the same pieces rather than truncation
at the window; AdamW without weight decay, a linear warm-up over the first 10% of a client's
steps, gradients clipped to norm 1 (bench.engine.training); each client's shuffling and dropout
seeded from (seed, client, round); evaluation tokenized once per process and scored in
length-sorted batches of 64 (the suite's scorer).
"""

from __future__ import annotations

import json
import os
import random
import warnings

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from torch.optim import AdamW
from torch.utils.data import DataLoader
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


def load_data(sentences: list, shuffle: bool, batch_size: int, seed: int = 0) -> DataLoader:
    tokenizer = AutoTokenizer.from_pretrained(work()["model_dir"])
    collator = DataCollatorForTokenClassification(tokenizer=tokenizer)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        encode(sentences, tokenizer), shuffle=shuffle, batch_size=batch_size, collate_fn=collator, generator=generator
    )


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


def trained_state(model) -> dict:
    """What travels: the parameters that train (all of them for full fine-tuning)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


WARMUP_RATIO, MAX_GRAD_NORM = 0.1, 1.0  # the suite's defaults (bench.engine.training)


def train_fn(model, trainloader, epochs: int, lr: float) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, int(WARMUP_RATIO * epochs * len(trainloader)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    for _ in range(epochs):
        for batch in trainloader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()


def spans(tags: list[str]) -> set:
    """Strict IOB2 entities (type, start, end): a B- followed by I- of the same type."""
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


def _encoded(split: str) -> list[dict]:
    if split not in ENCODED:
        tokenizer = AutoTokenizer.from_pretrained(work()["model_dir"])
        ENCODED[split] = encode(work()[split]["pieces"], tokenizer)
    return ENCODED[split]


def test_fn(model, split: str) -> float:
    """Entity-level micro F1 over a split's sentences: its pieces scored in length-sorted batches
    (the suite's scorer), each piece's first-sub-word predictions joined back into its sentence."""
    names, part = work()["labels"], work()[split]
    rows = _encoded(split)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    collator = DataCollatorForTokenClassification(tokenizer=AutoTokenizer.from_pretrained(work()["model_dir"]))
    preds: dict[int, list[str]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), EVAL_BATCH):
            chunk = order[start : start + EVAL_BATCH]
            batch = collator([rows[i] for i in chunk])
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


# --- ClientApp (Flower's client_app.py) ---

client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    partition_id = context.node_config["partition-id"]
    seed = (work()["seed"] * 1_000_003 + partition_id) * 1_009 + msg.content["config"]["server-round"]
    torch.manual_seed(seed)  # dropout and the head's init: the client's own stream
    trainloader = load_data(work()["clients"][partition_id], shuffle=True, batch_size=work()["batch_size"], seed=seed)
    model = get_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=False)  # the arrays that travel
    train_fn(model, trainloader, epochs=work().get("local_epochs", 1), lr=work()["lr"])
    content = RecordDict(
        {
            "arrays": ArrayRecord(trained_state(model)),
            "metrics": MetricRecord({"num-examples": work()["client_sizes"][partition_id]}),  # sentences
        }
    )
    return Message(content=content, reply_to=msg)


# --- ServerApp (Flower's server_app.py) ---

server = ServerApp()
RESULT: dict = {"val_f1": []}
BEST: dict = {}  # the best validation round's arrays after round 0: the state the suite reports


def global_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Centralized evaluation on the validation sentences, every round (Flower's evaluate_fn)."""
    model = get_model()
    model.load_state_dict(arrays.to_torch_state_dict(), strict=False)
    f1 = test_fn(model, "validation")
    RESULT["val_f1"].append({"round": server_round, "f1": f1})
    if server_round > 0 and f1 > BEST.get("f1", -1.0):
        BEST.update(f1=f1, arrays=arrays)
    return MetricRecord({"f1": f1})


@server.main()
def main(grid: Grid, context: Context) -> None:
    model = get_model()
    clients, per_round = len(work()["clients"]), work()["per_round"]
    random.seed(work()["seed"])  # FedAvg draws each round's clients from Python's random
    strategy = FedAvg(
        fraction_train=per_round / clients,
        fraction_evaluate=0.0,
        min_train_nodes=per_round,
        min_available_nodes=clients,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(trained_state(model)),
        num_rounds=work()["rounds"],
        evaluate_fn=global_evaluate,
    )
    model.load_state_dict(BEST["arrays"].to_torch_state_dict(), strict=False)
    RESULT["test_f1"] = test_fn(model, "test")
