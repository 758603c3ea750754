"""Describe a partition: per-client sizes and label counts, divergence, and a figure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from bench.data.types import TaskData
from partitions.base import parse_partition
from partitions.divergence import client_divergences, label_matrix


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
    return {"task": data.task, "partition": spec, "seed": seed, "clients": clients,
            "divergence": round(float(divergences.mean()), 6)}  # fmt: skip


def plot(description: dict, path: str | Path) -> None:
    """Heatmap of each client's label shares, and each client's divergence from the pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = description["clients"]
    names = list(clients[0]["labels"])
    counts = np.array([[c["labels"][n] for n in names] for c in clients], dtype=float)
    shares = counts / counts.sum(axis=1, keepdims=True)
    fig, (ax_heat, ax_div) = plt.subplots(1, 2, figsize=(4 + 0.5 * len(names) + 0.3 * len(clients), 3 + 0.25 * len(clients)),
                                          gridspec_kw={"width_ratios": [max(len(names), 2), 2]})  # fmt: skip
    im = ax_heat.imshow(shares, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax_heat.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax_heat.set_yticks(range(len(clients)), [f"{c['id']} (n={c['size']})" for c in clients])
    ax_heat.set_xlabel("label")
    ax_heat.set_ylabel("client")
    fig.colorbar(im, ax=ax_heat, label="share of client's examples")
    ax_div.barh(range(len(clients)), [c["divergence"] for c in clients], color="tab:orange")
    ax_div.axvline(description["divergence"], color="k", ls="--", label=f"mean {description['divergence']:.3f}")
    ax_div.set_yticks(range(len(clients)), [])
    ax_div.invert_yaxis()
    ax_heat_ylim = ax_heat.get_ylim()
    ax_div.set_ylim(ax_heat_ylim)
    ax_div.set_xlabel("JS divergence from pool")
    ax_div.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{description['task']}: {description['partition']}, {len(clients)} clients, seed {description['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
