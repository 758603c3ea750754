"""The report's figures (PNG for the README, PDF for papers), each drawn only when the grid has
the data for it: curves need rounds, the alpha plot needs two alphas, the ablation two K."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bench.report.frontier_plot import frontier, gap_vs_trainable
from bench.report.matched import MATCHED_SHARE
from bench.report.partition_plot import plot
from bench.report.plotting import by_task, cells, labeller, pyplot, save, style
from bench.report.tables import method_label


def _mean_curve(runs: list[dict], x_of) -> tuple[list, list]:
    """Validation metric per round, averaged over the seeds that ran that round; x from the first seed."""
    longest = max(runs, key=lambda r: len(r["history"]))
    xs = x_of(longest["history"])
    ys = [
        float(np.mean([r["history"][i]["val_metric"] for r in runs if len(r["history"]) > i])) for i in range(len(xs))
    ]
    return xs, ys


def _with_round_zero(cell: list[dict], xs: list, ys: list) -> tuple[list, list]:
    """The untrained model's validation score as round 0, where every seed has it (issue 23: a
    curve starts where training started, so a run that never left it shows as flat)."""
    start = [r.get("untrained_val_metric") for r in cell]
    if any(v is None for v in start):
        return xs, ys
    return [0, *xs], [float(np.mean(start)), *ys]


def _curves(runs, folder, name, x_of, xlabel, logx=False) -> bool:
    tasks = by_task([r for r in runs if r.get("history") and r["history"][0].get("val_metric") is not None])
    if not tasks:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.5), squeeze=False)
    drawn = 0
    for ax, (task, rs) in zip(axes[0], tasks.items()):
        label = labeller(rs)
        for cell in sorted(cells(rs).values(), key=lambda c: label(c[0])):
            xs, ys = _mean_curve(cell, x_of)
            if logx and not any(x > 0 for x in xs):
                continue  # nothing moved (centralized, local): no point on a byte axis
            if not logx:  # round 0 has no place on a log axis of bytes
                xs, ys = _with_round_zero(cell, xs, ys)
            ax.plot(xs, ys, marker="o", ms=3, label=label(cell[0]) + (f" ({len(cell)} seeds)" if len(cell) > 1 else ""))
            drawn += 1
        style(ax, task, xlabel, f"validation {rs[0]['metric_name']}", logx)
    if not drawn:  # e.g. only centralized runs on a byte axis: no figure rather than an empty one
        plt.close(fig)
        return False
    save(fig, folder, name)
    return True


def _rounds(history: list[dict]) -> list:
    return [x["round"] for x in history]


def _cumulative_bytes(history: list[dict]) -> list:
    return np.cumsum([x["bytes_up"] + x["bytes_down"] for x in history]).tolist()


def metric_vs_round(runs, folder, table):
    return _curves(runs, folder, "metric_vs_round", _rounds, "round")


def metric_vs_bytes(runs, folder, table):
    return _curves(runs, folder, "metric_vs_bytes", _cumulative_bytes, "cumulative bytes moved (log)", logx=True)


def _points(runs, key_of, x_settings: tuple[str, ...], min_points=2):
    """(task, label) -> sorted [(x, mean test metric over seeds)], one line per cell without the
    x-axis settings, kept where it has at least `min_points` x values."""
    points: dict[tuple, list] = {}
    for cell in cells([r for r in runs if key_of(r) is not None], x_settings).values():
        label = labeller(runs, x_settings)(cell[0])
        by_x: dict = {}
        for r in cell:
            by_x.setdefault(key_of(r), []).append(r["metric"])
        points[(cell[0]["config"]["task"], label)] = sorted((x, float(np.mean(v))) for x, v in by_x.items())
    return {k: v for k, v in points.items() if len(v) >= min_points}


def _line_plot(points, folder, name, xlabel, logx=False) -> bool:
    if not points:
        return False
    plt = pyplot()
    tasks = sorted({t for t, _ in points})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, label), pts in sorted(points.items()):
            if t == task:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        style(ax, task, xlabel, "metric", logx)
    save(fig, folder, name)
    return True


IID_ALPHA = 1e4  # iid drawn at the right end of the alpha axis


def _alpha(run: dict):
    """Dirichlet alpha of a run's partition; None (left out) for partitions without one."""
    part = run["config"]["partition"]
    return float(part.split(":")[1]) if part.startswith("dirichlet:") else IID_ALPHA if part == "iid" else None


def metric_vs_alpha(runs, folder, table):
    return _line_plot(
        _points(runs, _alpha, ("partition",)),
        folder,
        "metric_vs_alpha",
        f"Dirichlet alpha (log; iid at {IID_ALPHA:g})",
        logx=True,
    )


def _layer_family(run: dict) -> str:
    return run["config"]["layers"].split(":")[0]


def _trained_blocks(run: dict):
    return len((run.get("method_info") or {}).get("blocks", [])) or None


