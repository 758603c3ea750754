"""Write synthetic i2b2 2014 de-identification XML: invented PHI in clinical prose."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

from bench.data.layouts import I2B2_2014_SPLIT_DIRS as SPLIT_DIRS
from bench.synth import lexicon
from bench.synth.concepts import sentence
from bench.synth.sites import SITES

CATEGORY = {
    "PATIENT": "NAME",
    "DOCTOR": "NAME",
    "PROFESSION": "PROFESSION",
    "CITY": "LOCATION",
    "STATE": "LOCATION",
    "HOSPITAL": "LOCATION",
    "AGE": "AGE",
    "DATE": "DATE",
    "PHONE": "CONTACT",
    "MEDICALRECORD": "ID",
    "IDNUM": "ID",
}
PHI_TEMPLATES = [
    "Record date : {DATE}",
    "{PATIENT} is a {AGE} year old {PROFESSION} from {CITY} , {STATE} .",
    "Seen by Dr. {DOCTOR} at {HOSPITAL} on {DATE} .",
    "MRN : {MEDICALRECORD}",
    "Contact : {PHONE}",
    "Follow up with Dr. {DOCTOR} on {DATE} .",
    "Lives in {CITY} and works as a {PROFESSION} .",
    "Transferred from {HOSPITAL} , ref {IDNUM} .",
    "{PATIENT} reports {AGE} years of smoking history .",
]
OFFSET_DEFECT_RATE = 0.02


def value(rng: random.Random, phi_type: str) -> str:
    city, state = rng.choice(lexicon.CITIES)
    return {
        "PATIENT": f"{rng.choice(lexicon.FIRST_NAMES)} {rng.choice(lexicon.LAST_NAMES)}",
        "DOCTOR": rng.choice(lexicon.LAST_NAMES),
        "PROFESSION": rng.choice(lexicon.PROFESSIONS),
        "CITY": city,
        "STATE": state,
        "HOSPITAL": rng.choice(lexicon.HOSPITALS),
        "AGE": str(rng.randint(19, 92)),
        "DATE": f"{rng.randint(2060, 2099)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "PHONE": f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        "MEDICALRECORD": str(rng.randint(1000000, 9999999)),
        "IDNUM": f"{rng.randint(10, 99)}-{rng.randint(100000, 999999)}",
    }[phi_type]


def note(rng: random.Random) -> tuple[str, list[tuple[int, int, str, str]]]:
    """Text and its PHI as (start, end, TYPE, text), offsets into the text, end exclusive."""
    site = SITES[rng.choice(list(SITES))]
    text, phi = "", []
    for i in range(rng.randint(8, 14)):
        if i % 2 == 0 or rng.random() < 0.3:
            for piece in rng.choice(PHI_TEMPLATES).split():
                if piece.startswith("{"):
                    phi_type, surface = piece[1:-1], value(rng, piece[1:-1])
                    phi.append((len(text), len(text) + len(surface), phi_type, surface))
                    text += surface + " "
                else:
                    text += piece + " "
        else:
            text += " ".join(sentence(rng, site)[0])
        text = text.rstrip() + "\n"
    return text, phi


def write_note(rng: random.Random, path: Path) -> None:
    text, phi = note(rng)
    tags = []
    for i, (start, end, phi_type, surface) in enumerate(phi):
        if rng.random() < OFFSET_DEFECT_RATE:  # a release-style off-by-one offset
            start, end = start + 1, end + 1
        tags.append(
            f'<{CATEGORY[phi_type]} id="P{i}" start="{start}" end="{end}" text={quoteattr(surface)} '
            f'TYPE="{phi_type}" comment="" />'
        )
    body = "\n".join(tags)
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n<TEXT><![CDATA[{text}]]></TEXT>\n'
        f"<TAGS>\n{body}\n</TAGS>\n</deIdi2b2>\n"
    )


def write(root: Path, rng: random.Random, n_train: int) -> None:
    counts = {"train": n_train, "test": max(3, n_train // 4)}
    patient = 100
    for split, dirs in SPLIT_DIRS.items():
        for i in range(counts[split]):
            folder = root / dirs[i % len(dirs)]
            folder.mkdir(parents=True, exist_ok=True)
            write_note(rng, folder / f"{patient + i // 2:03d}-{i % 2 + 1:02d}.xml")
        patient += counts[split]
