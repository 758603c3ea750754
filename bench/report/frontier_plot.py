"""The frontier's two figures (bench.report.frontier): metric against bytes moved to the reported
state with the Pareto front, and the gap to centralized against the share of parameters trained,
one line per family. One panel per task x partition that asks the question."""

from __future__ import annotations

from bench.report.frontier import WITHIN, family, frontier_sets, named, pareto, why_unranked
from bench.report.label_place import place_labels
from bench.report.plotting import pyplot, save

# one marker and colour per family, the same in both figures; the front is drawn in black
STYLES = {
    "layerskip top": ("^", "C0"),
    "layerskip bottom": ("v", "C1"),
    "layerskip auto": ("D", "C2"),
    "lora": ("s", "C4"),
    "fedavg": ("o", "C7"),
    "fedprox": ("P", "C5"),
}
OTHER = ("o", "C8")


def _style(name: str) -> tuple[str, str]:
    return STYLES.get(name, OTHER)


def _half(row: dict) -> float:
    """Error-bar half-width: the seed-level 95% half-width (0 for a single seed: no bar)."""
    return row["metric_ci95"] or 0.0


def _panels(table):
    """(figure, [(axis, frontier set)]): one panel per task x partition that asks the question; None if none does."""
    sets = frontier_sets(table)
    if not sets:
        return None
    fig, axes = pyplot().subplots(1, len(sets), figsize=(7.5 * len(sets), 5), squeeze=False)
    return fig, list(zip(axes[0], sets))


def frontier(runs, folder, table) -> bool:
    """x: bytes to the reported state (log), y: test metric with its seed-level interval; the
    front as a step; centralized as a band with a dashed line WITHIN below it."""
    if (drawn := _panels(table)) is None:
        return False
    fig, panels = drawn
    for ax, found in panels:
        central = found["central"]
        ax.axhspan(
            central["metric"] - _half(central),
            central["metric"] + _half(central),
            color="0.85",
            label="centralized (95% CI)",
        )
        ax.axhline(central["metric"], color="0.4", lw=1)
        ax.axhline(
            central["metric"] - WITHIN, color="0.4", ls="--", lw=1, label=f"centralized - {100 * WITHIN:.0f} pts"
        )
        labels = _configurations(ax, found["configs"])
        front = pareto(found["configs"])
        # a step: the best metric within a budget holds from one front point's bytes to the next's
        ax.step(
            [r["bytes_to_best"] for r in front],
            [r["metric"] for r in front],
            where="post",
            color="k",
            lw=1.2,
            label="Pareto front (by means)",
        )
        ax.set_xscale("log")
        ax.set_xlabel("bytes moved until the reported state (log; mean over reported seeds, bars: least to most)")
        ax.set_ylabel("test metric (mean over reported seeds; bars: 95% CI of the mean)")
        ax.set_title(
            f"{named(found, [f for _, f in panels])} ({found['partition']}); hollow: not ranked (see the table)"
        )
        ax.grid(alpha=0.3)
        ax.legend(handles=_legend(ax, found["configs"]), fontsize="x-small", loc="lower right")
        place_labels(ax, labels)
    save(fig, folder, "frontier")
    return True


def _bytes_spread(row: dict) -> list[list[float]] | None:
    """Horizontal bar: the least and most bytes a seed moved to its reported state (seeds stop at
    different rounds), around the mean; none where the row lacks them."""
    if row.get("bytes_to_best_min") is None:
        return None
    return [[row["bytes_to_best"] - row["bytes_to_best_min"]], [row["bytes_to_best_max"] - row["bytes_to_best"]]]


def _configurations(ax, configs: list[dict]) -> list[tuple[float, float, str]]:
    """One marker per configuration with bytes, its family's shape and colour; hollow where it is
    not ranked (fewer than 3 reported seeds); one label per point, naming every configuration
    there (auto:2 that chose the top blocks is top:2, run for run): -> the labels, placed once
    the axis is done."""
    at: dict[tuple, list[str]] = {}
    labels = []
    for r in configs:
        if r["bytes_to_best"]:
            at.setdefault((r["bytes_to_best"], r["metric"]), []).append(r["method"])
    for r in configs:
        if not r["bytes_to_best"]:
            continue  # no per-round bytes: tabulated and named in the headline, not placed
        marker, colour = _style(family(r)[0])
        ax.errorbar(
            r["bytes_to_best"],
            r["metric"],
            xerr=_bytes_spread(r),
            yerr=_half(r),
            fmt=marker,
            color=colour,
            mfc="none" if why_unranked(r) else colour,
            ms=6,
            capsize=3,
        )
        names = at.pop((r["bytes_to_best"], r["metric"]), None)
        if names:  # the point's first configuration labels it for all
            labels.append((r["bytes_to_best"], r["metric"], " = ".join(names)))
    return labels


def _legend(ax, configs: list[dict]) -> list:
    """The axis' own labelled artists, then one entry per family drawn."""
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    families = sorted({family(r)[0] for r in configs})
    return handles + [
        Line2D([], [], marker=_style(name)[0], color=_style(name)[1], ls="", label=name) for name in families
    ]


def gap_vs_trainable(runs, folder, table) -> bool:
    """Gap to centralized (seed-level interval) against the percentage of parameters trained,
    one line per family with sizes (top:k, bottom:k, LoRA rank), other configurations as points;
    hollow where not ranked."""
    if (drawn := _panels(table)) is None:
        return False
    fig, panels = drawn
    for ax, found in panels:
        lines: dict[str, list[dict]] = {}
        sizes: list[tuple[float, float, str]] = []  # labels: each point's k or rank
        for r in found["configs"]:
            if r["vs_centralized_seed"]:
                lines.setdefault(family(r)[0], []).append(r)
        for name, rows in sorted(lines.items()):
            rows.sort(key=lambda r: r["trainable_pct"])
            diffs = [100 * r["vs_centralized_seed"]["diff"] for r in rows]
            below = [100 * (r["vs_centralized_seed"]["diff"] - r["vs_centralized_seed"]["lo"]) for r in rows]
            above = [100 * (r["vs_centralized_seed"]["hi"] - r["vs_centralized_seed"]["diff"]) for r in rows]
            ax.errorbar(
                [r["trainable_pct"] for r in rows],
                diffs,
                yerr=[below, above],
                fmt=_style(name)[0] + ("-" if len(rows) > 1 else ""),
                color=_style(name)[1],
                capsize=3,
                label=name,
            )
            hollow = [(r["trainable_pct"], d) for r, d in zip(rows, diffs) if why_unranked(r)]
            if hollow:  # not ranked (still running, too few seeds), as the frontier figure shows it
                ax.plot(*zip(*hollow), _style(name)[0], color=_style(name)[1], mfc="white", ls="", zorder=3)
            sizes += [(r["trainable_pct"], d, str(family(r)[1])) for r, d in zip(rows, diffs) if family(r)[1]]
        ax.axhline(0, color="0.4", lw=1)
        ax.axhline(-100 * WITHIN, color="0.4", ls="--", lw=1, label=f"-{100 * WITHIN:.0f} pts")
        ax.set_xscale("log")
        ax.set_xlabel("parameters trained (% of the model, log)")
        ax.set_ylabel("Δ vs centralized, points (95% CI over seeds)")
        ax.set_title(
            f"{named(found, [f for _, f in panels])} ({found['partition']}): gap to centralized by depth and rank"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
        place_labels(ax, sizes)
    save(fig, folder, "gap_vs_trainable")
    return True
