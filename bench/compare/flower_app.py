"""The Flower side of `make compare-flower`, written as Flower's own quickstart-huggingface and
quickstart-pytorch examples write it (Flower 1.42 Message API: a ClientApp whose train() builds
the model from the pretrained weights, loads the received arrays, trains one local epoch with
AdamW and replies; a ServerApp running the FedAvg strategy with a centralized `evaluate_fn`),
on token classification instead of IMDB.

It runs in Flower's own environment (.venv-flower: flwr[simulation] 1.42 and its pinned Ray),
so it imports nothing from this suite:

    .venv-flower/bin/python bench/compare/flower_app.py WORK.json RESULT.json

WORK.json (written by bench.compare) holds the model folder, the label names, each client's
training sentences (the very sentences the suite's clients train on), the validation and test
sentences, rounds, clients per round, batch size, max length, learning rate, and which blocks
train ("all" or "top:K"). RESULT.json gets the validation F1 per round and the final model's
test F1 (entity-level, strict IOB2, micro-averaged: the suite's metric).
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
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


def load_data(sentences: list, shuffle: bool, batch_size: int) -> DataLoader:
    tokenizer = AutoTokenizer.from_pretrained(work()["model_dir"])
    collator = DataCollatorForTokenClassification(tokenizer=tokenizer)
    return DataLoader(encode(sentences, tokenizer), shuffle=shuffle, batch_size=batch_size, collate_fn=collator)


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


def train_fn(model, trainloader, epochs: int, lr: float) -> None:
    optimizer = AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in trainloader:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()


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


def windows(sentences: list, tokenizer) -> tuple[list, list[int]]:
    """Sentences longer than the model's window cut into word runs that fit (this suite does
    the same), so every word is predicted; (pieces, index of the sentence each came from).
    Flower's example truncates instead: its words past the window would count as missed."""
    budget = work()["max_length"] - 2
    pieces, owner = [], []
    for s, (words, tags) in enumerate(sentences):
        start, used = 0, 0
        for w, word in enumerate(words):
            n = max(1, len(tokenizer(word, add_special_tokens=False)["input_ids"]))
            if used + n > budget and w > start:
                pieces.append([words[start:w], tags[start:w]])
                owner.append(s)
                start, used = w, 0
            used += n
        pieces.append([words[start:], tags[start:]])
        owner.append(s)
    return pieces, owner


def test_fn(model, sentences: list) -> float:
    """Entity-level micro F1 over the sentences."""
    names = work()["labels"]
    pieces, owner = windows(sentences, AutoTokenizer.from_pretrained(work()["model_dir"]))
    loader = load_data(pieces, shuffle=False, batch_size=32)
    model.eval()
    preds = []
    with torch.no_grad():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for row, labels in zip(logits.argmax(-1), batch["labels"]):
                preds.append([names[int(p)] for p, gold in zip(row, labels) if gold != -100])
    joined: list[list[str]] = [[] for _ in sentences]
    for s, pred in zip(owner, preds):
        joined[s] += pred
    tp = n_pred = n_gold = 0
    for (_words, tags), pred in zip(sentences, joined):
        pred = pred + ["O"] * (len(tags) - len(pred))  # a word longer than the window alone: O
        gold_spans, pred_spans = spans(tags), spans(pred)
        tp, n_pred, n_gold = tp + len(gold_spans & pred_spans), n_pred + len(pred_spans), n_gold + len(gold_spans)
    return 0.0 if tp == 0 else 2 * tp / (n_pred + n_gold)


# --- ClientApp (Flower's client_app.py) ---

client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    partition_id = context.node_config["partition-id"]
    trainloader = load_data(work()["clients"][partition_id], shuffle=True, batch_size=work()["batch_size"])
    model = get_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=False)  # the arrays that travel
    train_fn(model, trainloader, epochs=1, lr=work()["lr"])
    content = RecordDict(
        {
            "arrays": ArrayRecord(trained_state(model)),
            "metrics": MetricRecord({"num-examples": len(trainloader.dataset)}),
        }
    )
    return Message(content=content, reply_to=msg)


# --- ServerApp (Flower's server_app.py) ---

server = ServerApp()
RESULT: dict = {"val_f1": []}


def global_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Centralized evaluation on the validation sentences, every round (Flower's evaluate_fn)."""
    model = get_model()
    model.load_state_dict(arrays.to_torch_state_dict(), strict=False)
    f1 = test_fn(model, work()["validation"])
    RESULT["val_f1"].append({"round": server_round, "f1": f1})
    return MetricRecord({"f1": f1})


@server.main()
def main(grid: Grid, context: Context) -> None:
    model = get_model()
    clients, per_round = len(work()["clients"]), work()["per_round"]
    strategy = FedAvg(
        fraction_train=per_round / clients,
        fraction_evaluate=0.0,
        min_train_nodes=per_round,
        min_available_nodes=clients,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(trained_state(model)),
        num_rounds=work()["rounds"],
        evaluate_fn=global_evaluate,
    )
    model.load_state_dict(result.arrays.to_torch_state_dict(), strict=False)
    RESULT["test_f1"] = test_fn(model, work()["test"])


if __name__ == "__main__":
    os.environ["BENCH_FLOWER_WORK"] = os.path.abspath(sys.argv[1])
    work()
    torch.manual_seed(work()["seed"])
    run_simulation(
        server_app=server, client_app=client, num_supernodes=len(work()["clients"])
    )  # Flower's default resources
    with open(sys.argv[2], "w") as f:
        json.dump(RESULT, f)
