"""README "Adding a baseline": one file in `baselines/`, one line in a grid."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.engine.server import BACKENDS
from bench.registry import METHODS

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from pathlib import Path

import baselines
from bench.protocol.grid import expand, load_grid
from bench.registry import METHODS

assert Path(baselines.__file__).parent == Path(sys.argv[1]), baselines.__file__  # the copy, not the repo's
assert "head-only" in METHODS, METHODS.names()
cells = expand(load_grid(sys.argv[2])[1])
print(sorted(c.config.method for c in cells))
from bench.engine.server import run_experiment  # and it trains: one round of its cell

cell = next(c.config for c in cells if c.config.method == "head-only")
final = run_experiment(cell.with_settings(backend="serial", train_subsample=16), Path(sys.argv[3]), progress=False)
print(final["status"], final["trainable_params"], final["total_params"])
"""


def _readme_example() -> tuple[str, str]:
    """The README's `baselines/head_only.py` block and the grid line after it, as written there."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n# baselines/head_only\.py\n(.*?)```", readme, re.S)
    line = re.search(r"then `(- \{method: head-only\})` in a grid", readme)
    assert code and line, "README's head_only.py example or its grid line is gone"
    return code.group(1), line.group(1)


def test_a_new_file_in_baselines_is_discovered_expands_in_a_grid_and_trains(tiny_corpus, tmp_path):
    """README: "One file in `baselines/`, one line in a grid ... then `- {method: head-only}` in
    a grid: every module in `baselines/` is discovered and registered". A copy of baselines/ with
    the README's head_only.py added word for word, ahead of the repo on sys.path (a subprocess: the
    registry here is filled already): "head-only" is a registered method, the grid line
    expands to a head-only cell, and that cell trains a round with the head alone trainable."""
    code, line = _readme_example()
    package = tmp_path / "site" / "baselines"
    shutil.copytree(ROOT / "baselines", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "head_only.py").write_text(code)
    grid = tmp_path / "g.yaml"
    data = tiny_corpus / "i2b2-2010"
    grid.write_text(
        f'name: t\ndefaults: {{model: tiny-bert, clients: 2, rounds: 1, data_dir: "{data}"}}\n'
        f"tasks: [i2b2-2010]\nmethods:\n  - {{method: fedavg}}\n  {line}\npartitions: [iid]\nseeds: [0]\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package.parent), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(package), str(grid), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    methods, trained = done.stdout.split("\n")[-3:-1]
    assert methods == "['fedavg', 'head-only']"
    status, trainable, total = trained.split()
    assert status == "ok" and 0 < int(trainable) < int(total) / 10  # the head alone trains


def _backend_table(node: ast.AST) -> bool:
    """A dict literal keyed by exactly the backend names (serial, local, ray)."""
    keys = getattr(node, "keys", None)
    return isinstance(node, ast.Dict) and {getattr(k, "value", None) for k in keys} == set(BACKENDS)


def test_engine_and_federation_code_name_no_method():
    """README: "the engine and federation code name no method (training, aggregation and the round
    loop go through the method's hooks)". No string in bench/engine or bench/federation (docstrings
    aside) holds a registered method's name as a word (`"lora"`, `"lora_A"`, `f"{x} fedprox"`).
    Allowed: "local" in the backend tables (server.BACKENDS, execution.describe's labels: the
    `local` backend of worker processes, not the `local` method), and their values."""
    names, found = set(METHODS.names()), []
    for path in sorted((ROOT / "bench" / "engine").rglob("*.py")) + sorted(
        (ROOT / "bench" / "federation").rglob("*.py")
    ):
        tree = ast.parse(path.read_text())
        skip = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        for table in filter(_backend_table, ast.walk(tree)):
            skip |= {id(n) for n in ast.walk(table)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if words := set(re.split(r"[^a-z0-9]+", node.value)) & names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r} names {sorted(words)}")
    assert not found, "\n".join(found)


def test_a_method_with_its_own_combine_is_aggregated_by_it_or_refused(tiny_corpus, tmp_path, monkeypatch):
    """README: a method that overrides `combine` is aggregated by it. The server computes the
    plain weighted mean itself where it can (summed as uploads arrive, under secure aggregation,
    by DP-FedAvg) and would skip that combine, so a class that writes its own combine and does
    not declare `streams_mean` / `secure_aggregable` gets neither: its combine runs, and secure
    aggregation and client-level DP are refused rather than replacing it."""
    import pytest

    from baselines.base import GLOBAL, Method
    from bench.engine.server import run_experiment
    from bench.errors import BenchError
    from tests.tiny import tiny_config

    calls = []

    class FirstOnly(Method):  # a server rule other than the mean: keep the first result
        name = "first-only"

        def combine(self, states, results):
            calls.append(len(results))
            return {GLOBAL: results[0].state}

    assert not FirstOnly.streams_mean and not FirstOnly.secure_aggregable
    METHODS.names()  # discovered before the temporary entry joins
    monkeypatch.setitem(METHODS._items, "first-only", FirstOnly)
    run_experiment(tiny_config(tiny_corpus, method="first-only", backend="serial"), tmp_path / "run", progress=False)
    assert calls == [2]  # one round, both clients' results, through the method's own combine
    for refused in ({"secagg": "on"}, {"dp_level": "client", "noise_multiplier": 1.0}):
        with pytest.raises(BenchError, match="first-only"):
            run_experiment(
                tiny_config(tiny_corpus, method="first-only", **refused), tmp_path / "refused", progress=False
            )
