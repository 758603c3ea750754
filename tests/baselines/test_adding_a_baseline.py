"""README "Adding a baseline": one file in `baselines/`, one line in a grid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
"""


def _readme_example() -> tuple[str, str]:
    """The README's `baselines/head_only.py` block and the grid line after it, as written there."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n# baselines/head_only\.py\n(.*?)```", readme, re.S)
    line = re.search(r"then `(- \{method: head-only\})` in a grid", readme)
    assert code and line, "README's head_only.py example or its grid line is gone"
    return code.group(1), line.group(1)


def test_a_new_file_in_baselines_is_discovered_and_expands_in_a_grid(tiny_corpus, tmp_path):
    """README: "One file in `baselines/`, one line in a grid ... then `- {method: head-only}` in
    a grid: every module in `baselines/` is discovered and registered". A copy of baselines/ with
    the README's head_only.py added word for word, ahead of the repo on sys.path (a subprocess: the
    registry here is filled already): "head-only" is a registered method and the grid line
    expands to a head-only cell."""
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
        [sys.executable, "-c", CHECK, str(package), str(grid)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "['fedavg', 'head-only']"
