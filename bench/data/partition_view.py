"""Describe a partition: per-client sizes and label counts, and divergence (counts and ids only)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bench.data.divergence import client_divergences, label_matrix
from bench.data.partition_spec import parse_partition
from bench.data.types import TaskData


def describe(data: TaskData, spec: str, n_clients: int, seed: int) -> dict:
    """The `show` object: clients (id, size, labels; for NER also entity mentions) and divergence."""
    parts = parse_partition(spec).split(data.partition_labels("train"), data.sites("train"), n_clients, seed)
    return describe_parts(data, parts, spec, seed)


def describe_parts(data: TaskData, parts: list[np.ndarray], spec: str, seed: int) -> dict:
    """Counts and ids only, so it can be stored beside results and plotted later."""
    labels = data.partition_labels("train")
    names, counts = label_matrix(labels, parts)
    divergences = client_divergences(counts)
    clients = []
    for cid, idx in enumerate(parts):
        entry = {"id": cid, "size": int(len(idx)), "labels": {n: int(v) for n, v in zip(names, counts[cid])}}
        if data.kind == "ner":
            mentions = Counter(t for i in idx for t in data.train[i].entity_types())
            entry["entities"] = {t: mentions.get(t, 0) for t in data.label_names}
        entry["divergence"] = round(float(divergences[cid]), 6)
        clients.append(entry)
    return {
        "task": data.task,
        "partition": spec,
        "seed": seed,
        "clients": clients,
        "divergence": round(float(divergences.mean()), 6),
    }


PRIVATE_FIELDS = ("labels", "entities", "divergence")  # each client's label statistics


def stored_view(description: dict, private: bool) -> dict:
    """What partition.json keeps: everything, or under DP each client's id and size only. A
    client's label counts are statistics of its private data that no mechanism noised; the size
    stays (the accountants' rates, batch over training rows, state nearly as much), and the same
    split run without DP records the counts."""
    if not private:
        return description
    clients = [{k: v for k, v in c.items() if k not in PRIVATE_FIELDS} for c in description["clients"]]
    kept = {k: v for k, v in description.items() if k != "divergence"}
    return {**kept, "clients": clients, "label_counts": "withheld under DP"}
