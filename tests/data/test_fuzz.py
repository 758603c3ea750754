"""Fuzzing every loader with malformed files: a BenchError (one line, exit 2) or a clean load,
never another exception and never a hang. Bounded so it runs in CI."""

import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.data import load_task
from bench.errors import BenchError
from tests.cli import bench_data, bench_run

LOADERS = {  # task -> (corpus folder, files to mutate)
    "i2b2-2010": ("i2b2-2010", "*.con"),
    "i2b2-2014": ("i2b2-2014", "*.xml"),
    "mimic-mortality": ("mimic-iii", "ADMISSIONS.csv"),
    "mimic-icd50": ("mimic-iii", "DIAGNOSES_ICD.csv"),
}
mutations = st.sampled_from(["truncate", "flip", "latin1", "empty", "drop_line", "garbage_line", "delete"])


def mutate(data: bytes, how: str, at: float) -> bytes | None:
    i = int(at * len(data))
    return {
        "truncate": data[:i],
        "flip": data[:i] + bytes([(data[i] if i < len(data) else 0) ^ 0xFF]) + data[i + 1 :],
        "latin1": data[:i] + "é".encode("latin-1") + data[i:],
        "empty": b"",
        "drop_line": b"\n".join(line for n, line in enumerate(data.split(b"\n")) if n != int(at * data.count(b"\n"))),
        "garbage_line": data[:i] + b'\n"c=\x00,,<<TAGS\t\t\n' + data[i:],
        "delete": None,
    }[how]


@pytest.mark.parametrize("task", list(LOADERS))
@settings(max_examples=12, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=mutations, at=st.floats(0, 0.999), pick=st.integers(0, 10_000))
def test_malformed_files_fail_cleanly(tiny_corpus, tmp_path_factory, task, how, at, pick):
    folder, pattern = LOADERS[task]
    copy = tmp_path_factory.mktemp("fuzz") / folder
    shutil.copytree(tiny_corpus / folder, copy)
    files = sorted(copy.rglob(pattern))
    target = files[pick % len(files)]
    new = mutate(target.read_bytes(), how, at)
    if new is None:
        target.unlink()
    else:
        target.write_bytes(new)
    try:
        load_task(task, copy)
    except BenchError as e:
        assert "\n" not in str(e) and str(e)


@pytest.mark.parametrize(
    "task, folder",
    [("i2b2-2010", "i2b2-2010"), ("i2b2-2014", "i2b2-2014"), ("mimic-mortality", "mimic-iii"), ("conll", "x")],
)
def test_empty_folder_cli_exit_2(tmp_path, task, folder):
    (tmp_path / folder).mkdir()
    proc = bench_data("stats", "--task", task, "--data-dir", tmp_path / folder, "--json", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "i2b2-2010", "--method", "fedavg", "--clients", "0", "--out", "x"], "clients must be >= 1"),
        (
            [
                "--task",
                "i2b2-2010",
                "--method",
                "layerskip",
                "--layers",
                "top:99",
                "--model",
                "tiny-bert",
                "--out",
                "x",
            ],
            "K must be between",
        ),
        (["--task", "i2b2-2010", "--method", "fedavg", "--rounds", "two", "--out", "x"], "invalid int value"),
        (
            ["--task", "i2b2-2010", "--method", "fedavg", "--partition", "dirichlet:-2", "--out", "x"],
            "alpha must be a positive",
        ),
        (["--task", "i2b2-2010", "--method", "fedavg", "--model", "no-such-model", "--out", "x"], "unknown model"),
    ],
)
def test_bad_flags_one_line_exit_2(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    proc = bench_run(*argv, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "final.json").exists()


def test_a_bad_flag_is_one_line_and_exit_2_as_the_shell_sees_it(tmp_path):
    """The cases above run in this process; here the command runs as a user's shell runs it, so a
    library's warning or log line on stderr would show."""
    argv = ["--task", "i2b2-2010", "--method", "fedavg", "--rounds", "two", "--out", "x"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: python -m bench.run: argument --rounds: invalid int value: 'two'"
    ]
    assert not (tmp_path / "x").exists()
