"""The CoNLL loader, on the real NCBI-disease folder and on hand-written files."""

import json
import subprocess
import sys

import pytest

from bench.data import conll, load_task
from bench.data.stats import task_stats
from bench.errors import DataError
from tests.cli import bench_data


def test_ncbi_disease_counts(ncbi):
    stats = task_stats(load_task("conll", ncbi))
    assert [stats[s]["sentences"] for s in ("train", "validation", "test")] == [5432, 923, 940]
    assert [stats[s]["entities"]["Disease"] for s in ("train", "validation", "test")] == [5145, 787, 960]


def test_shipped_ncbi_disease_needs_no_shared_folder(tmp_path):
    """The corpus ships gzipped with the project: the task reads it from any working folder."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.data", "stats", "--task", "ncbi-disease", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    stats = json.loads(proc.stdout)
    assert [stats[s]["sentences"] for s in ("train", "validation", "test")] == [5432, 923, 940]
    assert [stats[s]["entities"]["Disease"] for s in ("train", "validation", "test")] == [5145, 787, 960]


def test_without_devel_a_seeded_tenth_of_documents_validates(tmp_path):
    docs = "".join(f"-DOCSTART-\tO\n\nw{i}\tO\nfever\tB-Disease\n\n" for i in range(20))
    (tmp_path / "train.tsv").write_text(docs)
    (tmp_path / "test.tsv").write_text("x\tO\n")
    first, again = load_task("conll", tmp_path), load_task("conll", tmp_path)
    assert len(first.splits["validation"]) == 2 and len(first.train) == 18
    assert [ex.doc_id for ex in first.splits["validation"]] == [ex.doc_id for ex in again.splits["validation"]]
    assert not {ex.doc_id for ex in first.train} & {ex.doc_id for ex in first.splits["validation"]}


def test_bio_repair_and_docstart(tmp_path):
    (tmp_path / "train.tsv").write_text("-DOCSTART-\tO\n\nA\tO\nfever\tI-Disease\n\n-DOCSTART-\tO\n\nB\tB-Disease\n")
    (tmp_path / "test.tsv").write_text("x\tO\n")
    data = conll.load(tmp_path)  # the raw loader: no validation carved out of two documents
    assert data.train[0].tags == ("O", "B-Disease")
    assert data.warnings["bio_repaired"] == 1
    assert task_stats(data)["train"]["documents"] == 2


def test_malformed_line_cli_one_line_exit_2(tmp_path):
    (tmp_path / "train.tsv").write_text("a\tO\nbroken line without tab\n")
    (tmp_path / "test.tsv").write_text("x\tO\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: expected token<TAB>tag"):
        load_task("conll", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.data", "stats", "--task", "conll", "--data-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "train.tsv:2" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_stats_cli_json(ncbi):
    proc = bench_data("stats", "--task", "conll", "--data-dir", ncbi, "--json")
    stats = json.loads(proc.stdout)
    assert stats["test"]["sentences"] == 940 and "warnings" in stats


def test_unknown_task_suggests(tmp_path):
    proc = bench_data("stats", "--task", "mimic-mortalty", "--json", check=False)
    assert proc.returncode == 2 and "did you mean 'mimic-mortality'" in proc.stderr
