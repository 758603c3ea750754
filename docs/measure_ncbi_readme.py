"""The README's NCBI numbers that no report table carries, measured from the stored runs:

    python docs/measure_ncbi_readme.py > results/ncbi/readme_measurements.md

(auto:2 against top:2 round by round; compute per round of bottom:2 and top:2; a two-block
round's wall time; each reported seed against its cell's mean under label skew; the sign test of
the tuning seed's lead; the `mu` study's FedAvg at 3e-4 against FedAvg at 1e-4, and each seed's
round to the matched-accuracy target; the `control` study's pooled top:2 against federated top:2
in training loss; each frontier configuration's interval against centralized paired and as two
independent groups; what label skew costs the knee, top:5, against what it costs FedAvg; the
shares top:5 and top:6 save against FedAvg at 3e-4; how often the test-only interval is the wider
one in the main tables; the main table's differences under a Holm correction). Reads
the main, mu, control, frontier and knee studies' summary.csv (the grid's
own summary gains the other studies' cells as they finish) and the runs' rounds.jsonl; counts only."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
from scipy import stats

from bench.report.matched import MATCHED_SHARE, matched_columns
from bench.report.stats import seed_paired_interval
from bench.report.tables import bytes_until

OUT = Path("results/ncbi")


def rounds(run_id: str) -> list[dict]:
    return [json.loads(line) for line in (OUT / "runs" / run_id / "rounds.jsonl").read_text().splitlines()]


def study_rows(study: str) -> list[dict]:
    return [r for r in csv.DictReader((OUT / "studies" / study / "summary.csv").open()) if r["status"] == "ok"]


def round_reached(run_id: str, target: float) -> int | None:
    """The first round whose validation F1 reached `target`; None: never."""
    return next(
        (
            line["round"]
            for line in rounds(run_id)
            if line.get("val_metric") is not None and line["val_metric"] >= target
        ),
        None,
    )


def mu_lines(main_rows: list[dict]) -> list[str]:
    """FedAvg at FedProx's lr (the mu study) against FedAvg at its tuned lr, and the seeds' rounds to the target."""

    def iid(rows: list[dict], method: str) -> list[dict]:
        return [r for r in rows if r["partition"] == "iid" and r["role"] == "reported" and r["method"] == method]

    def by_seed(rows: list[dict]) -> dict[int, dict]:
        return {int(r["seed"]): r for r in rows}

    mu_rows = study_rows("mu")  # FedAvg at FedProx's tuned lr, and FedProx's own runs again
    prox = by_seed(iid(main_rows, "fedprox"))
    avg_tuned = by_seed(iid(main_rows, "fedavg"))
    avg_mu = by_seed(iid(mu_rows, "fedavg"))
    lr = {name: float(cell[1]["lr"]) for name, cell in (("prox", prox), ("tuned", avg_tuned), ("mu", avg_mu))}
    assert lr["mu"] == lr["prox"] != lr["tuned"], lr  # what the mu study is: FedAvg at FedProx's lr
    paired = seed_paired_interval([float(avg_mu[s]["metric"]) - float(avg_tuned[s]["metric"]) for s in (1, 2, 3)])
    central = [float(r["val_metric"]) for r in iid(main_rows, "centralized")]
    target = MATCHED_SHARE * float(np.mean(central))
    lines = [
        f"- FedAvg IID at {lr['mu']:g} (mu study) minus at {lr['tuned']:g} (main), paired over seeds 1-3: {100 * paired['diff']:+.1f} "
        f"[{100 * paired['lo']:+.1f}, {100 * paired['hi']:+.1f}] points",
        f"- matched-accuracy target: {MATCHED_SHARE} x centralized's mean best validation F1 (seeds 1-3) = {target:.4f}",
    ]
    named = (
        (f"FedProx {lr['prox']:g}", prox),
        (f"FedAvg {lr['mu']:g}", avg_mu),
        (f"FedAvg {lr['tuned']:g}", avg_tuned),
    )
    for label, runs in named:
        reached = [round_reached(runs[s]["run_id"], target) for s in (1, 2, 3)]
        short = [f"seed {s} best {float(runs[s]['val_metric']):.4f}" for s, r in zip((1, 2, 3), reached) if r is None]
        lines.append(
            f"- {label}: round reaching the target, seeds 1-3: {', '.join('never' if r is None else str(r) for r in reached)}"
            + (f" ({'; '.join(short)})" if short else "")
        )
    return lines


def control_lines(main_rows: list[dict]) -> list[str]:
    """Top:2 on the pooled data (the control study, one client) against federated top:2: how
    closely each fits its training data at its reported round."""
    pooled = [r for r in study_rows("control") if r["method"] == "layerskip" and r["clients"] == "1"]
    federated = [r for r in main_rows if r["layers"] == "top:2" and r["partition"] == "iid"]
    lines = []
    for label, rows in (("top:2 pooled (1 client)", pooled), ("top:2 federated (4 clients)", federated)):
        reported = sorted((r for r in rows if r["role"] == "reported"), key=lambda r: int(r["seed"]))
        losses = [rounds(r["run_id"])[int(r["best_round"]) - 1]["train_loss"] for r in reported]
        lines.append(
            f"- {label}, IID: training loss at the reported round, seeds {', '.join(r['seed'] for r in reported)}: "
            + ", ".join(f"{x:.4f}" for x in losses)
        )
    return lines


def frontier_lines() -> list[str]:
    """Each complete frontier configuration (IID, 3 reported seeds) against centralized: the
    report's interval, paired by seed, beside Welch's for two independent groups, and the
    seeds' correlation that the pairing draws on."""
    rows = [r for r in study_rows("frontier") if r["role"] == "reported" and r["partition"] == "iid"]
    by_config: dict[str, dict[int, float]] = {}
    for r in rows:
        label = " ".join(filter(None, (r["method"], r["layers"], r["lora_rank"] and "r" + r["lora_rank"])))
        by_config.setdefault(label, {})[int(r["seed"])] = float(r["metric"])
    central = by_config.pop("centralized")
    lines = []
    for label, seeds in sorted(by_config.items()):
        shared = sorted(set(seeds) & set(central))
        if len(shared) < 3:
            continue
        a, b = np.array([seeds[s] for s in shared]), np.array([central[s] for s in shared])
        paired = seed_paired_interval(list(a - b))  # the report's own interval
        welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
        lines.append(
            f"- frontier, {label} - centralized, IID, seeds {', '.join(map(str, shared))}: paired "
            f"[{100 * paired['lo']:+.1f}, {100 * paired['hi']:+.1f}], Welch [{100 * welch.low:+.2f}, {100 * welch.high:+.2f}] "
            f"points; the seeds' correlation {np.corrcoef(a, b)[0, 1]:+.2f}"
        )
    return lines


