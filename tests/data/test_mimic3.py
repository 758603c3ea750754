"""The MIMIC-III loader on hand-written tables in the release's CSV form."""

import csv
import gzip
from pathlib import Path

import pytest

from bench.data import load_task
from bench.data.mimic3 import DISCHARGE, TOP_CODES, admission_note, dotted
from bench.data.splitting import split_of
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
ICU_COLS = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "DBSOURCE", "FIRST_CAREUNIT", "LAST_CAREUNIT"]
ICU_COLS += ["FIRST_WARDID", "LAST_WARDID", "INTIME", "OUTTIME", "LOS"]
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


def subjects_in(split: str, n: int) -> list[int]:
    """The first n SUBJECT_IDs (from 100) that the loader's patient hash puts in `split`."""
    return [s for s in range(100, 2000) if split_of(f"patient:{s}") == split][:n]


def write_admissions(root: Path, rows: list[tuple], stays: list[tuple] | None = None) -> Path:
    """rows: (SUBJECT_ID, HADM_ID, ADMISSION_TYPE, diagnosis codes, procedure codes), each with a
    discharge `Report`; stays: (HADM_ID, FIRST_CAREUNIT, LAST_CAREUNIT, INTIME) in file order."""
    root.mkdir(parents=True, exist_ok=True)
    write(
        root / "NOTEEVENTS.csv",
        NOTE_COLS,
        [[i, s, h, "2150-01-02", "", "", DISCHARGE, "Report", "", "", LIVED] for i, (s, h, *_) in enumerate(rows)],
    )
    write(root / "ADMISSIONS.csv", ADM_COLS, [[i, s, h, "t", kind, 0] for i, (s, h, kind, *_) in enumerate(rows)])
    for name, k in (("DIAGNOSES_ICD.csv", 3), ("PROCEDURES_ICD.csv", 4)):
        write(root / name, ICD_COLS, [[0, r[0], r[1], j, c] for r in rows for j, c in enumerate(r[k])])
    if stays is not None:
        subject = {h: s for s, h, *_ in rows}
        icu = [[i, subject[h], h, 900 - i, "carevue", u, v, 1, 2, t, "", ""] for i, (h, u, v, t) in enumerate(stays)]
        write(root / "ICUSTAYS.csv", ICU_COLS, icu)
    return root


def sites_by_doc(task: str, root: Path) -> dict[str, str]:
    return {ex.doc_id: ex.site for split in load_task(task, root).splits.values() for ex in split}


@pytest.mark.parametrize("task", ["mimic-mortality", "mimic-icd50"])
def test_site_is_first_icu_stay_in_time_else_no_icu_else_admission_type(tmp_path, task):
    a, b, c = subjects_in("train", 3)  # train, so that mimic-icd50 keeps them (401.9 counted on train)
    rows = [
        (a, "21", "EMERGENCY", ["4019"], []),
        (b, "22", "ELECTIVE", ["4019"], []),
        (c, "23", "URGENT", ["4019"], []),
    ]
    stays = [
        ("21", "CCU", "CCU", "2150-01-05 08:00:00"),  # admission 21: the later stay is the first row
        ("21", "MICU", "SICU", "2150-01-01 23:00:00"),  # the earliest stay, moved to SICU: its first unit counts
        ("22", "TSICU", "TSICU", "2150-01-01 09:00:00"),  # 22: rows in time order, ICUSTAY_IDs not
        ("22", "CSRU", "CSRU", "2150-01-03 09:00:00"),
        ("22", "SICU", "SICU", "2150-01-07 09:00:00"),
        ("22", "NWARD", "NWARD", ""),  # no INTIME: as a string it would sort first; it goes last
    ]  # admission 23: no ICU stay
    assert sites_by_doc(task, write_admissions(tmp_path / "icu", rows, stays)) == {
        "21": "MICU",
        "22": "TSICU",
        "23": "NO_ICU",
    }
    stays[2] = ("22", "TSICU", "TSICU", "Jan 1st")  # a value that is not a date-time: one line naming it
    with pytest.raises(DataError, match=r"ICUSTAYS\.csv:4: INTIME is not a date-time: .* \(HADM_ID '22'\)"):
        sites_by_doc(task, write_admissions(tmp_path / "bad", rows, stays))
    without = sites_by_doc(task, write_admissions(tmp_path / "no_icu", rows))  # no ICUSTAYS.csv
    assert without == {"21": "EMERGENCY", "22": "ELECTIVE", "23": "URGENT"}


