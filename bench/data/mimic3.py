"""MIMIC-III discharge summaries: in-hospital mortality and the 50 most frequent ICD-9 codes.

Tables (each `.csv` or `.csv.gz`; TEXT fields span lines inside quotes):
NOTEEVENTS, ADMISSIONS, optionally ICUSTAYS (for sites), and DIAGNOSES_ICD + PROCEDURES_ICD for
`mimic-icd50`.

Mortality follows van Aken et al. 2021 ("Clinical outcome prediction from admission notes"):
discharge summaries are joined per admission (the `Report` first, then addenda, in chart
order); only admissions with a `Report` row are kept; NEWBORN admissions are dropped; the label
is HOSPITAL_EXPIRE_FLAG; only the sections known at admission are kept (chief complaint,
present illness, history, admission medications, allergies, exam, family and social history)
and any remaining sentence that reveals the outcome (expired, died, autopsy, comfort care, ...)
is removed and counted. `mimic-icd50` keeps the whole summary and labels each admission with
its codes among the 50 most frequent (diagnoses and procedures, counted on the training split,
CAML-style dotted codes); admissions with none of them are dropped.

Splits are by patient (a stable hash of SUBJECT_ID: 20% test, 10% validation, 70% train), so no
patient is in two.
Site: the first care unit of the admission's earliest ICU stay by INTIME, a stay without INTIME last
(MICU, SICU, CCU, CSRU, TSICU; `NO_ICU` without a stay) when ICUSTAYS is present, else the
ADMISSION_TYPE (EMERGENCY, ELECTIVE, URGENT).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.csvio import find_table, read_table, record_line
from bench.data.redact import NUMBER_SHAPED, shown
from bench.data.registry import register_task
from bench.data.splitting import split_of
from bench.data.types import ClsExample, TaskData
from bench.errors import DataError

DISCHARGE = "Discharge summary"
ADMISSION_SECTIONS = (
    "chief complaint",
    "history of present illness",
    "present illness",
    "past medical history",
    "medical history",
    "medications on admission",
    "admission medications",
    "allergies",
    "physical exam",
    "physical examination",
    "family history",
    "social history",
    "major surgical or invasive procedure",
)
SECTION_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z /&()-]{2,48}):", re.MULTILINE)
OUTCOME = re.compile(
    r"\b(expired|deceased|died|passed away|death|autopsy|morgue|comfort (care|measures)|"
    r"cmo|hospice|withdraw(n|al)? (of )?care)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
TOP_CODES = 50


def admission_note(text: str) -> str:
    """The admission-time sections of a discharge summary (all text if none is found)."""
    headers = list(SECTION_HEADER.finditer(text))
    kept = []
    for i, m in enumerate(headers):
        if m.group(1).strip().lower() in ADMISSION_SECTIONS:
            end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
            kept.append(text[m.start() : end].strip())
    return "\n".join(kept) if kept else text


def remove_outcome_sentences(text: str, warnings: Counter) -> str:
    sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
    kept = [s for s in sentences if not OUTCOME.search(s)]
    warnings["outcome_sentence_removed"] += len(sentences) - len(kept)
    return " ".join(kept)


def discharge_texts(root: Path) -> dict[str, tuple[str, str]]:
    """HADM_ID -> (SUBJECT_ID, joined text) for admissions that have a discharge `Report`."""
    path = find_table(root, "NOTEEVENTS")
    cols = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CATEGORY", "DESCRIPTION", "TEXT"]
    parts = [c[c["CATEGORY"] == DISCHARGE] for c in read_table(path, cols)]
    notes = pd.concat(parts) if parts else pd.DataFrame(columns=cols)
    notes = notes[notes["HADM_ID"] != ""]
    notes = notes.assign(
        is_addendum=notes["DESCRIPTION"] != "Report",
        row=pd.to_numeric(notes["ROW_ID"], errors="coerce"),
    ).sort_values(["HADM_ID", "is_addendum", "CHARTDATE", "row"])
    joined = {}
    for hadm, group in notes.groupby("HADM_ID", sort=True):
        if not (~group["is_addendum"]).any():
            continue
        joined[hadm] = (group["SUBJECT_ID"].iloc[0], "\n\n".join(group["TEXT"]))
    return joined


def admissions(root: Path) -> pd.DataFrame:
    cols = ["SUBJECT_ID", "HADM_ID", "ADMISSION_TYPE", "HOSPITAL_EXPIRE_FLAG"]
    path = find_table(root, "ADMISSIONS")
    table = pd.concat(list(read_table(path, cols)), ignore_index=True)
    bad = np.flatnonzero(~table["HOSPITAL_EXPIRE_FLAG"].isin(["0", "1"]))
    if len(bad):
        row = table.iloc[bad[0]]
        raise DataError(
            path,
            f"HOSPITAL_EXPIRE_FLAG must be 0 or 1, found {shown(row['HOSPITAL_EXPIRE_FLAG'], NUMBER_SHAPED)} "
            f"(HADM_ID {shown(row['HADM_ID'])})",
            record_line(path, int(bad[0])),
        )
    return table.set_index("HADM_ID")


def sites(root: Path, adm: pd.DataFrame) -> dict[str, str]:
    icu = find_table(root, "ICUSTAYS", required=False)
    if icu is None:
        return adm["ADMISSION_TYPE"].to_dict()
    stays = pd.concat(list(read_table(icu, ["HADM_ID", "FIRST_CAREUNIT", "INTIME"])), ignore_index=True)
    # Sorted as times, not strings: a stay without INTIME ("" sorts before every date) goes last.
    when = pd.to_datetime(stays["INTIME"], errors="coerce", format="ISO8601")
    bad = np.flatnonzero(when.isna() & (stays["INTIME"] != ""))
    if len(bad):
        row = stays.iloc[bad[0]]
        raise DataError(
            icu,
            f"INTIME is not a date-time: {shown(row['INTIME'], NUMBER_SHAPED)} (HADM_ID {shown(row['HADM_ID'])})",
            record_line(icu, int(bad[0])),
        )
    stays["INTIME"] = when
    first = stays.sort_values(["HADM_ID", "INTIME"], na_position="last").drop_duplicates("HADM_ID")
    unit = dict(zip(first["HADM_ID"], first["FIRST_CAREUNIT"]))
    return {hadm: unit.get(hadm, "NO_ICU") for hadm in adm.index}


@register_task(
    "mimic-mortality",
    kind="cls",
    synth_subdir="mimic-iii",
    split_rule="a stable hash of each patient: 70% train, 10% validation, 20% test",
)
def load_mortality(root: Path) -> TaskData:
    warnings: Counter = Counter()
    adm = admissions(root)
    site = sites(root, adm)
    splits: dict[str, list[ClsExample]] = {"train": [], "validation": [], "test": []}
    for hadm, (subject, text) in discharge_texts(root).items():
        if hadm not in adm.index:
            warnings["note_without_admission"] += 1
            continue
        row = adm.loc[hadm]
        if row["ADMISSION_TYPE"] == "NEWBORN":
            continue
        note = remove_outcome_sentences(admission_note(text), warnings)
        example = ClsExample(note, (row["HOSPITAL_EXPIRE_FLAG"],), site[hadm], hadm, subject)
        splits[split_of(f"patient:{subject}")].append(example)
    return TaskData("mimic-mortality", "cls", ["0", "1"], splits, warnings)


def dotted(code: str, procedure: bool) -> str:
    """CAML's ICD-9 format: diagnoses 3 digits (4 for E codes) before the dot, procedures 2."""
    head = 2 if procedure else (4 if code.startswith("E") else 3)
    return code[:head] + ("." + code[head:] if len(code) > head else "")


