"""Write synthetic MIMIC-III tables: admissions, ICU stays, discharge summaries, ICD-9 codes
(the note text is bench.synth.mimic3_notes).

Mortality depends on the findings written at admission (a logistic risk of severity, age and
care unit, then a coin flip), so it is learnable but not certain. Negated findings carry no
risk. The notes of patients who died reveal it in the sections the loader must remove.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from bench.synth.mimic3_notes import NOTE_HEADER, note_rows, summary

# (phrase at admission, severity, diagnosis codes, procedure codes)
CONDITIONS = {
    "severe": [
        ("septic shock", 2.0, ["78552", "0389"], ["9671", "3893"]),
        ("cardiac arrest", 2.4, ["4275"], ["9960", "9604"]),
        ("hypoxic respiratory failure requiring intubation", 1.8, ["51881"], ["9604", "9672"]),
        ("metastatic cancer", 1.5, ["1983", "1970"], ["3893"]),
        ("intracranial hemorrhage", 2.0, ["431"], ["0131"]),
        ("cardiogenic shock", 2.2, ["78551", "41071"], ["3761", "3722"]),
        ("acute liver failure", 1.6, ["570", "5722"], ["9904"]),
    ],
    "moderate": [
        ("pneumonia", 0.6, ["486"], ["0014"]),
        ("acute kidney injury", 0.6, ["5849"], ["3995"]),
        ("chf exacerbation", 0.5, ["4280", "42823"], ["8856"]),
        ("afib with rvr", 0.3, ["42731"], []),
        ("copd exacerbation", 0.4, ["49121"], ["9390"]),
        ("urinary tract infection", 0.2, ["5990"], []),
        ("hyperkalemia", 0.3, ["2767"], []),
        ("altered mental status", 0.4, ["78097"], ["8703"]),
        ("upper gi bleed", 0.7, ["5789", "2851"], ["4513", "9904"]),
    ],
    "mild": [
        ("chest pain", -0.3, ["78650"], ["8853"]),
        ("elective cabg", -0.8, ["41401"], ["3615", "3961"]),
        ("syncope", -0.2, ["7802"], ["8891"]),
        ("cellulitis", -0.2, ["6826"], []),
        ("hip fracture", 0.1, ["82020"], ["8151"]),
        ("diabetic ketoacidosis", 0.2, ["25013"], ["9915"]),
    ],
}
COMORBIDITIES = [
    ("hypertension", "4019"),
    ("diabetes", "25000"),
    ("hyperlipidemia", "2724"),
    ("ckd", "5859"),
    ("cad", "41401"),
    ("hypothyroidism", "2449"),
    ("gerd", "53081"),
    ("depression", "311"),
    ("anemia", "2859"),
    ("tobacco use", "3051"),
    ("obesity", "27800"),
    ("osa", "32723"),
    ("atrial fibrillation", "42731"),
    ("esrd on dialysis", "5856"),
    ("cirrhosis", "5715"),
    ("dementia", "2948"),
    ("asthma", "49390"),
    ("pvd", "4439"),
    ("osteoporosis", "73300"),
]
BACKGROUND_PROCEDURES = ["3893", "9904", "3891", "9390", "0040", "3324", "5491", "4311"]
# care unit -> (share of admissions, risk offset, condition mix)
UNITS = {
    "MICU": (0.3, 0.4, {"severe": 0.35, "moderate": 0.5, "mild": 0.15}),
    "SICU": (0.15, 0.0, {"severe": 0.2, "moderate": 0.4, "mild": 0.4}),
    "CCU": (0.15, 0.2, {"severe": 0.3, "moderate": 0.4, "mild": 0.3}),
    "CSRU": (0.15, -0.8, {"severe": 0.1, "moderate": 0.3, "mild": 0.6}),
    "TSICU": (0.1, 0.1, {"severe": 0.25, "moderate": 0.35, "mild": 0.4}),
    None: (0.15, -0.6, {"severe": 0.05, "moderate": 0.45, "mild": 0.5}),
}


ADMISSIONS_HEADER = (
    "ROW_ID SUBJECT_ID HADM_ID ADMITTIME DISCHTIME DEATHTIME ADMISSION_TYPE ADMISSION_LOCATION DISCHARGE_LOCATION "
    "INSURANCE LANGUAGE RELIGION MARITAL_STATUS ETHNICITY EDREGTIME EDOUTTIME DIAGNOSIS HOSPITAL_EXPIRE_FLAG "
    "HAS_CHARTEVENTS_DATA"
).split()
ICUSTAYS_HEADER = (
    "ROW_ID SUBJECT_ID HADM_ID ICUSTAY_ID DBSOURCE FIRST_CAREUNIT LAST_CAREUNIT FIRST_WARDID LAST_WARDID INTIME "
    "OUTTIME LOS"
).split()
ICD_HEADER = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"]
UNIT_WEIGHTS = {u: share for u, (share, _, _) in UNITS.items()}


def pick(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass(frozen=True)
class Admission:
    row: int
    subject: int
    hadm: int
    unit: str | None
    findings: list
    comorbid: list
    age: int
    died: bool
    adm_type: str


def admit(rng: random.Random, i: int) -> Admission:
    """The i-th admission; the draws' order is the corpus's bytes, so it must not change."""
    subject, hadm = 10000 + i // 2 * 3 + rng.randint(0, 1), 100000 + i
    newborn = rng.random() < 0.04
    unit = None if newborn else pick(rng, UNIT_WEIGHTS)
    _, offset, mix = UNITS[unit]
    findings = [rng.choice(CONDITIONS[pick(rng, mix)]) for _ in range(rng.randint(1, 3))]
    comorbid = rng.sample(COMORBIDITIES, rng.randint(2, 5))
    age = 0 if newborn else rng.randint(20, 95)
    risk = -2.2 + offset + 0.03 * (age - 60) + sum(f[1] for f in findings)
    died = rng.random() < 1 / (1 + math.exp(-risk))
    adm_type = "NEWBORN" if newborn else rng.choices(["EMERGENCY", "ELECTIVE", "URGENT"], [0.7, 0.2, 0.1])[0]
    return Admission(i, subject, hadm, unit, findings, comorbid, age, died, adm_type)


def admission_row(a: Admission) -> list:
    discharged = "DEAD/EXPIRED" if a.died else "HOME"
    admitted = ["2150-01-01 00:00:00", "2150-01-09 00:00:00", "", a.adm_type, "EMERGENCY ROOM ADMIT", discharged]
    people = ["Medicare", "ENGL", "", "MARRIED", "WHITE", "", ""]
    return [a.row, a.subject, a.hadm, *admitted, *people, a.findings[0][0].upper(), int(a.died), 1]


def icu_row(a: Admission) -> list:
    stay = [1, 1, "2150-01-01 02:00:00", "2150-01-03 00:00:00", "2.0"]
    return [a.row, a.subject, a.hadm, 200000 + a.row, "carevue", a.unit, a.unit, *stay]


def add_codes(rng: random.Random, tables: dict[str, list[list]], a: Admission) -> None:
    """Diagnosis codes of the findings and comorbidities; procedures of the findings plus background ones."""
    codes = [c for f in a.findings for c in f[2]] + [c for _, c in a.comorbid]
    procs = [p for f in a.findings for p in f[3]] + rng.sample(BACKGROUND_PROCEDURES, rng.randint(0, 3))
    tables["dx"] += [[len(tables["dx"]), a.subject, a.hadm, n + 1, c] for n, c in enumerate(dict.fromkeys(codes))]
    tables["px"] += [[len(tables["px"]), a.subject, a.hadm, n + 1, c] for n, c in enumerate(dict.fromkeys(procs))]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    # mtime=0: gzip otherwise stamps the time into the header, and the same seed must give the same bytes
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def write(root: Path, rng: random.Random, n_admissions: int) -> None:
    root.mkdir(parents=True)
    tables: dict[str, list[list]] = {k: [] for k in ("adm", "icu", "notes", "dx", "px")}
    for i in range(n_admissions):
        a = admit(rng, i)
        tables["adm"].append(admission_row(a))
        if a.unit is not None:
            tables["icu"].append(icu_row(a))
        text = summary(rng, a.age, rng.choice(["man", "woman"]), a.findings, a.comorbid, a.died)
        tables["notes"] += note_rows(rng, len(tables["notes"]), a.subject, a.hadm, text)
        add_codes(rng, tables, a)
    write_csv(root / "ADMISSIONS.csv", ADMISSIONS_HEADER, tables["adm"])
    write_csv(root / "ICUSTAYS.csv", ICUSTAYS_HEADER, tables["icu"])
    write_csv(root / "NOTEEVENTS.csv.gz", NOTE_HEADER, tables["notes"])
    write_csv(root / "DIAGNOSES_ICD.csv", ICD_HEADER, tables["dx"])
    write_csv(root / "PROCEDURES_ICD.csv", ICD_HEADER, tables["px"])
