"""Same seed, same numbers, for every registered method (#31): each case run in two fresh
processes, the second in the reverse order, on the serial and the local-process backends.

The reverse order is the check that a cell's numbers do not depend on what ran before it in the
same process (LoRA's adapters were drawn from torch's global generator, so they did): with the
seeded scope around `configure` removed from bench/engine/worker.py, the LoRA case differs here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.registry import METHODS

# every registered method with its defaults, plus layer-skipping's probe (its own random draws)
CASES = [(name, None) for name in METHODS.names()] + [("layerskip", "auto:1")]

RUN_CASES = """
import json, sys
from pathlib import Path
from bench.config import ExperimentConfig
from bench.engine.server import run_experiment

corpus, backend, out, cases = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
found = {}
for method, layers in cases:
    cfg = ExperimentConfig(task="i2b2-2010", method=method, layers=layers, model="tiny-bert", clients=2, rounds=2 if backend == "serial" else 1,
                           seed=5, lr=1e-2, data_dir=corpus, backend=backend, workers=2 if backend == "local" else 1,
                           max_length=32, test_every=1, train_subsample=60, cpus_per_worker=1)
    folder = out / f"{method}-{layers}"
    final = run_experiment(cfg, folder, progress=False)
    lines = [json.loads(x) for x in (folder / "rounds.jsonl").read_text().splitlines()]
    found[f"{method} {layers}"] = {
        "train_loss": [x["train_loss"] for x in lines], "val": [x["val_metric"] for x in lines],
        "test": [x["metric"] for x in lines], "metric": final["metric"],
        "bytes": [final["bytes_up_total"], final["bytes_down_total"]],
    }
print(json.dumps(found))
"""


def start_cases(corpus, backend: str, out, cases) -> subprocess.Popen:
    """The cases in a fresh process, with a token and prefix cache of its own, so two can run at
    once, each on one torch thread (two processes of two OpenMP threads on this 2-core machine
    spin at each other's barriers: the serial case took 21-38 s so, 12-14 s on one thread each);
    its output goes to files in `out`, so neither waits on a full pipe."""
    out.mkdir(parents=True)
    with open(out / "stdout", "w") as stdout, open(out / "stderr", "w") as stderr:  # the child keeps its own copies
        return subprocess.Popen(
            [sys.executable, "-c", RUN_CASES, str(corpus), backend, str(out), json.dumps(cases)],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "BENCH_CACHE": str(out / "cache")},
        )


def finished(proc: subprocess.Popen, out) -> dict:
    proc.wait(timeout=900)
    assert proc.returncode == 0, (out / "stderr").read_text()[-2000:]
    return json.loads((out / "stdout").read_text().strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["serial", "local"])
def test_every_method_gives_the_same_numbers_twice_in_any_order(tiny_corpus, tmp_path, backend):
    orders = {"first": CASES, "again": CASES[::-1]}
    runs = {
        name: start_cases(tiny_corpus / "i2b2-2010", backend, tmp_path / name, cases) for name, cases in orders.items()
    }
    first, again = (finished(proc, tmp_path / name) for name, proc in runs.items())
    assert set(first) == {f"{m} {layers}" for m, layers in CASES}
    for case in first:
        assert first[case] == again[case], case
