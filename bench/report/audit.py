"""Checks a reviewer would make before trusting a result, written into the report.

- A run whose test predictions are (nearly) constant (not one entity found; one class for every
  admission; no label at all) scored the majority class: its metric says the model learned
  nothing, not how good the method is. Found from the stored per-example test items, so counts only.
- A tuned value at the edge of its swept range: the best value may lie outside the range, so
  the method may be under-tuned compared with one whose optimum is inside. A sweep whose
  points all tied chose nothing: the first value won the tie. A sweep point that reached the
  round cap still moving was compared before it finished. Where the edge was probed one step
  beyond (bench.protocol.edge_probe, `--probe-edges`), the check says whether the choice held.
- A reported round that beat the run's best earlier round on validation by less than min_delta
  is a near tie between rounds (best-round selection takes any strict gain).
- A choice that beat the runner-up on validation by less than min_delta (what early stopping
  counts as no gain) is a near tie: a rerun could choose the other value, whose test score may
  differ by more than the margin (on NCBI, 3.4 points for the same blocks).
"""

from __future__ import annotations

from pathlib import Path

from bench.protocol import edge_probe
from bench.report import tuning_bias
from bench.report.sweep_files import read_probes, read_tuning
from bench.store import load_runs


def _no_entity_found(items: list) -> str | None:
    tp, fp, fn = (sum(row[i] for row in items) for i in range(3))
    if tp:
        return None
    return f"finds none of the {fn} test entities ({fp} spans predicted; O, the majority class, elsewhere)"


def _one_class(items: list) -> str | None:
    predicted = {p for _, p in items}
    return f"predicts class {predicted.pop()} for every test example" if len(predicted) == 1 else None


def _no_label(items: list) -> str | None:
    n = len(items[0]) // 2
    return "predicts no label for any test example" if not any(any(row[n:]) for row in items) else None


CONSTANT_PREDICTION = {"ner": _no_entity_found, "cls": _one_class, "multilabel": _no_label}  # by task kind


def constant_prediction(kind: str, items: list | None) -> str | None:
    """Why a run's test predictions are constant, or None (also when there are no items).
    `items` is test_items.json: one list per evaluated model (local-only runs have one per
    client); the run is constant when every model's predictions are."""
    if not items or not all(items):
        return None
    reasons = [CONSTANT_PREDICTION[kind](model_items) for model_items in items]
    return reasons[0] if all(reasons) else None


def _last_loss(history: list[dict]) -> str:
    losses = [h["train_loss"] for h in history if h.get("train_loss") is not None]
    return f"; last training loss {losses[-1]:.3f}" if losses else ""


def _constant(run: dict) -> str | None:
    """Why a finished run's test predictions are constant (bench.store.load_runs records)."""
    if run.get("status") != "ok":
        return None
    return constant_prediction(run.get("task_kind", "ner"), run.get("test_items"))


def constant_runs(runs: list[dict]) -> list[str]:
    """One line per run (final.json records, as bench.store.load_runs gives them) whose test
    predictions are constant."""
    return [
        f"- `{run['run_id']}` {why} (metric {run['metric']:.3f}, lr {run['config'].get('lr')}"
        f"{_last_loss(run.get('history') or [])})."
        for run in runs
        if (why := _constant(run))
    ]


def constant_points(rows: list[dict], runs_dir: Path, reported: set[str]) -> list[str]:
    """The same check on the tuning sweep's points (tuning.csv rows) not already in the report
    (`reported`): a sweep point stuck at the majority class is why it was not chosen, and says
    the range reached a value that breaks training."""

    finished = [
        rid
        for rid in dict.fromkeys(r["run_id"] for r in rows)
        if rid not in reported and (runs_dir / rid / "final.json").is_file()
    ]
    lines = []
    for run in load_runs(runs_dir, finished):
        if why := _constant(run):
            point = ", ".join(f"{r['setting']} {r['value']}" for r in rows if r["run_id"] == run["run_id"])
            stop = ", then stopped early" if run.get("stopped_early") else ""
            lines.append(
                f"- sweep point `{run['run_id']}` ({point}) {why}: validation metric {run.get('val_metric', 0):.3f} "
                f"for {run.get('rounds_run')} rounds{stop}{_last_loss(run['history'])}."
            )
    return lines


