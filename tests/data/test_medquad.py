"""The shipped real-text classification task `medquad`: its loader on hand-written files in the
shipped layout (one line per error, naming the file and line), its split by focus, and the
shipped corpus itself."""

import gzip

import pytest

from bench.data import TASKS, load_task
from bench.data.medquad import COLUMNS, SHIPPED
from bench.errors import DataError

HEADER = "\t".join(COLUMNS) + "\n"


def _write(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "medquad.tsv.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    return folder


def test_a_hand_written_file_loads_with_each_focus_in_one_split(tmp_path):
    rows = [
        f"2_GARD_QA\t{d}\tcondition {d % 40}\t{['information', 'symptoms', 'treatment'][d % 3]}\tAnswer text {d}.\n"
        for d in range(120)
    ]
    data = load_task("medquad", _write(tmp_path / "m", HEADER + "".join(rows)))
    assert data.kind == "cls" and data.label_names == ["information", "symptoms", "treatment"]
    assert sum(len(v) for v in data.splits.values()) == 120
    where = {ex.doc_id: name for name, examples in data.splits.items() for ex in examples}
    for name, examples in data.splits.items():
        assert all(where[ex.doc_id] == name for ex in examples)  # a focus never straddles splits
    assert len(where) == 40 and {ex.site for ex in data.train} == {"2_GARD_QA"}
    assert data.train[0].text.startswith("Answer text")


@pytest.mark.parametrize(
    "text, message",
    [
        ("source\tanswer\n", ":1: expected the columns source, document, focus, qtype, answer"),
        (HEADER + "2_GARD_QA\tdoc\tfocus\tinformation\n", ":2: expected 5 non-empty"),
        (HEADER + "2_GARD_QA\tdoc\t\tinformation\tAn answer.\n", ":2: expected 5 non-empty"),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_task("medquad", _write(tmp_path / "m", text))


def test_a_folder_without_the_file_names_it(tmp_path):
    with pytest.raises(DataError, match="no medquad.tsv.gz"):
        load_task("medquad", tmp_path)


def test_the_shipped_corpus_has_its_licence_and_the_documented_counts():
    assert TASKS.get("medquad").bundled == SHIPPED and (SHIPPED / "LICENSE").is_file()
    assert "Attribution 4.0" in (SHIPPED / "LICENSE").read_text()
    data = load_task("medquad")
    sizes = {name: len(examples) for name, examples in data.splits.items()}
    assert sum(sizes.values()) == 15808 and sizes["train"] > sizes["test"] > sizes["validation"]
    assert len(data.label_names) == 15 and len({ex.site for ex in data.train}) == 9
