"""The report's figures (PNG for the README, PDF for papers), each drawn only when the grid has
the data for it: curves need rounds, the alpha plot needs two alphas, the ablation two K."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.report.partition_plot import plot
from bench.report.tables import MATCHED_SHARE, cell_key, method_label


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LABEL_SETTINGS = (
    "partition",
    "dp_epsilon",
    "noise_multiplier",
    "dp_level",
    "dp_unit",
    "model",
    "clients",
    "client_budgets",
    "compress",
)


def _labeller(runs: list[dict], x_settings: tuple[str, ...] = ()):
    """Label a line by its method and by every setting that varies among the figure's runs (the
    x-axis and the seed aside), so no two different cells share a label."""
    varying = [k for k in LABEL_SETTINGS if k not in x_settings and len({str(r["config"].get(k)) for r in runs}) > 1]

    def label(run: dict) -> str:
        extra = ", ".join(f"{k}={run['config'].get(k)}" for k in varying if k != "partition")
        part = f" ({run['config']['partition']})" if "partition" in varying else ""
        return f"{method_label(run)}{part}" + (f" [{extra}]" if extra else "")

    return label


def _cells(runs: list[dict], x_settings: tuple[str, ...] = ()) -> dict[tuple, list[dict]]:
    """Runs grouped by their whole cell except the seed and the x-axis settings."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = tuple((k, v) for k, v in cell_key(r) if k not in x_settings and k != "lr")
        groups.setdefault(key, []).append(r)
    return groups


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


def _mean_curve(runs: list[dict], x_of) -> tuple[list, list]:
    """Validation metric per round, averaged over the seeds that ran that round; x from the first seed."""
    longest = max(runs, key=lambda r: len(r["history"]))
    xs = x_of(longest["history"])
    ys = [
        float(np.mean([r["history"][i]["val_metric"] for r in runs if len(r["history"]) > i])) for i in range(len(xs))
    ]
    return xs, ys


def _curves(runs, folder, name, x_of, xlabel, logx=False) -> bool:
    tasks = _by_task([r for r in runs if r.get("history") and r["history"][0].get("val_metric") is not None])
    if not tasks:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.5), squeeze=False)
    drawn = 0
    for ax, (task, rs) in zip(axes[0], tasks.items()):
        label = _labeller(rs)
        for cell in sorted(_cells(rs).values(), key=lambda c: label(c[0])):
            xs, ys = _mean_curve(cell, x_of)
            if logx and not any(x > 0 for x in xs):
                continue  # nothing moved (centralized, local): no point on a byte axis
            ax.plot(xs, ys, marker="o", ms=3, label=label(cell[0]) + (f" ({len(cell)} seeds)" if len(cell) > 1 else ""))
            drawn += 1
        _style(ax, task, xlabel, f"validation {rs[0]['metric_name']}", logx)
    if not drawn:  # e.g. only centralized runs on a byte axis: no figure rather than an empty one
        plt.close(fig)
        return False
    _save(fig, folder, name)
    return True


def metric_vs_round(runs, folder, table):
    return _curves(runs, folder, "metric_vs_round", lambda h: [x["round"] for x in h], "round")


def metric_vs_bytes(runs, folder, table):
    cumulative = lambda h: np.cumsum([x["bytes_up"] + x["bytes_down"] for x in h]).tolist()  # noqa: E731
    return _curves(runs, folder, "metric_vs_bytes", cumulative, "cumulative bytes moved (log)", logx=True)


def _points(runs, key_of, x_settings: tuple[str, ...], min_points=2):
    """(task, label) -> sorted [(x, mean test metric over seeds)], one line per cell without the
    x-axis settings, kept where it has at least `min_points` x values."""
    points: dict[tuple, list] = {}
    for cell in _cells([r for r in runs if key_of(r) is not None], x_settings).values():
        label = _labeller(runs, x_settings)(cell[0])
        by_x: dict = {}
        for r in cell:
            by_x.setdefault(key_of(r), []).append(r["metric"])
        points[(cell[0]["config"]["task"], label)] = sorted((x, float(np.mean(v))) for x, v in by_x.items())
    return {k: v for k, v in points.items() if len(v) >= min_points}


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


def metric_vs_alpha(runs, folder, table):
    def alpha(r):
        part = r["config"]["partition"]
        return float(part.split(":")[1]) if part.startswith("dirichlet:") else IID_ALPHA if part == "iid" else None

    return _line_plot(
        _points(runs, alpha, ("partition",)),
        folder,
        "metric_vs_alpha",
        f"Dirichlet alpha (log; iid at {IID_ALPHA:g})",
        logx=True,
    )


