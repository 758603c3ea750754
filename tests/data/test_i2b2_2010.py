"""The i2b2 2010 loader on hand-written files in the release layout, defects included."""

from pathlib import Path

import pytest

from bench.data import load_task
from bench.data.i2b2_2010 import TEST_CON_DIR, TEST_TXT_DIR, TRAIN_DIR
from bench.data.splitting import split_of
from bench.errors import DataError

# Line 2 is blank and counts; tokens count from 0 and the end is inclusive.
TXT = "Patient denies Chest Pain .\n\nStarted on IV heparin drip for PE .\nCXR clear .\n"
CON = "\n".join(
    [
        'c="chest pain" 1:2 1:3||t="problem"',  # case differs from the text
        'c="chest pain" 1:2 1:3||t="problem"',  # duplicate line
        'c="iv heparin drip" 3:2 3:5||t="treatment"',  # end one token too far (text says 3)
        'c="heparin" 3:3 3:3||t="treatment"',  # nested inside the outer span
        'c="pe" 3:6 3:6||t="problem"',
        'c="cxr" 4:0 4:0||t="test"',
    ]
)


def write_release(root: Path, con: str = CON) -> Path:
    for site in ("beth", "partners"):
        (root / TRAIN_DIR / site / "txt").mkdir(parents=True)
        (root / TRAIN_DIR / site / "concept").mkdir(parents=True)
    (root / TRAIN_DIR / "beth/txt/record-1.txt").write_text(TXT)
    (root / TRAIN_DIR / "beth/concept/record-1.con").write_text(con)
    (root / TRAIN_DIR / "partners/txt/018636330_DH.txt").write_text("CXR clear .\n")
    (root / TRAIN_DIR / "partners/concept/018636330_DH.con").write_text('c="cxr" 1:0 1:0||t="test"\n')
    (root / TEST_TXT_DIR).mkdir(parents=True)
    (root / TEST_CON_DIR).mkdir(parents=True)
    (root / TEST_TXT_DIR / "0001.txt").write_text("Aspirin given .\n")
    (root / TEST_CON_DIR / "0001.con").write_text('c="aspirin" 1:0 1:0||t="treatment"\n')
    return root


def test_release_tree_tags_and_repairs(tmp_path):
    data = load_task("i2b2-2010", write_release(tmp_path))
    train = data.train
    assert [ex.tokens for ex in train[:3]] == [
        ("Patient", "denies", "Chest", "Pain", "."),
        ("Started", "on", "IV", "heparin", "drip", "for", "PE", "."),
        ("CXR", "clear", "."),
    ]
    assert train[0].tags == ("O", "O", "B-problem", "I-problem", "O")
    assert train[1].tags == ("O", "O", "B-treatment", "I-treatment", "I-treatment", "O", "B-problem", "O")
    assert train[2].tags == ("B-test", "O", "O")
    assert [ex.site for ex in train] == ["beth", "beth", "beth", "partners"]
    assert data.test[0].tags == ("B-treatment", "O", "O") and data.test[0].site == "upmc"
    assert data.warnings["duplicate_concept"] == 1
    assert data.warnings["offset_repaired"] == 1
    assert data.warnings["overlapping_span_dropped"] == 1
    assert data.warnings["case_mismatch"] >= 1


def test_flat_pair_layout(tmp_path):
    (tmp_path / "txt").mkdir()
    (tmp_path / "concept").mkdir()
    for i in range(10):
        (tmp_path / f"txt/record-{i}.txt").write_text(TXT)
        (tmp_path / f"concept/record-{i}.con").write_text(CON)
    data = load_task("i2b2-2010", tmp_path)
    assert sum(len(split) for split in data.splits.values()) == 30
    entities = sum(len(ex.entity_types()) for split in data.splits.values() for ex in split)
    assert entities == 10 * 4


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('c="chest pain" 1:2 1:3 t="problem"', "not a concept line"),
        ('c="chest pain" 1:2 1:3||t="symptom"', "unknown concept type"),
        ('c="chest pain" 1:3 1:2||t="problem"', "ends before it starts"),
    ],
)
def test_malformed_concept_line_names_file_and_line(tmp_path, bad_line, message):
    write_release(tmp_path, con=CON + "\n" + bad_line + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_task("i2b2-2010", tmp_path)
    assert str(err.value).startswith(f"{tmp_path / TRAIN_DIR / 'beth/concept/record-1.con'}:7:")


def test_test_file_names_give_sites(tmp_path):
    """README: "test files by name pattern (`record-N` beth, `NNN_XX` partners, `NNNN` upmc)"; any
    other name is `unknown` (the loader's docstring)."""
    write_release(tmp_path)
    names = {"record-5": "beth", "018636330_DH": "partners", "0005": "upmc", "0001": "upmc", "notes_a1": "unknown"}
    for stem in names:
        (tmp_path / TEST_TXT_DIR / f"{stem}.txt").write_text("Aspirin given .\n")
        (tmp_path / TEST_CON_DIR / f"{stem}.con").write_text('c="aspirin" 1:0 1:0||t="treatment"\n')
    data = load_task("i2b2-2010", tmp_path)
    assert {ex.doc_id: ex.site for ex in data.test} == names


def test_flat_folder_splits_by_document(tmp_path):
    """README: "i2b2 2010 flat folders [are split] by document": every sentence of a document sits
    in the split of its name's hash, `split_of(stem)`."""
    (tmp_path / "txt").mkdir()
    (tmp_path / "concept").mkdir()
    stems = [f"record-{i}" for i in range(12)]
    assert {split_of(s) for s in stems} == {"train", "validation", "test"}
    for stem in stems:
        (tmp_path / f"txt/{stem}.txt").write_text(TXT)
        (tmp_path / f"concept/{stem}.con").write_text(CON)
    data = load_task("i2b2-2010", tmp_path)
    placed: dict[str, list[str]] = {}
    for name, split in data.splits.items():
        for ex in split:
            placed.setdefault(ex.doc_id, []).append(name)
    assert placed == {s: [split_of(s)] * 3 for s in stems}  # each document's 3 sentences, in its split


def test_not_a_release_folder(tmp_path):
    with pytest.raises(DataError, match="not an i2b2 2010 folder"):
        load_task("i2b2-2010", tmp_path)