def knee_lines(main_rows: list[dict]) -> list[str]:
    """What label skew costs the knee (top:5, the `knee` study) and what it costs FedAvg (the main
    study's), each Dirichlet 0.5 minus IID paired by seed, and the difference of the two: does
    freezing lose more to the skew than full-model training does?"""

    def metrics(rows: list[dict], method: str, layers: str, partition: str) -> dict[int, float]:
        return {
            int(r["seed"]): float(r["metric"])
            for r in rows
            if r["role"] == "reported" and (r["method"], r["layers"], r["partition"]) == (method, layers, partition)
        }

    knee, frontier = study_rows("knee"), study_rows("frontier")
    top5 = {p: metrics(knee if p != "iid" else frontier, "layerskip", "top:5", p) for p in ("iid", "dirichlet:0.5")}
    fedavg = {p: metrics(main_rows, "fedavg", "", p) for p in ("iid", "dirichlet:0.5")}
    seeds = sorted(set.intersection(*(set(m) for m in (*top5.values(), *fedavg.values()))))

    def loss(runs: dict) -> list[float]:
        return [runs["dirichlet:0.5"][s] - runs["iid"][s] for s in seeds]

    lines = []
    for label, diffs in (
        ("layerskip top:5", loss(top5)),
        ("fedavg", loss(fedavg)),
        ("layerskip top:5's loss minus fedavg's", [a - b for a, b in zip(loss(top5), loss(fedavg))]),
    ):
        found = seed_paired_interval(diffs)
        lines.append(
            f"- label skew's cost, Dirichlet 0.5 minus IID, paired by seed ({', '.join(map(str, seeds))}), {label}: "
            f"{100 * found['diff']:+.1f} [{100 * found['lo']:+.1f}, {100 * found['hi']:+.1f}] points"
        )
    groups = {"top:5": top5["dirichlet:0.5"], "LoRA r8": metrics(main_rows, "lora", "", "dirichlet:0.5")}
    sds = {name: statistics.stdev(runs.values()) for name, runs in groups.items()}
    wide, narrow = sorted(sds, key=sds.get, reverse=True)
    dfs = (len(groups[wide]) - 1, len(groups[narrow]) - 1)
    ratio = (sds[wide] / sds[narrow]) ** 2
    p = min(1.0, 2 * stats.f.sf(ratio, *dfs))
    lines.append(
        "- label skew, the spread of the reported seeds: "
        + ", ".join(f"{name} sd {sd:.4f}" for name, sd in sds.items())
        + f"; two-sided F test of equal variances F{dfs} = {ratio:.1f}, p = {p:.3f}"
    )
    return lines