def icd_codes(root: Path) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for table, procedure in (("DIAGNOSES_ICD", False), ("PROCEDURES_ICD", True)):
        for chunk in read_table(find_table(root, table), ["HADM_ID", "ICD9_CODE"]):
            for hadm, code in zip(chunk["HADM_ID"], chunk["ICD9_CODE"]):
                if code:
                    codes.setdefault(hadm, set()).add(dotted(code, procedure))
    return codes


@register_task(
    "mimic-icd50",
    kind="multilabel",
    synth_subdir="mimic-iii",
    split_rule="a stable hash of each patient: 70% train, 10% validation, 20% test",
)
def load_icd50(root: Path) -> TaskData:
    adm = admissions(root)
    site = sites(root, adm)
    codes = icd_codes(root)
    docs = [(h, s, t) for h, (s, t) in discharge_texts(root).items() if h in adm.index]
    train_counts = Counter(c for h, s, _ in docs if split_of(f"patient:{s}") == "train" for c in codes.get(h, ()))
    top = sorted(c for c, _ in sorted(train_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CODES])
    top_set = set(top)
    splits: dict[str, list[ClsExample]] = {"train": [], "validation": [], "test": []}
    warnings: Counter = Counter()
    for hadm, subject, text in docs:
        labels = tuple(sorted(codes.get(hadm, set()) & top_set))
        if not labels:
            warnings["no_top50_code_dropped"] += 1
            continue
        splits[split_of(f"patient:{subject}")].append(ClsExample(text, labels, site[hadm], hadm, subject))
    return TaskData("mimic-icd50", "multilabel", top, splits, warnings)
