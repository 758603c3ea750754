"""Errors never quote a note: a canary word put where each loader's error used to quote the
file's content (a concept type, a tag, a header, a flag, a site, a label) must not reach the
message, while the shapes the user needs (a tag like S-Problem, a PHI type, a site id) still do.
Errors go to stderr, each failed cell's failed.json and the report."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from bench.data.types import ClsExample, TaskData
from bench.errors import BenchError

CANARY = "zqxleak"


def _message(call) -> str:
    """The error's message, checked for the canary on the way."""
    with pytest.raises(BenchError) as caught:
        call()
    assert CANARY not in str(caught.value).lower(), caught.value
    return str(caught.value)


def test_loader_errors_name_the_place_not_the_text(tmp_path):
    from bench.data import conll, i2b2_2010, i2b2_2014, medquad, mimic3

    con = tmp_path / "a.con"
    for concept_type in (f"pain {CANARY}", CANARY):  # a phrase, and a single word (a name is one)
        con.write_text(f'c="chest pain" 1:2 1:3||t="{concept_type}"\n')
        message = _message(lambda: i2b2_2010.parse_con(con))
        assert f"unknown concept type of {len(concept_type)} characters, not quoted" in message
    tsv = tmp_path / "a.tsv"
    tsv.write_text(f"Smith\tMr {CANARY}\n")
    assert "a.tsv:1: not an IOB2 tag: (a value of" in _message(lambda: conll.read_file(tsv, Counter()))
    tsv.write_text("chest\tS-Problem\n")  # a tag's shape is quoted: the user needs it
    assert "'S-Problem'" in _message(lambda: conll.read_file(tsv, Counter()))
    for phi_type in (f"{CANARY} Jones", CANARY.upper()):
        raw = f'<r><TEXT>x</TEXT><TAGS><NAME id="Dr {CANARY}" start="a" end="1" TYPE="{phi_type}"/></TAGS></r>'
        root = ET.fromstring(raw)
        message = _message(lambda raw=raw, root=root: i2b2_2014.char_spans(tmp_path, raw, root, "x", "type", Counter()))
        assert "unknown PHI type of" in message and "in tag (a value of" in message
    folder = tmp_path / "medquad"
    folder.mkdir()
    with gzip.open(folder / medquad.FILE, "wt") as f:  # no header line: the first answer is there
        f.write(f"cdc\t1\tflu\tsymptoms\tthe answer {CANARY}\n")
    assert "found 5 columns, column 1 'cdc'" in _message(lambda: medquad.load(folder))
    (tmp_path / "ADMISSIONS.csv").write_text(
        f'SUBJECT_ID,HADM_ID,ADMISSION_TYPE,HOSPITAL_EXPIRE_FLAG\n1,100,EMERGENCY,"{CANARY} died"\n'
    )
    assert "HOSPITAL_EXPIRE_FLAG must be 0 or 1, found (a value of" in _message(lambda: mimic3.admissions(tmp_path))
    (tmp_path / "ADMISSIONS.csv").write_text(  # an id column that holds text (a shifted row): not quoted either
        f'SUBJECT_ID,HADM_ID,ADMISSION_TYPE,HOSPITAL_EXPIRE_FLAG\n1,"Mr {CANARY} died",EMERGENCY,2\n'
    )
    assert "(HADM_ID (a value of" in _message(lambda: mimic3.admissions(tmp_path))
    (tmp_path / "ICUSTAYS.csv").write_text(f'HADM_ID,FIRST_CAREUNIT,INTIME\n100,MICU,"{CANARY} at 9"\n')
    assert "INTIME is not a date-time: (a value of" in _message(
        lambda: mimic3.sites(tmp_path, None)
    )  # before adm is read
    garbage = tmp_path / "x.txt.gz"
    garbage.write_bytes(CANARY.encode())
    from bench.data.textio import read_text

    assert "not a valid gzip file (BadGzipFile)" in _message(lambda: read_text(garbage))


def test_sites_labels_and_headers_from_a_dataset_are_quoted_only_in_an_ids_shape(tmp_path):
    from bench.data import load_task
    from bench.data.split_check import _unscorable
    from partitions import parse_partition

    sites = [f"note {CANARY} {i}" for i in range(3)]
    text = _message(lambda: parse_partition("site").split(["x"] * 30, sites * 10, 2, seed=0))
    assert "fewer than the 3 sites ((a value of" in text
    assert "sites ('beth', 'partners')" in _message(
        lambda: parse_partition("site").split(["x"] * 40, ["beth", "partners"] * 20, 1, seed=0)
    )
    one = TaskData("t", "cls", ["x"], {"test": [ClsExample("n", (f"Mr {CANARY}",), "s", "d")] * 3})
    assert CANARY not in _unscorable(one, "test")
    notes = tmp_path / "notes"
    notes.mkdir()
    rows = "\n".join(f"day {i} {CANARY} seen,{i % 2},site {CANARY} {i}" for i in range(40))
    (notes / "train.csv").write_text("text,label,site\n" + rows + "\n")
    (notes / "test.csv").write_text("text,label,site\n" + rows + "\n")
    text = _message(lambda: load_task(f"hf:{notes}", site_column="site"))
    assert "site column 'site' has 40 distinct values in 40 training rows" in text
    (notes / "train.csv").write_text(rows + "\n")  # no header row: the first record is the header
    text = _message(lambda: load_task(f"hf:{notes}"))
    assert "3 columns, not named (the first row does not look like a header" in text
    (notes / "train.csv").write_text(f"{CANARY},1,p1\n" + rows + "\n")  # a one-word first cell, then a number
    assert "not named" in _message(lambda: load_task(f"hf:{notes}"))


def test_a_crashing_cell_records_its_type_not_its_message(tmp_path, monkeypatch):
    """A grid records each failed cell; a crash's message may quote data (a KeyError quotes its key)."""
    import json

    from bench.config import ExperimentConfig
    from bench.protocol import runner
    from bench.protocol.grid import Cell

    def crash(cfg, folder, progress):
        raise KeyError(f"Mr {CANARY}")

    monkeypatch.setattr(runner, "run_experiment", crash)
    cfg = ExperimentConfig(task="ncbi-disease", method="fedavg")
    assert runner.run_cell(Cell(cfg.run_id, cfg), tmp_path, resume=False, progress=False) == "failed"
    error = json.loads((tmp_path / cfg.run_id / "failed.json").read_text())["error"]
    assert error.startswith("KeyError") and CANARY not in error
