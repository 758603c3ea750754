"""The README's "Training choices" for NER: "Entity F1 is seqeval's strict IOB2 micro-F1 over
entities, predicted on the first sub-word of each word; sentences longer than `max_length` are
split into chunks ..., never cut; the counts of split sentences ... are in `final.json`'s
`encoding`"."""

from __future__ import annotations

import json

import pytest

from bench.data.registry import TASKS, release_folder
from bench.data.tokenize import IGNORE, bio_label_ids, encode_ner
from bench.data.types import NerExample
from bench.metrics import ner_scores
from bench.model.build import source_for
from tests.cli import bench_run


@pytest.fixture(scope="module")
def tokenizer():
    return source_for("tiny-bert").tokenizer()


def test_entity_f1_is_strict_iob2_not_lenient():
    """README: "Entity F1 is seqeval's strict IOB2 micro-F1 over entities". A prediction that
    opens the entity with I-D instead of B-D is no entity under strict IOB2 (F1 0), where
    seqeval's default (lenient, conlleval) reads the same span and scores it 1."""
    from seqeval.metrics import f1_score

    gold, pred = [["B-D", "I-D", "O"]], [["I-D", "I-D", "O"]]
    assert f1_score(gold, pred) == 1.0  # the control: lenient scoring would count it
    scores = ner_scores(gold, pred)
    assert scores["metric"] == 0.0 and scores["precision"] == 0.0 and scores["recall"] == 0.0
    assert scores["items"] == [[0, 0, 1]]  # one gold entity missed, no predicted one


def test_entity_f1_is_micro_averaged_over_entities_not_over_types():
    # three A entities found, one B missed: micro F1 = 2*3/(3+4) = 6/7; macro over types would be (1 + 0) / 2
    gold = [["B-A", "O", "B-A", "O", "B-A", "O", "B-B"]]
    pred = [["B-A", "O", "B-A", "O", "B-A", "O", "O"]]
    scores = ner_scores(gold, pred)
    assert scores["metric"] == pytest.approx(6 / 7)
    assert scores["per_type_f1"] == {"A": 1.0, "B": 0.0}  # final.json's per-type F1


def test_a_word_is_labelled_on_its_first_sub_word_only(tokenizer):
    """README: entities are "predicted on the first sub-word of each word": a word the tokenizer
    splits carries its label on its first piece; its other pieces are ignored (-100)."""
    labels = bio_label_ids(["Disease"])
    words = ("Familial", "adenomatous", "polyposis", "x")
    pieces = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    assert [len(p) for p in pieces] == [4, 4, 3, 1]  # the tiny tokenizer splits the first three
    ex = NerExample(words, ("O", "B-Disease", "I-Disease", "O"), "site", "doc")
    enc = encode_ner([ex], tokenizer, labels, 64)
    assert len(enc) == 1
    expected = [IGNORE]  # [CLS]
    for word, tag in zip(pieces, ex.tags):
        expected += [labels[tag]] + [IGNORE] * (len(word) - 1)
    expected += [IGNORE]  # [SEP]
    assert enc.labels[0] == expected
    assert enc.input_ids[0][1:-1] == [i for p in pieces for i in p]


@pytest.mark.parametrize("cut", [True, False])
def test_a_long_sentence_is_split_into_chunks_never_cut(tokenizer, cut):
    """README: "sentences longer than `max_length` are split into chunks (at word boundaries ...),
    never cut": every word keeps its one labelled position across the chunks, and each chunk
    records (sentence, first word), so the chunks rejoin to the sentence in order."""
    labels = bio_label_ids(["Disease"])
    names = {i: n for n, i in labels.items()}
    tags = tuple(["B-Disease", "I-Disease", "O", "O", "B-Disease", "O", "O"] * 6)  # 42 words
    short = NerExample(("x", "y"), ("O", "O"), "site", "a")
    long = NerExample(tuple(f"word{i}" for i in range(len(tags))), tags, "site", "b")
    enc = encode_ner([short, long], tokenizer, labels, 16, cut_outside_entities=cut)
    rows = [r for r, (owner, _) in enumerate(enc.owner) if owner == 1]
    per_chunk = [[names[x] for x in enc.labels[r] if x != IGNORE] for r in rows]
    assert sum(len(c) for c in per_chunk) == len(tags)  # as many labelled positions as words
    assert len(rows) > 2 and all(len(enc.input_ids[r]) <= 16 for r in rows)
    assert enc.warnings["sentences_split"] == 1 and enc.warnings["sentence_split"] == len(rows) - 1
    firsts = [enc.owner[r][1] for r in rows]
    assert firsts == [sum(len(c) for c in per_chunk[:k]) for k in range(len(rows))]  # each chunk's first word
    assert tuple(t for _, r in sorted(zip(firsts, per_chunk)) for t in r) == tags  # rejoined in order


def test_only_a_word_longer_than_the_whole_window_is_cut_and_it_is_counted(tokenizer):
    """README: a single word of more sub-words than the window holds keeps the first of them,
    its label on the first, and is counted as `word_truncated`; its neighbours go to other rows."""
    labels = bio_label_ids(["Disease"])
    long_word = "adenomatous" * 4  # 4 x 4 pieces and more, in a window of 8 (6 between [CLS] and [SEP])
    assert len(tokenizer(long_word, add_special_tokens=False)["input_ids"]) > 6
    ex = NerExample(("x", long_word, "y"), ("O", "B-Disease", "O"), "site", "doc")
    enc = encode_ner([ex], tokenizer, labels, 8)
    assert enc.warnings["word_truncated"] == 1 and enc.warnings["sentences_split"] == 1
    assert all(len(ids) <= 8 for ids in enc.input_ids)
    labelled = [[x for x in row if x != IGNORE] for row in enc.labels]
    assert labelled == [[labels["O"]], [labels["B-Disease"]], [labels["O"]]]  # every word, in its own row
    assert len(enc.input_ids[1]) == 8  # the long word fills its window: cut, not dropped


def test_final_json_counts_the_split_sentences(tiny_corpus, tmp_path, monkeypatch):
    """README: "the counts of split sentences and truncated documents are in `final.json`'s
    `encoding`". At a 16-token window the tiny i2b2-2010 corpus has sentences that do not fit
    (at the tests' usual 32 none): one short run reports them, split by split."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))  # encoded here, not read from a stored cache
    data = tiny_corpus / release_folder(TASKS.get("i2b2-2010"))
    out = tmp_path / "run"
    bench_run(
        *("--task", "i2b2-2010", "--method", "fedavg", "--model", "tiny-bert", "--data-dir", data),
        *("--clients", 2, "--rounds", 1, "--max-length", 16, "--train-subsample", 16, "--backend", "serial"),
        *("--out", out, "--quiet"),
    )
    encoding = json.loads((out / "final.json").read_text())["encoding"]
    assert set(encoding) == {"train", "validation", "test"}
    for counts in encoding.values():
        assert counts["examples"] > 0 and counts["word_truncated"] == 0
        assert counts["sentence_split"] >= counts["sentences_split"]
    assert encoding["validation"]["sentences_split"] > 0 and encoding["test"]["sentences_split"] > 0