def tie_lines(main_rows: list[dict]) -> list[str]:
    """FedAvg's lr is a near tie on validation (1e-4 over 3e-4): top:5's and top:6's savings
    (frontier study) against FedAvg at 3e-4 (the mu study's runs, same seeds), to the
    matched-accuracy target and to the reported state, beside the frontier's own FedAvg at 1e-4."""
    central = [
        {"val_metric": float(r["val_metric"])}
        for r in main_rows
        if r["partition"] == "iid" and r["role"] == "reported" and r["method"] == "centralized"
    ]
    mu = [r for r in study_rows("mu") if (r["method"], r["partition"], r["role"]) == ("fedavg", "iid", "reported")]
    runs = [{"history": rounds(r["run_id"]), "best_round": int(r["best_round"])} for r in mu]
    # the report's rule: medians over seeds, a seed that never got there infinite
    matched = matched_columns(runs, central)
    fedavg = {
        "target": matched["matched_bytes"],
        # the tables' bytes to the reported state: a mean over seeds of the bytes to the best round
        "reported": float(np.mean([bytes_until(run, run["best_round"]) for run in runs])),
    }
    frontier = {
        r["layers"] or r["method"]: r
        for r in csv.DictReader((OUT / "studies" / "frontier" / "tables" / "main.csv").open())
        if r["partition"] == "iid"
    }
    lines = [
        f"- FedAvg IID at {float(mu[0]['lr']):g} (mu study, seeds {', '.join(r['seed'] for r in mu)}): "
        f"{fedavg['target'] / 1e9:.2f} GB to the target {matched['target']:.4f} (median over seeds; reached by "
        f"{matched['matched_seeds'].replace('/', ' of ')}), {fedavg['reported'] / 1e9:.2f} GB to the reported state (mean)"
    ]
    for layers in ("top:5", "top:6"):
        row = frontier[layers]
        lines.append(
            f"- {layers} against it: {float(row['matched_bytes']) / 1e9:.2f} GB to the target, "
            f"{100 * (1 - float(row['matched_bytes']) / fedavg['target']):.0f}% less; to the reported state "
            f"{100 * (1 - float(row['bytes_to_best']) / fedavg['reported']):.0f}% less "
            f"(against the frontier's FedAvg at {float(frontier['fedavg']['lr']):g}: "
            f"{100 * (1 - float(row['matched_bytes']) / float(frontier['fedavg']['matched_bytes'])):.0f}% and "
            f"{100 * (1 - float(row['bytes_to_best']) / float(frontier['fedavg']['bytes_to_best'])):.0f}%)"
        )
    return lines


