"""What final.json says about the code and packages a run used (bench.store.git_state and
versions): the commit, whether the checkout differed from it and where, and the installed
versions, not constants."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import pytest
import torch

from bench.store import git_state, versions


def _git(root, *args) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_git_state_names_the_commit_and_what_differs_from_it(tmp_path):
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (tmp_path / "bench.py").write_text("a = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "stored.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": head, "dirty": False, "changed": []}

    (tmp_path / "results" / "run_folder").mkdir()  # a study's own new runs: not a change of code
    (tmp_path / "results" / "run_folder" / "final.json").write_text("{}\n")
    (tmp_path / "results" / "stored.json").write_text("{}\n{}\n")
    assert git_state(tmp_path) == {"commit": head, "dirty": False, "changed": []}

    (tmp_path / "bench.py").write_text("a = 2\n")  # an edit and a new file: dirty, both named
    (tmp_path / "new.py").write_text("b = 1\n")
    assert git_state(tmp_path) == {"commit": head, "dirty": True, "changed": ["bench.py", "new.py"]}

    _git(tmp_path, "commit", "-q", "-am", "second")
    second = git_state(tmp_path)
    assert second["commit"] != head and second["changed"] == ["new.py"]


def test_versions_are_the_installed_ones():
    found = versions()
    assert found["torch"] == torch.__version__ == metadata.version("torch")
    assert found["transformers"] == metadata.version("transformers")
    assert found["python"] == platform.python_version()


@pytest.mark.skipif(not os.path.isfile("/proc/cpuinfo"), reason="no /proc/cpuinfo here")
def test_a_runs_host_names_the_cpu_model_and_a_digest_of_its_flags():
    """README: final.json's `host` (bench.engine.cells.node_identity) names the CPU model and a
    digest of its flags, so two runs of one seed on different kinds of machine can be told apart."""
    import hashlib

    from bench.engine.cells import node_identity

    fields = {}
    for line in open("/proc/cpuinfo").read().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    host = node_identity()
    assert host["cpu_model"] == fields["model name"]
    assert host["cpu_flags_sha"] == hashlib.sha256(fields["flags"].encode()).hexdigest()[:12]