def _where(row: dict) -> str:
    """'- task method [layers] [rN] (partition): ' for a sweep record's row; LoRA by its rank, as
    the tables name it (without it, r32's line read as r8's, whose lr differs)."""
    rank = f"r{row['lora_rank']}" if row.get("lora_rank") else ""
    named = " ".join(x for x in (row["task"], row["method"], row["layers"], rank) if x)
    return f"- {named} ({row['partition']}): "


def edge_choices(rows: list[dict], probes: dict[tuple[str, str], dict] | None = None) -> list[str]:
    """One line per group and setting whose choice says little: every value tied on validation
    (the choice is the first tried), or the chosen numeric value is the smallest or largest; with
    what its edge probe found (`probes`, read_probes), where it has run."""
    probes = probes or {}
    lines = []
    for group in dict.fromkeys(r["group"] for r in rows):
        mine = [r for r in rows if r["group"] == group]
        for setting in dict.fromkeys(r["setting"] for r in mine):
            points = [r for r in mine if r["setting"] == setting]
            tried = sorted({r["value"] for r in points if isinstance(r["value"], int | float)})
            chosen = [r for r in points if r["chosen"]]
            scores = {r["val_metric"] for r in points}
            if len(tried) < 3 or not chosen or None in scores:
                continue
            c = chosen[0]
            where = _where(c)
            if len(scores) == 1:
                lines.append(
                    where + f"every {setting} tried ({', '.join(map(str, tried))}) tied on validation "
                    f"({c['val_metric']:.3f}): {c['value']} is the first tried, not an optimum."
                )
            elif c["value"] in (tried[0], tried[-1]):
                side = "smallest" if c["value"] == tried[0] else "largest"
                lines.append(
                    where + f"chose {setting} {c['value']}, the {side} value tried "
                    f"({', '.join(map(str, tried))}); " + _probed(c, probes.get((group, setting)))
                )
    return lines


def _probed(chosen: dict, probe: dict | None) -> str:
    """What the edge probe (bench.protocol.edge_probe) found for a choice at the edge of its range."""
    if probe is None or probe["probe_val_metric"] is None or float(probe["chosen"]) != chosen["value"]:
        return "the best may lie outside the range (`run_all.py --probe-edges` runs one step beyond)."
    held = edge_probe.verdict(chosen["val_metric"], probe["probe_val_metric"]) == "choice holds"
    found = (
        f"one step beyond, {probe['probe']}, scored validation {probe['probe_val_metric']:.3f} "
        f"against {chosen['val_metric']:.3f}"
    )
    return found + (
        ": the choice holds."
        if held
        else ": the best lies outside the range, so this method is under-tuned "
        "against its peers by the equal budget (its numbers are a lower bound)."
    )


def near_ties(rows: list[dict], margin: float) -> list[str]:
    """One line per group whose choice beat the runner-up on validation by less than `margin`
    (the runs' min_delta: what early stopping counts as no gain). Such a choice is a coin toss
    between two values whose test scores may differ by more than the margin."""
    lines = []
    for group in dict.fromkeys(r["group"] for r in rows):
        mine = sorted(
            {r["run_id"]: r for r in rows if r["group"] == group and r["val_metric"] is not None}.values(),
            key=lambda r: -r["val_metric"],
        )
        all_tied = len({r["val_metric"] for r in mine}) == 1  # edge_choices names those
        if (
            len(mine) < 2
            or all_tied
            or not mine[0]["chosen"]
            or mine[0]["val_metric"] - mine[1]["val_metric"] >= margin
        ):
            continue
        won, second = mine[0], mine[1]
        lines.append(
            _where(won) + f"{won['setting']} "
            f"{won['value']:g} beat {second['value']:g} on validation "
            f"by {won['val_metric'] - second['val_metric']:.4f} "
            f"({won['val_metric']:.3f} against {second['val_metric']:.3f}), less than min_delta {margin:g}: a near "
            "tie, and the runner-up's test score may differ."
        )
    return lines


