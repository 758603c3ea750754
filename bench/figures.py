"""The report's figures (PNG for the README, PDF for papers), each drawn only when the grid has
the data for it: curves need rounds, the alpha plot needs two alphas, the ablation two K."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(run: dict) -> str:
    cfg = run["config"]
    return f"{cfg['method']} {cfg.get('layers') or ''}".strip()


def _save(fig, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(folder / f"{name}.{ext}", dpi=120)
    _plt().close(fig)


def _style(ax, title: str, xlabel: str, ylabel: str, logx: bool) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")


def _by_task(runs: list[dict]) -> dict[str, list[dict]]:
    tasks: dict[str, list[dict]] = {}
    for r in runs:
        tasks.setdefault(r["config"]["task"], []).append(r)
    return dict(sorted(tasks.items()))


def _curves(runs, folder, name, x_of, xlabel, logx=False) -> bool:
    tasks = _by_task([r for r in runs if r.get("history")])
    if not tasks:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    styles = {}
    for ax, (task, rs) in zip(axes[0], tasks.items()):
        for r in sorted(rs, key=lambda r: (_label(r), r["config"]["partition"])):
            part = r["config"]["partition"]
            ls = styles.setdefault(part, ["-", "--", ":", "-."][len(styles) % 4])
            xs = x_of(r["history"])
            if logx and not any(x > 0 for x in xs):
                continue  # nothing moved (centralized, local): no point on a byte axis
            ax.plot(xs, [h["metric"] for h in r["history"]], ls, marker="o", ms=3, label=f"{_label(r)} ({part})")
        _style(ax, task, xlabel, rs[0]["metric_name"], logx)
    _save(fig, folder, name)
    return True


def metric_vs_round(runs, folder):
    return _curves(runs, folder, "metric_vs_round", lambda h: [x["round"] for x in h], "round")


def metric_vs_bytes(runs, folder):
    cumulative = lambda h: np.cumsum([x["bytes_up"] + x["bytes_down"] for x in h]).tolist()  # noqa: E731
    return _curves(runs, folder, "metric_vs_bytes", cumulative, "cumulative bytes moved (log)", logx=True)


def _points(runs, key_of, min_points=2):
    """(task, label) -> sorted [(x, mean metric)] where the grid has at least `min_points` x values."""
    groups: dict[tuple, dict] = {}
    for r in runs:
        x = key_of(r)
        if x is not None:
            groups.setdefault((r["config"]["task"], _label(r)), {}).setdefault(x, []).append(r["metric"])
    return {k: sorted((x, float(np.mean(v))) for x, v in d.items()) for k, d in groups.items() if len(d) >= min_points}


def _line_plot(points, folder, name, xlabel, logx=False) -> bool:
    if not points:
        return False
    plt = _plt()
    tasks = sorted({t for t, _ in points})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, label), pts in sorted(points.items()):
            if t == task:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        _style(ax, task, xlabel, "metric", logx)
    _save(fig, folder, name)
    return True


IID_ALPHA = 1e4  # iid drawn at the right end of the alpha axis


def metric_vs_alpha(runs, folder):
    def alpha(r):
        part = r["config"]["partition"]
        return float(part.split(":")[1]) if part.startswith("dirichlet:") else IID_ALPHA if part == "iid" else None

    return _line_plot(_points(runs, alpha), folder, "metric_vs_alpha", f"Dirichlet alpha (log; iid at {IID_ALPHA:g})", logx=True)


def layer_ablation(runs, folder):
    skip = [r for r in runs if r["config"]["method"] == "layerskip"]
    blocks = lambda r: len(r.get("method_info", {}).get("blocks", [])) or None  # noqa: E731
    points: dict[tuple, dict] = {}
    for r in skip:
        points.setdefault((r["config"]["task"], r["config"]["partition"]), {}).setdefault(blocks(r), []).append(r)
    points = {k: v for k, v in points.items() if len(v) >= 2}
    if not points:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (task, part), by_k in sorted(points.items()):
        ks = sorted(by_k)
        axes[0].plot(ks, [np.mean([r["metric"] for r in by_k[k]]) for k in ks], marker="o", label=f"{task} ({part})")
        axes[1].plot(ks, [np.mean([r["bytes_up_total"] + r["bytes_down_total"] for r in by_k[k]]) for k in ks], marker="o", label=f"{task} ({part})")
    axes[0].set_ylabel("metric")
    axes[1].set_ylabel("total bytes")
    axes[1].set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trainable blocks K")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    _save(fig, folder, "layer_ablation")
    return True


def privacy_utility(runs, folder):
    eps = lambda r: r["config"].get("dp_epsilon") if r["config"].get("dp_epsilon") is not None else (float("inf") if any(x["config"].get("dp_epsilon") for x in runs) else None)  # noqa: E731
    points = _points(runs, lambda r: eps(r) if eps(r) != float("inf") else 64.0)
    return _line_plot(points, folder, "privacy_utility", "epsilon (log; no DP drawn at 64)", logx=True)


def partition_heatmaps(runs, folder):
    from partitions.show import plot

    seen = {}
    for r in runs:
        desc = r.get("partition_description")
        if desc:
            seen.setdefault((desc["task"], desc["partition"]), desc)
    for (task, part), desc in sorted(seen.items()):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"partition_{task}_{part}".replace(":", "-")
        plot(desc, folder / f"{name}.png")
        plot(desc, folder / f"{name}.pdf")
    return [(f"partition_{t}_{p}".replace(":", "-"), f"Partition {p} of {t}: label shares per client") for t, p in sorted(seen)]


FIGURES = [
    (metric_vs_round, "metric_vs_round", "Test metric after each round"),
    (metric_vs_bytes, "metric_vs_bytes", "Test metric against cumulative bytes moved"),
    (metric_vs_alpha, "metric_vs_alpha", "Test metric against Dirichlet alpha (label skew)"),
    (layer_ablation, "layer_ablation", "Layer-count ablation: metric and bytes against trainable blocks"),
    (privacy_utility, "privacy_utility", "Privacy-utility: metric against epsilon"),
]


def write_all(runs: list[dict], folder: Path) -> list[tuple[str, str]]:
    """Draw every figure the data allows; returns (file stem, caption) of those drawn."""
    made = [(name, caption) for draw, name, caption in FIGURES if draw(runs, folder)]
    return made + partition_heatmaps(runs, folder)