def layer_ablation(runs, folder, table):
    """Metric and bytes against K, one line per cell except the layer spec: top:K, bottom:K and
    auto:K are different lines, never pooled."""
    skip = [r for r in runs if r["config"]["method"] == "layerskip" and r["config"].get("layers")]
    family = lambda r: r["config"]["layers"].split(":")[0]  # noqa: E731
    blocks = lambda r: len((r.get("method_info") or {}).get("blocks", [])) or None  # noqa: E731
    lines: dict[tuple, dict] = {}
    label = _labeller(skip, ("layers",))
    for cell in _cells(skip, ("layers",)).values():
        for r in cell:
            name = f"{r['config']['task']}: layerskip {family(r)}:K" + label(r)[len(method_label(r)) :]
            lines.setdefault(name, {}).setdefault(blocks(r), []).append(r)
    lines = {k: v for k, v in lines.items() if len(v) >= 2}
    if not lines:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, by_k in sorted(lines.items()):
        ks = sorted(by_k)
        axes[0].plot(ks, [np.mean([r["metric"] for r in by_k[k]]) for k in ks], marker="o", label=name)
        axes[1].plot(
            ks,
            [np.mean([r["bytes_up_total"] + r["bytes_down_total"] for r in by_k[k]]) for k in ks],
            marker="o",
            label=name,
        )
    axes[0].set_ylabel("test metric")
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


NO_DP_AT = 64.0  # where runs without DP are drawn on the epsilon axis


def privacy_utility(runs, folder, table):
    """Metric against the configured epsilon target (not the spent one), one line per cell; runs
    given a noise multiplier instead of a target are left out (their epsilon is an outcome)."""
    if not any(r["config"].get("dp_epsilon") is not None for r in runs):
        return False
    target = lambda r: (
        None if r["config"].get("noise_multiplier") is not None else (r["config"].get("dp_epsilon") or NO_DP_AT)
    )  # noqa: E731
    points = _points(runs, target, ("dp_epsilon", "noise_multiplier"))
    return _line_plot(
        points, folder, "privacy_utility", f"epsilon target (log; no DP drawn at {NO_DP_AT:g})", logx=True
    )


def matched_bytes(runs, folder, table: list[dict]):
    """Bars: bytes until the validation metric first reaches MATCHED_SHARE of centralized's."""
    rows = [t for t in table if t["communicates"] and not t["method"].startswith("centralized")]
    if not rows or not any(t["matched_seeds"] for t in rows):
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 4.5))
    labels = [f"{t['method']} ({t['partition']})" for t in rows]
    heights = [t["matched_bytes"] or 0 for t in rows]
    bars = ax.bar(range(len(rows)), heights, color=["C0" if t["matched_seeds"] == t["seeds"] else "C1" for t in rows])
    for bar, t in zip(bars, rows):
        if not t["matched_seeds"]:
            ax.annotate(
                "never",
                (bar.get_x() + bar.get_width() / 2, 1),
                ha="center",
                va="bottom",
                fontsize="x-small",
                rotation=90,
            )
    ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize="x-small")
    ax.set_yscale("log")
    ax.set_ylabel(f"bytes to {MATCHED_SHARE:.0%} of centralized (log)")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("Communication at matched accuracy (orange: not every seed got there)", fontsize="small")
    _save(fig, folder, "matched_bytes")
    return True


def partition_heatmaps(runs, folder):

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
    return [
        (f"partition_{t}_{p}".replace(":", "-"), f"Partition {p} of {t}: label shares per client")
        for t, p in sorted(seen)
    ]


FIGURES = [
    (metric_vs_round, "metric_vs_round", "Validation metric after each round (mean over seeds)"),
    (metric_vs_bytes, "metric_vs_bytes", "Validation metric against cumulative bytes moved (mean over seeds)"),
    (matched_bytes, "matched_bytes", f"Bytes until validation reaches {MATCHED_SHARE:.0%} of centralized's best"),
    (metric_vs_alpha, "metric_vs_alpha", "Test metric against Dirichlet alpha (label skew)"),
    (layer_ablation, "layer_ablation", "Layer-count ablation: test metric and bytes against trainable blocks"),
    (privacy_utility, "privacy_utility", "Privacy-utility: test metric against the epsilon target"),
]


def write_all(runs: list[dict], folder: Path, table: list[dict]) -> list[tuple[str, str]]:
    """Draw every figure the data allows; returns (file stem, caption) of those drawn. Each
    figure gets the runs and the report's main table (computed once: its bootstrap is not free)."""
    made = [(name, caption) for draw, name, caption in FIGURES if draw(runs, folder, table)]
    return made + partition_heatmaps(runs, folder)