def wider_lines() -> list[str]:
    """How often the test-only bootstrap interval is wider than the seed-level one, over the
    comparisons (vs FedAvg, vs centralized) that carry both, in the study's and the grid's table."""
    lines = []
    for path in (OUT / "studies" / "main" / "tables" / "main.csv", OUT / "tables" / "main.csv"):
        pairs = [
            (
                float(r[f"{vs}_seed_hi"]) - float(r[f"{vs}_seed_lo"]),
                float(r[f"{vs}_test_hi"]) - float(r[f"{vs}_test_lo"]),
            )
            for r in csv.DictReader(path.open())
            for vs in ("vs_fedavg", "vs_centralized")
            if r[f"{vs}_seed_lo"] and r[f"{vs}_test_lo"]
        ]
        lines.append(
            f"- {path.relative_to(OUT.parent.parent)}: the test-only interval is the wider in "
            f"{sum(test > seed for seed, test in pairs)} of {len(pairs)} comparisons"
        )
    return lines


def _seed_metrics(row: dict) -> dict[int, float]:
    return {int(s): float(m) for s, m in (pair.split(":") for pair in row["seed_metrics"].split())}


def _holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, smallest first."""
    adjusted, running = [], 0.0
    for i, p in enumerate(sorted(pvalues)):
        running = max(running, min(1.0, (len(pvalues) - i) * p))
        adjusted.append(running)
    return adjusted


def holm_lines() -> list[str]:
    """The main table's seed-paired differences (paired t over seeds, from each row's seed_metrics)
    under a Holm correction across all of them, and within each bold README claim's four."""
    rows = list(csv.DictReader((OUT / "studies" / "main" / "tables" / "main.csv").open()))
    by = {(r["method"], r["partition"]): _seed_metrics(r) for r in rows}
    central = next(m for (method, _), m in by.items() if method == "centralized")

    def p_of(mine: dict, theirs: dict) -> float:
        seeds = sorted(set(mine) & set(theirs))
        return float(stats.ttest_rel([mine[s] for s in seeds], [theirs[s] for s in seeds]).pvalue)

    compared = {  # the table's differences: name -> (the row's seed metrics, its reference's)
        f"{r['method']} - {vs[3:]} ({r['partition']})": (
            by[(r["method"], r["partition"])],
            by[("fedavg", r["partition"])] if vs == "vs_fedavg" else central,
        )
        for r in rows
        for vs in ("vs_fedavg", "vs_centralized")
        if r[f"{vs}_seed_lo"]
    }
    table = {name: p_of(*pair) for name, pair in compared.items()}
    skipping = [(f"layerskip {k}:2", p) for k in ("top", "bottom") for p in ("iid", "dirichlet:0.5")]
    groups = {
        "layer-skipping below centralized": {
            f"{m} - centralized ({part})": p_of(by[(m, part)], central) for m, part in skipping
        },
        "LoRA r8 above layer-skipping": {
            f"lora r8 - {m} ({part})": p_of(by[("lora r8", part)], by[(m, part)]) for m, part in skipping
        },
    }
    adjusted = _holm(list(table.values()))
    # a comparison the table shows twice (auto:2's rows repeat top:2's; centralized - FedAvg is in
    # both rows): the same two arms' seed metrics, in either order, counted once
    arms = {name: frozenset(tuple(sorted(m.items())) for m in pair) for name, pair in compared.items()}
    distinct = {arm: table[name] for name, arm in arms.items()}
    once = _holm(list(distinct.values()))
    lines = [
        f"- Holm over the main table's {len(table)} seed-paired differences: {sum(a < 0.05 for a in adjusted)} "
        f"below 0.05 (smallest adjusted p {adjusted[0]:.3f}; unadjusted, {sum(p < 0.05 for p in table.values())} below 0.05)",
        f"- of those, {len(distinct)} distinct comparisons (the rest repeat one); Holm over them: "
        f"{sum(a < 0.05 for a in once)} below 0.05 (smallest adjusted p {once[0]:.3f})",
    ]
    for claim, ps in groups.items():
        lines.append(f"- Holm within '{claim}' (4 differences): largest adjusted p {max(_holm(list(ps.values()))):.3f}")
    marginal = {name: p for found in (table, *groups.values()) for name, p in found.items() if 0.01 <= p < 0.05}
    lines.append("- paired-t p in [0.01, 0.05): " + "; ".join(f"{n} {p:.3f}" for n, p in sorted(marginal.items())))
    return lines


