"""Tables and figures, built from stored results only (runs/*/final.json, rounds.jsonl)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from bench.store import atomic_write_text

SUMMARY_COLUMNS = ["task", "method", "layers", "partition", "alpha", "clients", "seed", "epsilon", "metric_name", "metric",
                   "bytes_up_total", "bytes_down_total", "trainable_params", "total_params", "wall_s", "status", "rounds", "blocks", "run_id"]  # fmt: skip


def load_runs(out: Path, run_ids: list[str] | None = None) -> list[dict]:
    """One record per run folder: its final.json (or failed.json) and its rounds."""
    runs = []
    for folder in sorted((out / "runs").iterdir()):
        if run_ids is not None and folder.name not in run_ids:
            continue
        final, failed = folder / "final.json", folder / "failed.json"
        if final.is_file():
            record = json.loads(final.read_text())
        elif failed.is_file():
            record = json.loads(failed.read_text())
        else:
            continue  # interrupted: neither finished nor failed
        rounds = folder / "rounds.jsonl"
        record["history"] = [json.loads(x) for x in rounds.read_text().splitlines()] if rounds.is_file() else []
        partition = folder / "partition.json"
        record["partition_description"] = json.loads(partition.read_text()) if partition.is_file() else None
        record["run_id"] = folder.name
        runs.append(record)
    return runs


def summary_row(run: dict) -> dict:
    cfg = run["config"]
    part = cfg["partition"]
    alpha = float(part.split(":")[1]) if ":" in part else None
    row = {"task": cfg["task"], "method": cfg["method"], "layers": cfg.get("layers") or "", "partition": part,
           "alpha": alpha, "clients": cfg["clients"], "seed": cfg["seed"], "epsilon": run.get("epsilon"),
           "status": run.get("status", "failed"), "run_id": run["run_id"],
           "blocks": " ".join(map(str, (run.get("method_info") or {}).get("blocks", [])))}  # fmt: skip
    for key in ("metric_name", "metric", "bytes_up_total", "bytes_down_total", "trainable_params", "total_params", "wall_s", "rounds"):
        row[key] = run.get(key)
    return row


def method_label(row: dict) -> str:
    """e.g. 'layerskip top:2'; an auto:K run also names the blocks its probe chose."""
    label = f"{row['method']} {row['layers']}".strip()
    return f"{label} [{row['blocks']}]" if row["layers"].startswith("auto:") else label


def main_table(rows: list[dict]) -> list[dict]:
    """Per task, method and partition: metric mean +- std over seeds, bytes, and the comparisons."""
    ok = [r for r in rows if r["status"] == "ok"]
    groups: dict[tuple, list[dict]] = {}
    for r in ok:
        groups.setdefault((r["task"], method_label(r), r["partition"], r["epsilon"]), []).append(r)
    mean = {k: float(np.mean([r["metric"] for r in v])) for k, v in groups.items()}
    table = []
    for (task, label, part, eps), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        fedavg = groups.get((task, "fedavg", part, eps))
        central = [v for k, v in mean.items() if k[0] == task and k[1] == "centralized" and k[3] == eps]
        rounds = max(1, int(np.mean([r["rounds"] or 1 for r in rs])))
        total = float(np.mean([r["bytes_up_total"] + r["bytes_down_total"] for r in rs]))
        fed_total = float(np.mean([r["bytes_up_total"] + r["bytes_down_total"] for r in fedavg])) if fedavg else None
        metrics = [r["metric"] for r in rs]
        table.append({
            "task": task, "method": label, "partition": part, "epsilon": eps, "seeds": len(rs),
            "metric": mean[(task, label, part, eps)], "metric_std": float(np.std(metrics)) if len(rs) > 1 else 0.0,
            "bytes_per_round": total / rounds, "bytes_total": total,
            "reduction_vs_fedavg_pct": 100 * (1 - total / fed_total) if fed_total and total else None,
            "gap_to_centralized_pts": 100 * (central[0] - mean[(task, label, part, eps)]) if central else None,
            "trainable_pct": 100 * rs[0]["trainable_params"] / rs[0]["total_params"],
        })  # fmt: skip
    return table


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "bytes":
        for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if value >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} B"
    return {"pct": f"{value:.1f}", "pts": f"{value:+.1f}", "metric": f"{value:.3f}"}[kind]


DISPLAY = [("task", "task", None), ("method", "method", None), ("partition", "partition", None),
           ("metric", "metric (mean ± std)", "metric"), ("bytes_per_round", "bytes/round", "bytes"),
           ("bytes_total", "total bytes", "bytes"), ("reduction_vs_fedavg_pct", "reduction vs fedavg (%)", "pct"),
           ("gap_to_centralized_pts", "below centralized (pts)", "pts"), ("trainable_pct", "trainable (%)", "pct")]  # fmt: skip


def display_rows(table: list[dict]) -> list[list[str]]:
    out = []
    for t in table:
        cells = []
        for key, _, kind in DISPLAY:
            if key == "metric":  # a spread needs more than one seed
                spread = f" ± {t['metric_std']:.3f}" if t["seeds"] > 1 else " (1 seed)"
                cells.append(f"{t['metric']:.3f}{spread}")
            else:
                cells.append(_fmt(t[key], kind) if kind else str(t[key]))
        out.append(cells)
    return out


def markdown(table: list[dict]) -> str:
    head = [h for _, h, _ in DISPLAY]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in display_rows(table)]
    return "\n".join(lines) + "\n"


def latex(table: list[dict]) -> str:
    esc = lambda s: s.replace("%", r"\%").replace("_", r"\_").replace("±", r"$\pm$")  # noqa: E731
    lines = [r"\begin{tabular}{lll" + "r" * (len(DISPLAY) - 3) + "}", r"\toprule",
             " & ".join(esc(h) for _, h, _ in DISPLAY) + r" \\", r"\midrule"]  # fmt: skip
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in display_rows(table)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_report(out: Path, run_ids: list[str] | None = None) -> Path:
    """summary.csv, tables/, figures/ and report.md from what is stored under `out`."""
    from bench import figures

    runs = load_runs(out, run_ids)
    rows = [summary_row(r) for r in runs]
    atomic_write_text(out / "summary.csv", to_csv(rows, SUMMARY_COLUMNS))
    table = main_table(rows)
    atomic_write_text(out / "tables" / "main.md", markdown(table))
    atomic_write_text(out / "tables" / "main.csv", to_csv(table, list(table[0]) if table else ["task"]))
    atomic_write_text(out / "tables" / "main.tex", latex(table))
    made = figures.write_all([r for r in runs if r.get("status") == "ok"], out / "figures")
    failed = [r for r in rows if r["status"] != "ok"]
    text = [f"# Results: {out.name}", "", f"{len(rows)} runs, {len(failed)} failed.", "", narrative(table), "",
            "## Main table", "", markdown(table), "## Figures", ""]  # fmt: skip
    text += [f"![{caption}](figures/{name}.png)  \n*{caption}*\n" for name, caption in made]
    if failed:
        text += ["## Failed runs", ""] + [f"- `{r['run_id']}`: see runs/{r['run_id']}/failed.json" for r in failed]
    atomic_write_text(out / "report.md", "\n".join(text) + "\n")
    return out / "report.md"


def narrative(table: list[dict]) -> str:
    """One paragraph of what the numbers say, computed from the table."""
    sentences = []
    for t in table:
        if not t["method"].startswith("layerskip"):
            continue
        bits = [f"On {t['task']} ({t['partition']}), {t['method']} scored {t['metric']:.3f}"]
        if t["gap_to_centralized_pts"] is not None:
            bits.append(f"{t['gap_to_centralized_pts']:.1f} points below centralized")
        if t["reduction_vs_fedavg_pct"] is not None:
            bits.append(f"while moving {100 - t['reduction_vs_fedavg_pct']:.0f}% of FedAvg's bytes")
        sentences.append(", ".join(bits) + ".")
    if not sentences:
        return "No layer-skipping runs in this grid."
    return " ".join(sentences)