def _ablation_lines(runs: list[dict]) -> dict[str, dict]:
    """Line name -> {K: runs}: top:K, bottom:K and auto:K are different lines, never pooled."""
    skip = [r for r in runs if r["config"]["method"] == "layerskip" and r["config"].get("layers")]
    lines: dict[str, dict] = {}
    label = labeller(skip, ("layers",))
    for cell in cells(skip, ("layers",)).values():
        for r in cell:
            name = f"{r['config']['task']}: layerskip {_layer_family(r)}:K" + label(r)[len(method_label(r)) :]
            lines.setdefault(name, {}).setdefault(_trained_blocks(r), []).append(r)
    return {k: v for k, v in lines.items() if len(v) >= 2}


def layer_ablation(runs, folder, table):
    """Metric and bytes against K, one line per cell except the layer spec."""
    lines = _ablation_lines(runs)
    if not lines:
        return False
    plt = pyplot()
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
    save(fig, folder, "layer_ablation")
    return True


NO_DP_AT = 64.0  # where runs without DP are drawn on the epsilon axis


def _epsilon_target(run: dict):
    """Configured target; None (left out) for runs given a noise multiplier, whose epsilon is an outcome."""
    if run["config"].get("noise_multiplier") is not None:
        return None
    return run["config"].get("dp_epsilon") or NO_DP_AT


def privacy_utility(runs, folder, table):
    """Metric against the configured epsilon target (not the spent one), one line per cell."""
    if not any(r["config"].get("dp_epsilon") is not None for r in runs):
        return False
    points = _points(runs, _epsilon_target, ("dp_epsilon", "noise_multiplier"))
    return _line_plot(
        points, folder, "privacy_utility", f"epsilon target (log; no DP drawn at {NO_DP_AT:g})", logx=True
    )


def matched_bytes(runs, folder, table: list[dict]):
    """Bars: median bytes until the validation metric first reaches the task's target (MATCHED_SHARE
    of centralized's mean best validation metric); orange where not every seed reached it."""
    rows = [
        t
        for t in table
        if t["communicates"] and not t["method"].startswith("centralized") and t["matched_seeds"] is not None
    ]  # a row without a target (no centralized cell) has no bar, as its table cell reads "-"
    if not rows or not any(t["matched_bytes"] for t in rows):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 4.5))
    labels = [f"{t['method']} ({t['partition']})" for t in rows]
    heights = [t["matched_bytes"] or 0 for t in rows]
    bars = ax.bar(
        range(len(rows)),
        heights,
        color=["C0" if t["matched_seeds"] == f"{t['seeds']}/{t['seeds']}" else "C1" for t in rows],
    )
    for bar, t in zip(bars, rows):
        if t["matched_bytes"] is None:
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
    save(fig, folder, "matched_bytes")
    return True


def _partition_file(task: str, partition: str) -> str:
    """A file name for any task name (hf:/a/path included), as run ids are made."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"partition_{task}_{partition}")


def partition_heatmaps(runs, folder):

    seen = {}
    for r in runs:
        desc = r.get("partition_description")
        if desc and "label_counts" not in desc:  # a DP run's partition.json withholds them
            seen.setdefault((desc["task"], desc["partition"]), desc)
    for (task, part), desc in sorted(seen.items()):
        folder.mkdir(parents=True, exist_ok=True)
        name = _partition_file(task, part)
        plot(desc, folder / f"{name}.png")
        plot(desc, folder / f"{name}.pdf")
    return [(_partition_file(t, p), f"Partition {p} of {t}: label shares per client") for t, p in sorted(seen)]


FIGURES = [
    (metric_vs_round, "metric_vs_round", "Validation metric after each round (mean over seeds)"),
    (metric_vs_bytes, "metric_vs_bytes", "Validation metric against cumulative bytes moved (mean over seeds)"),
    (matched_bytes, "matched_bytes", f"Bytes until validation reaches {MATCHED_SHARE:.0%} of centralized's best"),
    (metric_vs_alpha, "metric_vs_alpha", "Test metric against Dirichlet alpha (label skew)"),
    (layer_ablation, "layer_ablation", "Layer-count ablation: test metric and bytes against trainable blocks"),
    (privacy_utility, "privacy_utility", "Privacy-utility: test metric against the epsilon target"),
    (
        frontier,
        "frontier",
        "Depth/rank frontier: test metric against bytes moved to the reported state, Pareto front joined",
    ),
    (gap_vs_trainable, "gap_vs_trainable", "Gap to centralized against the share of parameters trained, per family"),
]


def write_all(runs: list[dict], folder: Path, table: list[dict]) -> list[tuple[str, str]]:
    """Draw every figure the data allows; returns (file stem, caption) of those drawn. Each
    figure gets the runs and the report's main table (computed once: its bootstrap is not free)."""
    made = [(name, caption) for draw, name, caption in FIGURES if draw(runs, folder, table)]
    return made + partition_heatmaps(runs, folder)
