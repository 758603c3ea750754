"""How each synthetic hospital writes: section headers, abbreviations, specialty mix.

Sites differ in style and in which concepts they see most, which is what makes a natural
per-site split non-IID.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteStyle:
    name: str
    headers: dict[str, str]  # section key -> header text
    abbreviate: float  # probability of using an abbreviation where one exists
    specialty_weights: dict[str, float]  # concept group -> weight
    type_weights: dict[str, float]  # problem / test / treatment sentence mix
    lowercase: bool = False


SITES = {
    "beth": SiteStyle(
        "beth",
        {"hpi": "HPI :", "pmh": "PMH :", "exam": "PE :", "labs": "Labs :", "course": "Hosp course :", "plan": "A/P :"},
        abbreviate=0.8,
        specialty_weights={"cardiac": 0.5, "pulmonary": 0.15, "renal": 0.1, "general": 0.25},
        type_weights={"problem": 0.35, "test": 0.2, "treatment": 0.45},
    ),
    "partners": SiteStyle(
        "partners",
        {
            "hpi": "HISTORY OF PRESENT ILLNESS :",
            "pmh": "PAST MEDICAL HISTORY :",
            "exam": "PHYSICAL EXAMINATION :",
            "labs": "LABORATORY DATA :",
            "course": "HOSPITAL COURSE :",
            "plan": "DISPOSITION :",
        },
        abbreviate=0.1,
        specialty_weights={"cardiac": 0.15, "pulmonary": 0.45, "renal": 0.15, "general": 0.25},
        type_weights={"problem": 0.3, "test": 0.45, "treatment": 0.25},
    ),
    "upmc": SiteStyle(
        "upmc",
        {"hpi": "hpi:", "pmh": "hx:", "exam": "exam:", "labs": "labs:", "course": "course:", "plan": "plan:"},
        abbreviate=0.5,
        specialty_weights={"cardiac": 0.1, "pulmonary": 0.15, "renal": 0.5, "general": 0.25},
        type_weights={"problem": 0.5, "test": 0.3, "treatment": 0.2},
        lowercase=True,
    ),
}
