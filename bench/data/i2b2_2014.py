"""i2b2 2014 de-identification (PHI) XML, as released.

    training-PHI-Gold-Set1/*.xml, training-PHI-Gold-Set2/*.xml  -> train
    testing-PHI-Gold-fixed/*.xml                                 -> test

Each file is `<deIdi2b2><TEXT><![CDATA[...]]></TEXT><TAGS><NAME id= start= end= text= TYPE=/>
...</TAGS></deIdi2b2>`. Offsets are characters into the CDATA, end exclusive, and are checked
against the `text` attribute; an offset that is off is repaired by finding that text nearby
(counted in `warnings`). Labels are the 7 PHI categories (element names), or the fine TYPE
attribute with `label_level="type"`. Sentences are the text's lines (long ones split after
full stops); tokens are words and single punctuation marks. All 2014 notes come from Partners,
so every document's site is `partners`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from bench.data.layouts import I2B2_2014_SPLIT_DIRS as SPLIT_DIRS
from bench.data.redact import shown
from bench.data.registry import register_task
from bench.data.spans import Span, bio_tags, resolve_spans
from bench.data.textio import read_text
from bench.data.types import NerExample, TaskData
from bench.errors import DataError

CATEGORIES = ("NAME", "PROFESSION", "LOCATION", "AGE", "DATE", "CONTACT", "ID")
TYPES = (
    "PATIENT",
    "DOCTOR",
    "USERNAME",
    "PROFESSION",
    "ROOM",
    "DEPARTMENT",
    "HOSPITAL",
    "ORGANIZATION",
    "STREET",
    "CITY",
    "STATE",
    "COUNTRY",
    "ZIP",
    "LOCATION-OTHER",
    "AGE",
    "DATE",
    "PHONE",
    "FAX",
    "EMAIL",
    "URL",
    "IPADDR",
    "SSN",
    "MEDICALRECORD",
    "HEALTHPLAN",
    "ACCOUNT",
    "LICENSE",
    "VEHICLE",
    "DEVICE",
    "BIOID",
    "IDNUM",
)
TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_SENTENCE_TOKENS = 64
REPAIR_WINDOW = 20  # characters searched either side of a wrong offset
SITE = "partners"


def tag_line(raw: str, tag_id: str) -> int | None:
    """The file line of a tag, for error messages (ElementTree does not keep it)."""
    idx = raw.find(f'id="{tag_id}"')
    return raw.count("\n", 0, idx) + 1 if idx >= 0 else None


def char_spans(path: Path, raw: str, root: ET.Element, text: str, level: str, warnings: Counter):
    """(start, end, label) character spans, offsets checked against each tag's text."""
    tags = root.find("TAGS")
    spans = []
    for tag in list(tags) if tags is not None else []:
        tag_id = tag.get("id", "?")
        label = tag.tag if level == "category" else tag.get("TYPE", "")
        valid = CATEGORIES if level == "category" else TYPES
        if label not in valid:  # never quoted: a name typed into TYPE is a single word too
            raise DataError(
                path,
                f"unknown PHI {level} of {len(label)} characters, not quoted (not one of {', '.join(valid)}), "
                f"in tag {shown(tag_id)}",
                tag_line(raw, tag_id),
            )
        try:
            start, end = int(tag.get("start", "")), int(tag.get("end", ""))
        except ValueError:
            raise DataError(path, f"tag {shown(tag_id)} has no integer start/end", tag_line(raw, tag_id)) from None
        expected = tag.get("text", text[start:end])
        if text[start:end] != expected:
            lo = max(0, start - REPAIR_WINDOW)
            found = text.find(expected, lo, end + REPAIR_WINDOW + len(expected)) if expected else -1
            if found < 0:
                warnings["unrepairable_phi_dropped"] += 1
                continue
            warnings["offset_repaired"] += 1
            start, end = found, found + len(expected)
        if not 0 <= start < end <= len(text):
            warnings["unrepairable_phi_dropped"] += 1
            continue
        spans.append((start, end, label))
    return spans


def sentences(text: str) -> list[list[tuple[int, int]]]:
    """Token character offsets grouped into sentences: lines, long ones cut after full stops."""
    result = []
    offset = 0
    for line in text.split("\n"):
        current: list[tuple[int, int]] = []
        for m in TOKEN.finditer(line):
            current.append((offset + m.start(), offset + m.end()))
            if len(current) >= MAX_SENTENCE_TOKENS and m.group() == ".":
                result.append(current)
                current = []
        if current:
            result.append(current)
        offset += len(line) + 1
    return result


def read_document(path: Path, level: str, warnings: Counter) -> list[NerExample]:
    raw = read_text(path)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise DataError(path, f"malformed XML: {e.msg if hasattr(e, 'msg') else e}", e.position[0]) from None
    node = root.find("TEXT")
    if node is None or node.text is None:
        raise DataError(path, "no <TEXT> element")
    text = node.text
    spans = char_spans(path, raw, root, text, level, warnings)
    examples = []
    for sent in sentences(text):
        token_spans = []
        for start, end, label in spans:
            hit = [i for i, (s, e) in enumerate(sent) if s < end and start < e]
            if hit:
                token_spans.append(Span(hit[0], hit[-1], label))
        tokens = tuple(text[s:e] for s, e in sent)
        tags = bio_tags(len(tokens), resolve_spans(token_spans, warnings))
        examples.append(NerExample(tokens, tuple(tags), SITE, path.stem))
    return examples


@register_task(
    "i2b2-2014",
    kind="ner",
    synth_subdir="i2b2-2014",
    split_rule="the training and testing folders, validation: 10% of the training documents of each site that has at least 2",
)
def load(root: Path, label_level: str = "category") -> TaskData:
    if label_level not in ("category", "type"):
        raise DataError(root, f"--label-level must be 'category' or 'type', not {label_level!r}")
    warnings: Counter = Counter()
    splits: dict[str, list[NerExample]] = {}
    for split, dirs in SPLIT_DIRS.items():
        present = [root / d for d in dirs if (root / d).is_dir()]
        if not present:
            raise DataError(root, f"not an i2b2 2014 folder: no {' or '.join(dirs)}/")
        files = sorted(f for d in present for f in d.glob("*.xml"))
        if not files:
            raise DataError(present[0], "no .xml files")
        splits[split] = [ex for f in files for ex in read_document(f, label_level, warnings)]
    labels = list(CATEGORIES if label_level == "category" else TYPES)
    return TaskData("i2b2-2014", "ner", labels, splits, warnings)
