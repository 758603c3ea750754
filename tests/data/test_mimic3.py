"""The MIMIC-III loader on hand-written tables in the release's CSV form."""

import csv
import gzip
from pathlib import Path

import pytest

from bench.data import load_task
from bench.data.mimic3 import admission_note, dotted
from bench.errors import DataError

NOTE_COLS = [
    "ROW_ID",
    "SUBJECT_ID",
    "HADM_ID",
    "CHARTDATE",
    "CHARTTIME",
    "STORETIME",
    "CATEGORY",
    "DESCRIPTION",
    "CGID",
    "ISERROR",
    "TEXT",
]
ADM_COLS = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "ADMITTIME", "ADMISSION_TYPE", "HOSPITAL_EXPIRE_FLAG"]
ICD_COLS = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"]
DIED = (
    "Chief Complaint:\nsepsis\n\nHistory of Present Illness:\n80 yo with septic shock.\n"
    "Patient expired, family at bedside.\n\nBrief Hospital Course:\nIntubated.\n\n"
    "Discharge Disposition:\nExpired\n"
)
LIVED = (
    "Chief Complaint:\nchest pain\n\nHistory of Present Illness:\n50 yo with chest pain,\n"
    "no evidence of sepsis.\n\nDischarge Disposition:\nHome\n"
)


def write(path: Path, header: list[str], rows: list[list]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def write_release(root: Path, adm_cols=ADM_COLS) -> Path:
    notes = [
        [1, 1, 11, "2150-01-02", "", "", "Discharge summary", "Report", "", "", DIED],
        [2, 1, 11, "2150-01-03", "", "", "Discharge summary", "Addendum", "", "", "Addendum: cultures pending."],
        [3, 2, 12, "2150-01-02", "", "", "Discharge summary", "Report", "", "", LIVED],
        [4, 3, 13, "2150-01-02", "", "", "Discharge summary", "Addendum", "", "", "only an addendum"],
        [5, 4, 14, "2150-01-02", "", "", "Discharge summary", "Report", "", "", LIVED],
        [6, 2, 12, "2150-01-01", "", "", "Nursing/other", "Report", "", "", "nursing note"],
    ]
    adm = [
        [1, 1, 11, "t", "EMERGENCY", 1],
        [2, 2, 12, "t", "ELECTIVE", 0],
        [3, 3, 13, "t", "URGENT", 0],
        [4, 4, 14, "t", "NEWBORN", 0],
    ]
    write(root / "NOTEEVENTS.csv.gz", NOTE_COLS, notes)
    write(root / "ADMISSIONS.csv", adm_cols, [r[: len(adm_cols)] for r in adm])
    write(root / "DIAGNOSES_ICD.csv", ICD_COLS, [[1, 1, 11, 1, "78552"], [2, 2, 12, 1, "4019"], [3, 4, 14, 1, "E8809"]])
    write(root / "PROCEDURES_ICD.csv", ICD_COLS, [[1, 1, 11, 1, "9671"]])
    return root


def test_mortality_joins_filters_and_removes_outcome(tmp_path):
    data = load_task("mimic-mortality", write_release(tmp_path))
    examples = {ex.doc_id: ex for split in data.splits.values() for ex in split}
    assert set(examples) == {"11", "12"}  # 13: addendum only; 14: newborn
    assert examples["11"].labels == ("1",) and examples["12"].labels == ("0",)
    died = examples["11"].text
    assert "septic shock" in died and "sepsis" in died
    assert "expired" not in died.lower() and "Intubated" not in died  # outcome and course removed
    assert "no evidence of sepsis" in examples["12"].text  # negation kept
    assert examples["11"].site == "EMERGENCY"  # no ICUSTAYS: admission type
    assert data.warnings["outcome_sentence_removed"] == 1


def test_split_is_by_patient(tmp_path):
    data = load_task("mimic-mortality", write_release(tmp_path))
    patients = {name: {ex.group for ex in split} for name, split in data.splits.items()}
    assert not patients["train"] & patients["test"] and not patients["train"] & patients["validation"]
    assert not patients["validation"] & patients["test"]


def test_icd50_labels(tmp_path):
    data = load_task("mimic-icd50", write_release(tmp_path))
    examples = {ex.doc_id: ex for split in data.splits.values() for ex in split}
    assert examples["11"].labels == ("785.52", "96.71")
    assert "Addendum: cultures pending." in examples["11"].text  # addenda joined after the report
    assert dotted("E8809", procedure=False) == "E880.9" and dotted("9671", procedure=True) == "96.71"


def test_missing_column_names_file(tmp_path):
    write_release(tmp_path, adm_cols=[c for c in ADM_COLS if c != "HOSPITAL_EXPIRE_FLAG"])
    with pytest.raises(DataError, match=r"ADMISSIONS\.csv:1: missing column\(s\) HOSPITAL_EXPIRE_FLAG"):
        load_task("mimic-mortality", tmp_path)


def test_admission_note_keeps_admission_sections():
    note = admission_note(DIED)
    assert note.startswith("Chief Complaint:") and "Discharge Disposition" not in note