def _capped(row: dict) -> bool:
    """The round cap ended the point (its label; a file older than the label: its own flag)."""
    return row["convergence"] == "capped" if row.get("convergence") else row.get("converged") is False


def unconverged_points(rows: list[dict]) -> list[str]:
    """One line per sweep point that reached its round cap still moving: the choice compared it
    at the cap, and with more rounds it might have won."""
    lines = []
    for run_id in dict.fromkeys(r["run_id"] for r in rows if _capped(r)):
        r = next(x for x in rows if x["run_id"] == run_id)
        chosen = next((x for x in rows if x["group"] == r["group"] and x["chosen"]), None)
        if chosen is None or r["val_metric"] is None:
            continue
        point = ", ".join(
            f"{x['setting']} {x['value']:g}" if isinstance(x["value"], float) else f"{x['setting']} {x['value']}"
            for x in rows
            if x["run_id"] == run_id
        )
        lines.append(
            _where(r) + f"sweep point {point} had not "
            f"converged after {r['rounds_run']} rounds (validation {r['val_metric']:.3f}, still moving; the "
            f"choice, {chosen['val_metric']:.3f}, compared it at the round cap)."
        )
    return lines


def _hairline(run: dict, margin: float) -> tuple[int, int, float] | None:
    """(best round, the earlier round it beat, by how much) where that gain is below `margin`."""
    scores = {h["round"]: h["val_metric"] for h in run.get("history", []) if _finite(h.get("val_metric"))}
    best = run.get("best_round")
    earlier = {r: v for r, v in scores.items() if r < (best or 0)}
    if best not in scores or not earlier:
        return None
    runner_up = max(earlier, key=earlier.get)
    gain = scores[best] - earlier[runner_up]
    return (best, runner_up, gain) if gain < margin else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")


def _min_delta(run: dict, default: float) -> float:
    value = run.get("config", {}).get("min_delta")
    return default if value is None else value


def hairline_best_rounds(runs: list[dict], margin: float) -> list[str]:
    """Reported runs whose reported round beat the best earlier round on validation by less than
    min_delta: a near tie between rounds, whose test scores can differ by more than the margin
    (on NCBI a gain of 6e-6 moved a LoRA seed's reported round 17 -> 21 and test F1 0.708 -> 0.732)."""
    reported = [r for r in runs if r.get("status") == "ok" and r.get("role") != "tuning"]
    hits = [(r["run_id"], found) for r in reported if (found := _hairline(r, _min_delta(r, margin)))]
    if not hits:
        return []
    named = ", ".join(f"`{run_id}` (round {b} over {e}, +{gain:.1e})" for run_id, (b, e, gain) in hits[:8])
    return [
        f"- {len(hits)} of {len(reported)} reported runs took their reported round by a validation gain below "
        "their min_delta over an earlier round: a near tie between rounds, so a rerun could report the "
        f"other, whose test score may differ by more than the margin (the seed-level intervals carry this noise: "
        f"each seed's reported round is part of its draw): {named}" + (", ..." if len(hits) > 8 else "")
    ]


def section(runs: list[dict], tuning_csv: Path, runs_dir: Path, own_sweeps_only: bool = False) -> list[str]:
    """The report's "Checks" section from the stored results (empty when nothing was found).
    `own_sweeps_only` (a study's report, reading the grid's record): only the sweeps one of
    whose points is among this report's runs."""
    reported = {r["run_id"] for r in runs}
    rows = read_tuning(tuning_csv)
    if own_sweeps_only:
        mine = {r["group"] for r in rows if r["run_id"] in reported}
        rows = [r for r in rows if r["group"] in mine]
    probes = read_probes(tuning_csv.parent / "edge_probes.csv")
    margin = max((r["config"].get("min_delta") or 0.0 for r in runs), default=0.0)
    found = (
        constant_runs(runs)
        + constant_points(rows, runs_dir, reported)
        + edge_choices(rows, probes)
        + near_ties(rows, margin)
        + unconverged_points(rows)
        + hairline_best_rounds(runs, margin)
        + tuning_bias.check(runs)
    )
    if not found:
        return []
    return [
        "## Checks",
        "",
        "What a reviewer would ask about before trusting these numbers (bench.report.audit):",
        "",
        *found,
        "",
    ]
