"""Write the synthetic i2b2 2010 release tree, with the real release's defects in small doses."""

from __future__ import annotations

import random
from pathlib import Path

from bench.data.layouts import I2B2_2010_TEST_CON_DIR as TEST_CON_DIR
from bench.data.layouts import I2B2_2010_TEST_TXT_DIR as TEST_TXT_DIR
from bench.data.layouts import I2B2_2010_TRAIN_DIR as TRAIN_DIR
from bench.data.spans import Span
from bench.synth.concepts import sentence
from bench.synth.sites import SITES, SiteStyle

SECTIONS = ("hpi", "pmh", "exam", "labs", "course", "plan")
DEFECT_RATE = 0.02  # duplicate lines, off-by-one ends, nested spans: each at this rate


def document(rng: random.Random, site: SiteStyle, test: bool) -> tuple[list[str], list[tuple[int, Span]]]:
    """Lines of one note and its concepts as (1-based line, span)."""
    lines = ["Admission Date :", f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}", ""]
    concepts = []
    for key in SECTIONS:
        lines.append(site.headers[key])
        for _ in range(rng.randint(1, 4)):
            tokens, spans = sentence(rng, site, test)
            lines.append(" ".join(tokens))
            concepts += [(len(lines), s) for s in spans]
        lines.append("")
    return lines, concepts


def con_lines(rng: random.Random, lines: list[str], concepts: list[tuple[int, Span]]) -> list[str]:
    out = []
    for lineno, span in concepts:
        tokens = lines[lineno - 1].split()
        text = " ".join(tokens[span.start : span.end + 1]).lower()
        end = span.end
        if rng.random() < DEFECT_RATE:  # off-by-one end token; the c= text stays right
            end += 1
        out.append(f'c="{text}" {lineno}:{span.start} {lineno}:{end}||t="{span.label}"')
        if rng.random() < DEFECT_RATE:
            out.append(out[-1])  # duplicate concept line
        if span.end > span.start and rng.random() < DEFECT_RATE:  # nested inner span
            out.append(f'c="{tokens[span.end].lower()}" {lineno}:{span.end} {lineno}:{span.end}||t="{span.label}"')
    return out


def write_document(rng: random.Random, site: SiteStyle, txt: Path, con: Path, test: bool = False) -> None:
    lines, concepts = document(rng, site, test)
    txt.write_text("\n".join(lines) + "\n")
    con.write_text("\n".join(con_lines(rng, lines, concepts)) + "\n")


def test_name(site: str, i: int) -> str:
    """File names whose pattern tells the site, as in the release's test_data."""
    return {"beth": f"record-{900 + i}", "partners": f"{700000 + i:09d}_DH", "upmc": f"{i:04d}"}[site]


def write(root: Path, rng: random.Random, docs_per_site: int) -> None:
    for name, site in SITES.items():
        txt_dir, con_dir = root / TRAIN_DIR / name / "txt", root / TRAIN_DIR / name / "concept"
        txt_dir.mkdir(parents=True)
        con_dir.mkdir(parents=True)
        for i in range(docs_per_site):
            stem = test_name(name, i + 1000)
            write_document(rng, site, txt_dir / f"{stem}.txt", con_dir / f"{stem}.con")
    (root / TEST_TXT_DIR).mkdir(parents=True)
    (root / TEST_CON_DIR).mkdir(parents=True)
    for name, site in SITES.items():
        for i in range(max(2, docs_per_site // 3)):
            stem = test_name(name, i)
            write_document(
                rng, site, root / TEST_TXT_DIR / f"{stem}.txt", root / TEST_CON_DIR / f"{stem}.con", test=True
            )
