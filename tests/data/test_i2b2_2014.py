"""The i2b2 2014 PHI loader on hand-written XML."""

from pathlib import Path

import pytest

from bench.data import load_task
from bench.errors import BenchError, DataError

TEXT = "Record date: 2069-04-07\nMr. Avery Fenwick, 54, seen at Lakeside General.\n"
TAGS = [
    ("DATE", "P0", 13, 23, "2069-04-07", "DATE"),
    ("NAME", "P1", 28, 40, "Avery Fenwick", "PATIENT"),  # end off by one: text is 13 chars
    ("AGE", "P2", 43, 45, "54", "AGE"),
    ("LOCATION", "P3", 55, 71, "Lakeside General", "HOSPITAL"),
]


def xml(text: str = TEXT, tags=TAGS) -> str:
    body = "\n".join(
        f'<{c} id="{i}" start="{s}" end="{e}" text="{t}" TYPE="{ty}" comment="" />' for c, i, s, e, t, ty in tags
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n'
        f"<TEXT><![CDATA[{text}]]></TEXT>\n<TAGS>\n{body}\n</TAGS>\n</deIdi2b2>\n"
    )


def write_release(root: Path, train_xml: str | None = None) -> Path:
    for d in ("training-PHI-Gold-Set1", "training-PHI-Gold-Set2", "testing-PHI-Gold-fixed"):
        (root / d).mkdir()
    (root / "training-PHI-Gold-Set1/100-01.xml").write_text(train_xml or xml())
    (root / "training-PHI-Gold-Set2/101-01.xml").write_text(xml())
    (root / "testing-PHI-Gold-fixed/200-01.xml").write_text(xml())
    return root


def test_offsets_tags_and_repair(tmp_path):
    data = load_task("i2b2-2014", write_release(tmp_path))
    first, second = data.train[0], data.train[1]
    assert first.tokens == ("Record", "date", ":", "2069", "-", "04", "-", "07")
    assert first.tags == ("O", "O", "O", "B-DATE", "I-DATE", "I-DATE", "I-DATE", "I-DATE")
    assert second.tokens[:4] == ("Mr", ".", "Avery", "Fenwick")
    assert second.tags == ("O", "O", "B-NAME", "I-NAME", "O", "B-AGE", "O", "O", "O", "B-LOCATION", "I-LOCATION", "O")
    assert data.warnings["offset_repaired"] == 3  # the NAME tag, in each of the 3 files
    assert len(data.train) + len(data.splits["validation"]) == 4 and len(data.test) == 2
    assert len(data.splits["validation"]) == 2  # one of the two training documents (10%, at least one)
    assert data.label_names == ["NAME", "PROFESSION", "LOCATION", "AGE", "DATE", "CONTACT", "ID"]  # the 7 categories
    assert {ex.site for split in data.splits.values() for ex in split} == {"partners"}  # one provider


def test_fine_type_labels(tmp_path):
    data = load_task("i2b2-2014", write_release(tmp_path), label_level="type")
    assert set(data.train[1].entity_types()) == {"PATIENT", "AGE", "HOSPITAL"}
    with pytest.raises(BenchError, match="label-level"):
        load_task("i2b2-2014", tmp_path, label_level="fine")


def test_truncated_xml_names_file_and_line(tmp_path):
    write_release(tmp_path, train_xml=xml()[:-40])
    with pytest.raises(DataError, match=r"100-01\.xml:\d+: malformed XML"):
        load_task("i2b2-2014", tmp_path)


def test_unknown_category_names_line(tmp_path):
    bad = [("SECRET", "P9", 0, 6, "Record", "X")]
    write_release(tmp_path, train_xml=xml(tags=bad))
    with pytest.raises(
        DataError,
        match=r"100-01\.xml:7: unknown PHI category of 6 characters, not quoted \(not one of NAME, PROFESSION",
    ):
        load_task("i2b2-2014", tmp_path)
