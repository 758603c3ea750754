"""The partition figure: each client's label shares as a heatmap, beside its divergence from the pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot(description: dict, path: str | Path) -> None:
    """Heatmap of each client's label shares, and each client's divergence from the pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report.plotting import savefig  # here, as matplotlib: `partitions show` need not load the report

    clients = description["clients"]
    names = list(clients[0]["labels"])
    counts = np.array([[c["labels"][n] for n in names] for c in clients], dtype=float)
    shares = counts / counts.sum(axis=1, keepdims=True)
    fig, (ax_heat, ax_div) = plt.subplots(
        1,
        2,
        figsize=(4 + 0.5 * len(names) + 0.3 * len(clients), 3 + 0.25 * len(clients)),
        gridspec_kw={"width_ratios": [max(len(names), 2), 2]},
    )
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
    fig.suptitle(
        f"{description['task']}: {description['partition']}, {len(clients)} clients, seed {description['seed']}"
    )
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)