def test_icd50_top_codes_counted_on_train_diagnoses_and_procedures(tmp_path):
    train, test, validation = subjects_in("train", 3), subjects_in("test", 5), subjects_in("validation", 5)
    fillers = ["4019"] + [f"{100 + i}1" for i in range(TOP_CODES - 3)]  # diagnoses, 3 train admissions each
    y, x_test, x_val = "25000", "V3000", "E8809"  # y: 2 train admissions; x_*: 1 train, 5 test / 5 validation
    rows = [
        (train[0], "31", "EMERGENCY", [*fillers, y], ["4019"]),  # procedure 40.19: the raw code of diagnosis 401.9
        (train[1], "32", "EMERGENCY", [*fillers, y, x_val], ["4019"]),
        (train[2], "33", "EMERGENCY", [*fillers, x_test], ["4019"]),
        *[(s, f"4{i}", "EMERGENCY", ["4019", x_test], []) for i, s in enumerate(test)],
        *[(s, f"5{i}", "EMERGENCY", ["4019", x_val], []) for i, s in enumerate(validation)],
    ]
    data = load_task("mimic-icd50", write_admissions(tmp_path, rows))
    expected = sorted([dotted(c, procedure=False) for c in [*fillers, y]] + ["40.19"])
    assert len(expected) == TOP_CODES == 50 and data.label_names == expected
    assert "401.9" in data.label_names and "40.19" in data.label_names  # same raw code, told apart by the dot's place
    assert "V30.00" not in data.label_names and "E880.9" not in data.label_names  # frequent only outside train
    examples = {ex.doc_id: ex for split in data.splits.values() for ex in split}
    assert {"401.9", "40.19", "250.00"} <= set(examples["31"].labels) and "E880.9" not in examples["32"].labels
    assert {ex.doc_id: ex.labels for ex in data.splits["test"] + data.splits["validation"]} == {
        h: ("401.9",) for _, h, *_ in rows[3:]
    }


@pytest.mark.parametrize("task", ["mimic-mortality", "mimic-icd50"])
def test_a_patients_admissions_all_land_in_one_split(tmp_path, task):
    """README: "MIMIC-III is split by patient (a stable hash of SUBJECT_ID, 20% test)": a patient
    with ten admissions has all ten in the split of its SUBJECT_ID, though their HADM_IDs alone
    would scatter them."""
    (many,) = subjects_in("test", 1)
    others = subjects_in("train", 3)  # train patients, so that mimic-icd50 counts 401.9 as a top code
    hadms = [str(600 + i) for i in range(10)]
    assert len({split_of(f"patient:{h}") for h in hadms}) == 3  # keyed on HADM_ID they would spread
    rows = [(many, h, "EMERGENCY", ["4019"], []) for h in hadms]
    rows += [(s, str(700 + i), "EMERGENCY", ["4019"], []) for i, s in enumerate(others)]
    data = load_task(task, write_admissions(tmp_path, rows))
    placed = {ex.doc_id: name for name, split in data.splits.items() for ex in split if ex.group == str(many)}
    assert placed == dict.fromkeys(hadms, "test")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_bad_value_is_named_by_the_line_its_row_starts_on(tmp_path, suffix):
    """The line counts the lines a quoted field spans before it (NOTEEVENTS' TEXT does; any
    quoted field may) and the blank or all-space lines pandas skips, before the header too, so
    it is where an editor shows the row; lines end at "\n" only, as an editor counts them."""
    from bench.data import mimic3

    opener = gzip.open if suffix.endswith(".gz") else open
    admissions = (
        "\n"  # line 1: blank, before the header
        "SUBJECT_ID,HADM_ID,ADMISSION_TYPE,HOSPITAL_EXPIRE_FLAG,DIAGNOSIS\n"
        '1,100,EMERGENCY,0,"CHEST PAIN\rR/O MI\nRULE OUT MI"\n'  # lines 3-4 (a bare \r is text, not a line)
        "\n"  # line 5: blank
        "   \n"  # line 6: spaces only
        '4,103,URGENT,0,""\n'  # line 7
        "2,101,ELECTIVE,1,SEPSIS\n"  # line 8
        "3,102,URGENT,yes,FALL\n"  # line 9: the bad flag
    )
    with opener(tmp_path / f"ADMISSIONS{suffix}", "wt") as f:
        f.write(admissions)
    with pytest.raises(
        DataError, match=rf"ADMISSIONS\{suffix}:9: HOSPITAL_EXPIRE_FLAG must be 0 or 1, .*\(HADM_ID '102'\)"
    ):
        mimic3.admissions(tmp_path)
    with opener(tmp_path / f"ADMISSIONS{suffix}", "wt", newline="\r\n") as f:  # Windows line ends: the same lines
        f.write(admissions.replace('MI"', "MI" + "x" * 200_000 + '"'))  # and a field over csv's default limit
    with pytest.raises(DataError, match=rf"ADMISSIONS\{suffix}:9: HOSPITAL_EXPIRE_FLAG must be 0 or 1, "):
        mimic3.admissions(tmp_path)
    with opener(tmp_path / f"ADMISSIONS{suffix}", "wt", newline="\r") as f:  # classic Mac line ends
        f.write(admissions.replace("\r", " "))
    with pytest.raises(DataError, match=rf"ADMISSIONS\{suffix}: HOSPITAL_EXPIRE_FLAG must be 0 or 1, "):
        mimic3.admissions(tmp_path)  # the same one line, without a line number an editor would not show
    stays = 'HADM_ID,FIRST_CAREUNIT,INTIME\n100,MICU,2150-01-01 09:00:00\n\n\n101,"CSRU\n\nx",\n102,SICU,noon\n'
    with opener(tmp_path / f"ICUSTAYS{suffix}", "wt") as f:
        f.write(stays)
    with pytest.raises(DataError, match=rf"ICUSTAYS\{suffix}:8: INTIME is not a date-time: .*\(HADM_ID '102'\)"):
        mimic3.sites(tmp_path, None)
