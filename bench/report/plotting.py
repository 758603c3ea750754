"""Plot plumbing shared by the report's figures: the matplotlib handle, line labels, grouping of
runs into cells, axis styling and saving."""

from __future__ import annotations

from pathlib import Path

from bench.report.tables import cell_key, method_label


def pyplot():
    """matplotlib on the Agg backend, imported only when a figure is drawn."""
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
    "dp_unit_holders",
    "model",
    "clients",
    "client_budgets",
    "compress",
)


def labeller(runs: list[dict], x_settings: tuple[str, ...] = ()):
    """Label a line by its method and by every setting that varies among the figure's runs (the
    x-axis and the seed aside), so no two different cells share a label."""
    varying = [k for k in LABEL_SETTINGS if k not in x_settings and len({str(r["config"].get(k)) for r in runs}) > 1]

    def label(run: dict) -> str:
        extra = ", ".join(f"{k}={run['config'].get(k)}" for k in varying if k != "partition")
        part = f" ({run['config']['partition']})" if "partition" in varying else ""
        return f"{method_label(run)}{part}" + (f" [{extra}]" if extra else "")

    return label


def cells(runs: list[dict], x_settings: tuple[str, ...] = ()) -> dict[tuple, list[dict]]:
    """Runs grouped by their whole cell except the seed and the x-axis settings."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = tuple((k, v) for k, v in cell_key(r) if k not in x_settings and k != "lr")
        groups.setdefault(key, []).append(r)
    return groups


def save(fig, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        savefig(fig, folder / f"{name}.{ext}")
    pyplot().close(fig)


def savefig(fig, path: str | Path) -> None:
    """At 120 dpi; a PDF without its creation date, so a rebuilt report whose numbers did not change
    leaves it byte-identical."""
    fig.savefig(path, dpi=120, **({"metadata": {"CreationDate": None}} if Path(path).suffix == ".pdf" else {}))


def style(ax, title: str, xlabel: str, ylabel: str, logx: bool) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")


def by_task(runs: list[dict]) -> dict[str, list[dict]]:
    tasks: dict[str, list[dict]] = {}
    for r in runs:
        tasks.setdefault(r["config"]["task"], []).append(r)
    return dict(sorted(tasks.items()))
