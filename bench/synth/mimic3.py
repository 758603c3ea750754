"""Write synthetic MIMIC-III tables: admissions, ICU stays, discharge summaries, ICD-9 codes.

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
from pathlib import Path

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
NEGATED = ["no evidence of sepsis", "denies chest pain", "no signs of bleeding", "negative for pneumonia"]


def pick(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def summary(rng: random.Random, age: int, sex: str, findings: list, comorbid: list, died: bool) -> str:
    """A discharge summary in MIMIC's section layout, with [** **] de-identification marks."""
    hpi = f"{age} yo {sex} with history of {', '.join(c for c, _ in comorbid)} who presents with " + (
        " and ".join(f[0] for f in findings) + ". " + " ".join(rng.sample(NEGATED, 2)) + "."
    )
    exam = "intubated and sedated, hypotensive" if any(f[1] > 1.5 for f in findings) else "alert, comfortable"
    if died and rng.random() < 0.3:
        exam += ". On final exam patient expired, no pulse, no respirations"
    course = "Despite maximal therapy the patient expired." if died else "Patient improved and was stable."
    return "\n".join(
        [
            f"Admission Date:  [**2150-{rng.randint(1, 12)}-{rng.randint(1, 28)}**]   Discharge Date:  [**2150-**]",
            f"Sex:   {sex[0].upper()}",
            "",
            "Service: MEDICINE",
            "",
            "Allergies:",
            rng.choice(["No Known Allergies to Drugs", "Penicillins"]),
            "",
            "Chief Complaint:",
            findings[0][0],
            "",
            "History of Present Illness:",
            hpi,
            "",
            "Past Medical History:",
            "\n".join(f"- {c}" for c, _ in comorbid),
            "",
            "Social History:",
            rng.choice(["Lives with wife.", "Lives alone.", "Former smoker."]),
            "",
            "Physical Exam:",
            exam + ".",
            "",
            "Brief Hospital Course:",
            course,
            "",
            "Discharge Disposition:",
            "Expired" if died else rng.choice(["Home", "Extended Care"]),
            "",
            "Discharge Diagnosis:",
            ", ".join(f[0] for f in findings),
            "",
            "Discharge Condition:",
            "deceased" if died else "stable",
        ]
    )


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
    unit_weights = {u: share for u, (share, _, _) in UNITS.items()}
    for i in range(n_admissions):
        subject, hadm = 10000 + i // 2 * 3 + rng.randint(0, 1), 100000 + i
        newborn = rng.random() < 0.04
        unit = None if newborn else pick(rng, unit_weights)
        _, offset, mix = UNITS[unit]
        findings = [rng.choice(CONDITIONS[pick(rng, mix)]) for _ in range(rng.randint(1, 3))]
        comorbid = rng.sample(COMORBIDITIES, rng.randint(2, 5))
        age = 0 if newborn else rng.randint(20, 95)
        risk = -2.2 + offset + 0.03 * (age - 60) + sum(f[1] for f in findings)
        died = rng.random() < 1 / (1 + math.exp(-risk))
        adm_type = "NEWBORN" if newborn else rng.choices(["EMERGENCY", "ELECTIVE", "URGENT"], [0.7, 0.2, 0.1])[0]
        tables["adm"].append(
            [
                i,
                subject,
                hadm,
                "2150-01-01 00:00:00",
                "2150-01-09 00:00:00",
                "",
                adm_type,
                "EMERGENCY ROOM ADMIT",
                "DEAD/EXPIRED" if died else "HOME",
                "Medicare",
                "ENGL",
                "",
                "MARRIED",
                "WHITE",
                "",
                "",
                findings[0][0].upper(),
                int(died),
                1,
            ]
        )
        if unit is not None:
            tables["icu"].append(
                [
                    i,
                    subject,
                    hadm,
                    200000 + i,
                    "carevue",
                    unit,
                    unit,
                    1,
                    1,
                    "2150-01-01 02:00:00",
                    "2150-01-03 00:00:00",
                    "2.0",
                ]
            )
        text = summary(rng, age, rng.choice(["man", "woman"]), findings, comorbid, died)
        kind = rng.random()
        if kind > 0.03:  # 3% have only an addendum and must be dropped by the loader
            tables["notes"].append(
                [len(tables["notes"]), subject, hadm, "2150-01-09", "", "", "Discharge summary", "Report", "", "", text]
            )
        if kind < 0.13:
            tables["notes"].append(
                [
                    len(tables["notes"]),
                    subject,
                    hadm,
                    "2150-01-10",
                    "",
                    "",
                    "Discharge summary",
                    "Addendum",
                    "",
                    "",
                    "Addendum: follow up labs pending.",
                ]
            )
        tables["notes"].append(
            [
                len(tables["notes"]),
                subject,
                hadm,
                "2150-01-02",
                "2150-01-02 08:00:00",
                "",
                "Nursing/other",
                "Report",
                "17",
                "",
                "Nursing note: resting in bed.",
            ]
        )
        codes = [c for f in findings for c in f[2]] + [c for _, c in comorbid]
        procs = [p for f in findings for p in f[3]] + rng.sample(BACKGROUND_PROCEDURES, rng.randint(0, 3))
        tables["dx"] += [[len(tables["dx"]), subject, hadm, n + 1, c] for n, c in enumerate(dict.fromkeys(codes))]
        tables["px"] += [[len(tables["px"]), subject, hadm, n + 1, c] for n, c in enumerate(dict.fromkeys(procs))]
    write_csv(
        root / "ADMISSIONS.csv",
        [
            "ROW_ID",
            "SUBJECT_ID",
            "HADM_ID",
            "ADMITTIME",
            "DISCHTIME",
            "DEATHTIME",
            "ADMISSION_TYPE",
            "ADMISSION_LOCATION",
            "DISCHARGE_LOCATION",
            "INSURANCE",
            "LANGUAGE",
            "RELIGION",
            "MARITAL_STATUS",
            "ETHNICITY",
            "EDREGTIME",
            "EDOUTTIME",
            "DIAGNOSIS",
            "HOSPITAL_EXPIRE_FLAG",
            "HAS_CHARTEVENTS_DATA",
        ],
        tables["adm"],
    )
    write_csv(
        root / "ICUSTAYS.csv",
        [
            "ROW_ID",
            "SUBJECT_ID",
            "HADM_ID",
            "ICUSTAY_ID",
            "DBSOURCE",
            "FIRST_CAREUNIT",
            "LAST_CAREUNIT",
            "FIRST_WARDID",
            "LAST_WARDID",
            "INTIME",
            "OUTTIME",
            "LOS",
        ],
        tables["icu"],
    )
    write_csv(
        root / "NOTEEVENTS.csv.gz",
        [
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
        ],
        tables["notes"],
    )
    icd_header = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"]
    write_csv(root / "DIAGNOSES_ICD.csv", icd_header, tables["dx"])
    write_csv(root / "PROCEDURES_ICD.csv", icd_header, tables["px"])