def tuning_minus_seed_two(skew: dict) -> str:
    """Under label skew, the tuning seed (0) minus seed 2 per cell: is seed 0 better, or is seed 3's
    draw of the hospitals the hard one?"""
    zero_two = {k: v["tuning"][0][1] - dict(v["reported"])[2] for k, v in skew.items() if "tuning" in v}
    by_cell = ", ".join(
        f"{' '.join(filter(None, (k[0], k[1], k[3] and 'r' + k[3])))} {100 * d:+.1f}" for k, d in zero_two.items()
    )
    return (
        f"- label skew, the tuning seed (0) minus seed 2: {100 * np.mean(list(zero_two.values())):+.1f} points on average "
        f"over {len(zero_two)} cells ({by_cell})"
    )


def main() -> None:
    rows = study_rows("main")
    reported = [r for r in rows if r["role"] == "reported"]
    lines = ["# NCBI measurements quoted in the README", "", "Made by `python docs/measure_ncbi_readme.py`.", ""]

    same = []
    for a in (r for r in reported if r["layers"] == "auto:2"):
        b = next(
            r for r in reported if r["layers"] == "top:2" and (r["partition"], r["seed"]) == (a["partition"], a["seed"])
        )
        ra, rb = rounds(a["run_id"]), rounds(b["run_id"])
        keys = ("val_metric", "train_loss")
        same.append(len(ra) == len(rb) and all(x[k] == y[k] for x, y in zip(ra, rb) for k in keys))
    lines.append(
        f"- auto:2 repeats top:2 round for round (validation F1 and training loss, exactly): {sum(same)} of {len(same)} seed x partition pairs"
    )

    for layers in ("top:2", "bottom:2"):
        compute = [line["compute_s"] for r in reported if r["layers"] == layers for line in rounds(r["run_id"])]
        lines.append(
            f"- {layers}: median compute per round {statistics.median(compute):.1f} s over {len(compute)} rounds (4 clients and validation)"
        )
    walls = [
        line["wall_s"] for r in rows if r["layers"] in ("top:2", "bottom:2", "auto:2") for line in rounds(r["run_id"])
    ]
    lo, hi = np.percentile(walls, [5, 95])
    lines.append(
        f"- a two-block round's wall time, 5th to 95th percentile: {lo:.0f} to {hi:.0f} s over {len(walls)} rounds (reported seeds and each cell's chosen tuning run)"
    )

    cells: dict[tuple, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        if r["layers"] != "auto:2":  # repeats top:2
            key = (r["method"], r["layers"], r["partition"], r["lora_rank"])
            cells.setdefault(key, {}).setdefault(r["role"], []).append((int(r["seed"]), float(r["metric"])))
    skew = {k: v for k, v in cells.items() if k[2] == "dirichlet:0.5" and len(v.get("reported", [])) == 3}
    for seed in (1, 2, 3):
        gaps = [100 * (dict(v["reported"])[seed] - np.mean([m for _, m in v["reported"]])) for v in skew.values()]
        lines.append(
            f"- label skew, seed {seed} against its cell's reported mean: {min(gaps):+.1f} to {max(gaps):+.1f} points over {len(gaps)} cells"
        )
    lines.append(tuning_minus_seed_two(skew))
    leads = [
        v["tuning"][0][1] - np.mean([m for _, m in v["reported"]])
        for v in cells.values()
        if "tuning" in v and len(v.get("reported", [])) == 3
    ]
    above = sum(x > 0 for x in leads)
    p = stats.binomtest(above, len(leads), 0.5, alternative="greater").pvalue
    lines.append(
        f"- the tuning seed above its cell's reported mean in {above} of {len(leads)} cells: one-sided sign test p = {p:.2f}"
    )
    lines += mu_lines(rows) + control_lines(rows) + frontier_lines() + knee_lines(rows)
    lines += tie_lines(rows) + wider_lines() + holm_lines()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
