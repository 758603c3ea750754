"""NCBI-disease's sentences carry their abstract's PubMed id (data/ncbi-disease/documents.tsv.gz),
so the test bootstrap resamples whole abstracts; the build script that makes the mapping from the
original release, on hand-written files in the release's layout."""

import gzip
import importlib.util
import shutil
from pathlib import Path

import pytest

from bench.data import load_task
from bench.data.bootstrap_units import bootstrap_groups, shipped_test_groups
from bench.data.ncbi_disease import SHIPPED
from bench.report.tables import resampled

BUILD = Path(__file__).resolve().parents[2] / "data" / "ncbi-disease" / "documents.py"


def _build_module():
    spec = importlib.util.spec_from_file_location("ncbi_documents", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_sentences_belong_to_the_release_abstracts():
    data = load_task("ncbi-disease", SHIPPED)
    docs = {split: [ex.doc_id for ex in data.splits[split]] for split in ("train", "validation", "test")}
    # Dogan et al. 2014: 593 training abstracts (PubMed 8528200 twice), 100 development, 100 test
    assert [len(set(d)) for d in docs.values()] == [592, 100, 100]
    assert all(pmid.isdigit() for d in docs.values() for pmid in d)
    for ids in docs.values():  # an abstract's sentences are neighbours (8528200's two copies too)
        runs = [pmid for i, pmid in enumerate(ids) if i == 0 or ids[i - 1] != pmid]
        assert len(runs) == len(set(runs))
    groups = bootstrap_groups(data.splits["test"])
    assert groups["unit"] == "document" and len(set(groups["groups"])) == 100
    assert shipped_test_groups("ncbi-disease") == groups


def test_other_text_keeps_one_document_per_file(tmp_path):
    for name in ("train.tsv.gz", "devel.tsv.gz", "test.tsv.gz"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    same = load_task("ncbi-disease", tmp_path)
    assert len({ex.doc_id for ex in same.splits["test"]}) == 100  # the same text elsewhere: mapped
    text = gzip.open(SHIPPED / "test.tsv.gz", "rt").read().replace("Clustering", "Clumping", 1)
    (tmp_path / "test.tsv.gz").unlink()
    (tmp_path / "test.tsv").write_text(text)
    edited = load_task("ncbi-disease", tmp_path)
    assert {ex.doc_id for ex in edited.splits["test"]} == {"test-0"}
    assert bootstrap_groups(edited.splits["test"])["unit"] == "example"


RELEASE = """\
11|t|Fever in mice.
11|a|Mice had fever. It went away.
11\t9\t14\tfever\tSpecificDisease\tD005334

7|t|Gout.
7|a|Gout hurts.
"""


def _conll(sentences: list[list[str]]) -> str:
    return "\n".join("\n".join(f"{tok}\tO" for tok in sent) + "\n" for sent in sentences)


def test_the_build_script_places_every_sentence_in_its_abstract(tmp_path):
    build = _build_module()
    original, conll = tmp_path / "original", tmp_path / "conll"
    original.mkdir()
    conll.mkdir()
    (original / "NCBItrainset_corpus.txt").write_text(RELEASE)
    (original / "NCBIdevelopset_corpus.txt").write_text("5|t|Flu.\n5|a|Flu again.\n")
    (original / "NCBItestset_corpus.txt").write_text("9|t|Pain.\n9|a|Pain.\n")
    train = [["Fever", "in", "mice", "."], ["Mice", "had", "fever", "."], ["It", "went", "away", "."]]
    train = [["Gout", "."], ["Gout", "hurts", "."]] + train  # the CoNLL files need not keep the release's order
    for name, sents in (
        ("train", train),
        ("devel", [["Flu", "."], ["Flu", "again", "."]]),
        ("test", [["Pain", "."], ["Pain", "."]]),
    ):
        with gzip.open(conll / f"{name}.tsv.gz", "wt") as f:
            f.write(_conll(sents))
    out = tmp_path / "documents.tsv.gz"
    build.main(str(original), str(out), str(conll))
    rows = [line.split("\t") for line in gzip.open(out, "rt").read().splitlines()]
    assert rows[0] == ["split", "sentence", "pmid"]
    assert [r[2] for r in rows[1:6]] == ["7", "7", "11", "11", "11"]
    assert rows[6:] == [["devel", "0", "5"], ["devel", "1", "5"], ["test", "0", "9"], ["test", "1", "9"]]
    first = out.read_bytes()
    build.main(str(original), str(out), str(conll))
    assert out.read_bytes() == first  # no name or time in the gzip header


def test_the_build_script_names_the_sentence_it_cannot_place(tmp_path):
    build = _build_module()
    original = tmp_path / "NCBItrainset_corpus.txt"
    original.write_text(RELEASE)
    docs = build.abstracts(original)
    assert [pmid for pmid, _ in docs] == ["11", "7"]
    with pytest.raises(SystemExit, match="train sentence 1: does not continue abstract 7"):
        build.align("train", ["Gout.", "Gouthurtsnot."], docs)
    with pytest.raises(SystemExit, match="1 abstracts unused"):
        build.align("train", ["Gout.", "Gouthurts."], docs)


def test_the_report_resamples_the_shipped_abstracts_for_runs_stored_before_them():
    """Runs stored with blocks of 9 sentences (before the mapping) and runs stored with the
    abstracts are resampled alike: by the abstracts the shipped files record."""
    shipped = shipped_test_groups("ncbi-disease")
    old = {"unit": "block of 9", "groups": [i // 9 for i in range(940)]}
    runs = [
        {"task": "ncbi-disease", "config": {"data_dir": None}, "test_items": [[0] * 940], "test_groups": groups}
        for groups in (old, shipped)
    ]
    assert resampled(runs) == shipped
    elsewhere = [{**r, "config": {"data_dir": "/their/copy"}, "test_groups": old} for r in runs]
    assert resampled(elsewhere) == old  # a user's own files: what was stored with the runs
