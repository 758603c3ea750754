"""Synthetic MIMIC-III note text: discharge summaries in MIMIC's section layout, and the
NOTEEVENTS rows around them (addenda and nursing notes the loader must skip)."""

from __future__ import annotations

import random

NEGATED = ["no evidence of sepsis", "denies chest pain", "no signs of bleeding", "negative for pneumonia"]
NOTE_HEADER = "ROW_ID SUBJECT_ID HADM_ID CHARTDATE CHARTTIME STORETIME CATEGORY DESCRIPTION CGID ISERROR TEXT".split()


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


def note_rows(rng: random.Random, first_id: int, subject: int, hadm: int, text: str) -> list[list]:
    """An admission's NOTEEVENTS rows, numbered from `first_id`."""
    rows = []
    kind = rng.random()
    if kind > 0.03:  # 3% have only an addendum and must be dropped by the loader
        rows.append(["2150-01-09", "", "", "Discharge summary", "Report", "", "", text])
    if kind < 0.13:
        rows.append(
            ["2150-01-10", "", "", "Discharge summary", "Addendum", "", "", "Addendum: follow up labs pending."]
        )
    rows.append(
        ["2150-01-02", "2150-01-02 08:00:00", "", "Nursing/other", "Report", "17", "", "Nursing note: resting in bed."]
    )
    return [[first_id + n, subject, hadm, *row] for n, row in enumerate(rows)]
