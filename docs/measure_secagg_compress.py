"""The README's secure-aggregation and int8 numbers on the quick grid's setting, measured:

    python docs/measure_secagg_compress.py > results/quick/secagg_compress.md

Re-runs the stored quick-grid cell (i2b2-2010 synthetic, minilm, layerskip top:2, IID, 4 clients,
3 rounds, lr 1e-3, seed 0) three ways in a temporary folder: plain, `--secagg on` and
`--compress int8`, and prints each one's test and validation F1, training loss per round and
bytes uploaded beside the stored run's. Secure aggregation's masks cancel exactly and its
quantisation is fixed point at 32 bits, so its scores should equal the plain run's; int8 changes
the updates, so its losses may move. Scores, losses and byte counts only (about 5 minutes here).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from measure_common import code_label, this_code

from bench.config import ExperimentConfig
from bench.engine.server import run_experiment

STORED = Path("results/quick/runs/i2b2-2010__layerskip-top-2__iid__c4__s0__78401c4736")
VARIANTS = {"plain": {}, "secagg on": {"secagg": "on"}, "compress int8": {"compress": "int8"}}


def summary(run: Path) -> dict:
    final = json.loads((run / "final.json").read_text())
    lines = [json.loads(line) for line in (run / "rounds.jsonl").read_text().splitlines()]
    return {
        "test": final["metric"],
        "val": final["val_metric"],
        "losses": [line["train_loss"] for line in lines],
        "up_mb": sum(line["bytes_up"] for line in lines) / 1e6,
        "machine": f"{final['host']['cpu_model']}, {final['execution'].split(' (')[0]}",
        "made": f"code {code_label(final['git'])}, CPU flags {final['host'].get('cpu_flags_sha')}",
    }


def row(name: str, s: dict, plain: dict) -> str:
    same = "yes" if (s["test"], s["val"]) == (plain["test"], plain["val"]) else "no"
    losses = ", ".join(f"{x:.6f}" for x in s["losses"])
    moved = max(abs(a - b) for a, b in zip(s["losses"], plain["losses"]))
    return f"| {name} | {s['test']:.6f} | {s['val']:.6f} | {same} | {losses} | {moved:.1e} | {s['up_mb']:.1f} |"


def main() -> None:
    cfg = ExperimentConfig.from_dict(json.loads((STORED / "config.json").read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        measured = {}
        for name, changes in VARIANTS.items():
            out = Path(tmp) / name.replace(" ", "-")
            run_experiment(cfg.with_settings(**changes), out, progress=False)
            measured[name] = summary(out)
    commit = this_code()
    print("# Secure aggregation and int8 uploads on the quick grid's setting\n")
    print(f"Made by `python docs/measure_secagg_compress.py` at commit {commit} ({measured['plain']['machine']});")
    print(f"the stored run is `{STORED}`.\n")
    stored = summary(STORED)
    print(f"Stored run: {stored['made']}; today's runs: {measured['plain']['made']}.\n")
    print(
        "| run | test F1 | validation F1 | scores = today's plain | training loss by round | largest loss change | uploaded MB |"
    )
    print("| --- | ---: | ---: | :---: | --- | ---: | ---: |")
    print(row("stored (plain)", stored, measured["plain"]))
    for name, s in measured.items():
        print(row(name, s, measured["plain"]))


if __name__ == "__main__":
    main()
