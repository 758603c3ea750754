"""The token cache: rows memory-mapped from an Arrow file equal the in-memory encoding, row for
row; a changed corpus or window is a new file; a worker receives a path, not the rows."""

import os
import pickle

import numpy as np
import pytest

from bench.data import token_cache
from bench.data.arrow_rows import ArrowRows
from bench.data.tokenize import bio_label_ids, encode_cls, encode_ner
from bench.data.types import ClsExample, NerExample
from bench.model.build import source_for


@pytest.fixture(scope="module")
def tokenizer():
    return source_for("tiny-bert").tokenizer()


@pytest.fixture(autouse=True)
def small_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(token_cache, "BATCH", 2)  # several batches: example ids and warnings cross them


def ner_examples(n: int = 7) -> list[NerExample]:
    long = tuple(f"word{i}" for i in range(40))  # splits into several rows at a small window
    out = []
    for i in range(n):
        tokens = ("Familial", "adenomatous", "polyposis", "patients", str(i)) + (long if i % 3 == 0 else ())
        tags = ("B-Disease", "I-Disease", "I-Disease", "O", "O") + ("O",) * (len(tokens) - 5)
        out.append(NerExample(tokens, tags, "site", f"doc{i}"))
    return out


def cls_examples(n: int = 5) -> list[ClsExample]:
    return [ClsExample(f"note {i} " + "chest pain " * (i * 9), (["a", "b"][i % 2],), "s", str(i)) for i in range(n)]


def same(cached, direct) -> None:
    assert list(cached.input_ids) == direct.input_ids
    assert list(cached.labels) == direct.labels
    assert cached.owner == direct.owner
    assert dict(cached.warnings) == dict(direct.warnings)


@pytest.mark.parametrize("cut", [True, False])
def test_ner_rows_equal_the_in_memory_encoding(tokenizer, cut):
    examples, labels = ner_examples(), bio_label_ids(["Disease"])
    direct = encode_ner(examples, tokenizer, labels, 24, cut_outside_entities=cut)
    assert direct.warnings["sentence_split"] > 0  # the long sentences were cut into rows
    cached = token_cache.cached_encoding("ner", examples, tokenizer, labels, 24, cut)
    assert isinstance(cached.input_ids, ArrowRows)
    same(cached, direct)
    assert cached.input_ids[2:5] == direct.input_ids[2:5] and cached.input_ids[-1] == direct.input_ids[-1]


@pytest.mark.parametrize("kind", ["cls", "multilabel"])
def test_classification_rows_equal_the_in_memory_encoding(tokenizer, kind):
    examples = cls_examples()
    direct = encode_cls(examples, tokenizer, ["a", "b"], 32, multilabel=kind == "multilabel")
    assert direct.warnings["documents_truncated"] > 0
    same(token_cache.cached_encoding(kind, examples, tokenizer, ["a", "b"], 32), direct)


def test_a_changed_corpus_or_window_is_a_new_file_and_the_same_one_is_reused(tokenizer, tmp_path):
    examples, labels = ner_examples(), bio_label_ids(["Disease"])
    token_cache.cached_encoding("ner", examples, tokenizer, labels, 24)
    files = sorted((tmp_path / "tokens").glob("*.arrow"))
    token_cache.cached_encoding("ner", examples, tokenizer, labels, 24)
    assert sorted((tmp_path / "tokens").glob("*.arrow")) == files and len(files) == 1  # read, not rewritten
    changed = [NerExample(("Colon", "cancer"), ("B-Disease", "I-Disease"), "s", "x"), *examples[1:]]
    again = token_cache.cached_encoding("ner", changed, tokenizer, labels, 24)
    assert again.input_ids[0] == encode_ner(changed, tokenizer, labels, 24).input_ids[0]
    token_cache.cached_encoding("ner", examples, tokenizer, labels, 32)
    assert len(list((tmp_path / "tokens").glob("*.arrow"))) == 3


def test_rows_travel_as_a_path(tokenizer):
    examples = cls_examples(200)
    cached = token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 64)
    blob = pickle.dumps(cached.input_ids)
    assert len(blob) < 500  # the path and the column's name, not the rows
    received = pickle.loads(blob)
    assert list(received) == list(cached.input_ids) and len(received) == 200
    plain = cached.in_memory()
    assert isinstance(plain.input_ids, list) and plain.input_ids == list(cached.input_ids)


def test_a_damaged_file_is_written_again_and_files_are_private(tokenizer, tmp_path):
    examples = cls_examples()
    expected = list(token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 32).input_ids)
    (path,) = (tmp_path / "tokens").glob("*.arrow")
    assert path.stat().st_mode & 0o777 == 0o600  # token ids read back into the notes
    path.write_bytes(path.read_bytes()[:40])  # cut short, as by a crash before the data was on disk
    again = token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 32)
    assert list(again.input_ids) == expected


def test_the_tokenizer_identity_ignores_what_a_call_last_set(tokenizer):
    before = token_cache.tokenizer_identity(tokenizer)
    tokenizer(["a b c", "d"], truncation=True, max_length=4, padding="max_length")
    assert token_cache.tokenizer_identity(tokenizer) == before


def test_an_empty_sentence_adds_no_row_and_no_split(tokenizer):
    labels = bio_label_ids(["Disease"])
    alone = encode_ner(ner_examples(2), tokenizer, labels, 24)
    encoded = encode_ner([NerExample((), (), "site", "empty"), *ner_examples(2)], tokenizer, labels, 24)
    assert encoded.warnings["sentence_split"] == alone.warnings["sentence_split"] > 0  # the empty one counts 0, not -1
    assert encoded.input_ids == alone.input_ids and [i for i, _ in encoded.owner] == [i + 1 for i, _ in alone.owner]


def test_cached_rows_equal_the_same_rows_in_memory_and_differ_from_others(tokenizer):
    examples = cls_examples(20)
    cached = token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 32)
    direct = encode_cls(examples, tokenizer, ["a", "b"], 32, multilabel=False)
    assert cached.input_ids == direct.input_ids and direct.input_ids == cached.input_ids
    assert cached.input_ids != direct.input_ids[:-1]  # one row fewer
    assert cached.input_ids != [*direct.input_ids[:-1], [0]]  # one row changed
    assert cached.input_ids != 3  # not a sequence: not equal, no error
    rows = [np.asarray(r) for r in direct.input_ids]
    assert cached.input_ids == rows and cached.input_ids != rows[::-1]  # arrays as rows too


def test_least_recently_used_files_go_beyond_the_budget_but_never_recent_ones(tmp_path, monkeypatch):
    folder = tmp_path / "tokens"
    folder.mkdir()
    now = 1_000_000_000.0
    day = token_cache.KEEP_RECENT_S
    ages = {"old": 3 * day, "older": 5 * day, "recent": day / 2, "kept": 9 * day}
    for name, age in ages.items():
        path = folder / f"{name}.arrow"
        path.write_bytes(b"x" * 2**20)  # 1 MiB each: 4 MiB in all
        os.utime(path, (now - age, now - age))
    monkeypatch.setenv("BENCH_TOKEN_CACHE_MB", "2")
    gone = token_cache.evict(folder, keep=folder / "kept.arrow", now=now)
    assert [p.stem for p in gone] == ["older", "old"]  # least recently used first, until within 2 MiB
    assert sorted(p.stem for p in folder.glob("*.arrow")) == ["kept", "recent"]
    monkeypatch.setenv("BENCH_TOKEN_CACHE_MB", "0")
    assert token_cache.evict(folder, keep=folder / "kept.arrow", now=now) == []  # recent and kept stay


def test_reading_a_cached_file_marks_it_used(tokenizer, tmp_path):
    examples = cls_examples()
    token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 32)
    (path,) = (tmp_path / "tokens").glob("*.arrow")
    os.utime(path, (1.0, 1.0))
    token_cache.cached_encoding("cls", examples, tokenizer, ["a", "b"], 32)
    assert path.stat().st_mtime > 1e9


def test_evaluation_splits_are_cut_without_reading_their_labels(tokenizer):
    """A long sentence whose entity straddles the window: training cuts before the entity (its
    tags are read), validation and test cut where the window ends whatever their tags say, so
    their rows are the same with the gold tags and with none (bench.engine.prepare.encode)."""
    from bench.data.types import TaskData
    from bench.engine.prepare import encode

    words = tuple(f"word{i}" for i in range(60))
    gold = tuple("B-Disease" if i == 10 else "I-Disease" if 10 < i < 30 else "O" for i in range(60))

    def rows(tags):
        example = [NerExample(words, tags, "site", "doc0")]
        data = TaskData("t", "ner", ["Disease"], {"train": example, "validation": example, "test": example})
        return encode(data, tokenizer, 24)[1]

    with_gold, without = rows(gold), rows(("O",) * 60)
    for split in ("validation", "test"):
        assert list(with_gold[split].encoded.input_ids) == list(without[split].encoded.input_ids)
        assert with_gold[split].encoded.owner == without[split].encoded.owner
    assert with_gold["train"].encoded.owner != without["train"].encoded.owner  # the control: training reads them


def test_a_run_warns_when_more_than_five_percent_of_a_split_was_cut(capsys):
    from bench.engine.server import warn_if_cut

    warn_if_cut({"test": {"examples": 100, "sentences_split": 6}}, enabled=True)
    assert capsys.readouterr().out == "warning: 6 of 100 test examples were split into chunks (raise max_length?)\n"
    warn_if_cut({"train": {"examples": 100, "documents_truncated": 6}}, enabled=True)
    assert "6 of 100 train examples were truncated to max_length" in capsys.readouterr().out
    warn_if_cut({"test": {"examples": 100, "sentences_split": 5}}, enabled=True)  # 5% is not more than 5%
    warn_if_cut({"test": {"examples": 100, "sentences_split": 50}}, enabled=False)  # a quiet run says nothing
    assert capsys.readouterr().out == ""


def test_the_file_name_holds_the_labels_the_tokenizer_and_the_encoders_source(tokenizer, tmp_path, monkeypatch):
    """Claim: the file is named by a fingerprint of the labels and the encoders' source too, not
    only the examples and the window: the same examples under another label map (the ids of the
    same tags or classes change), another tokenizer or an edited tokenize.py are a new file, whose
    rows are the ones encoding in memory gives."""
    import copy

    from bench.data import tokenize

    def files():
        return set((tmp_path / "tokens").glob("*.arrow"))

    ner, cls = ner_examples(), cls_examples()
    token_cache.cached_encoding("ner", ner, tokenizer, bio_label_ids(["Disease"]), 24)
    token_cache.cached_encoding("cls", cls, tokenizer, ["a", "b"], 32)
    assert len(files()) == 2
    wider = bio_label_ids(["Chemical", "Disease"])  # "B-Disease" gets another id (as a changed label level would)
    assert wider["B-Disease"] != bio_label_ids(["Disease"])["B-Disease"]
    same(token_cache.cached_encoding("ner", ner, tokenizer, wider, 24), encode_ner(ner, tokenizer, wider, 24))
    same(
        token_cache.cached_encoding("cls", cls, tokenizer, ["b", "a"], 32),
        encode_cls(cls, tokenizer, ["b", "a"], 32, multilabel=False),
    )
    assert len(files()) == 4
    other = copy.deepcopy(tokenizer)  # another tokenizer: one more word in its vocabulary
    other.add_tokens(["adenomatous"])
    labels = bio_label_ids(["Disease"])
    same(token_cache.cached_encoding("ner", ner, other, labels, 24), encode_ner(ner, other, labels, 24))
    assert len(files()) == 5
    source = token_cache.inspect.getsource
    edited = {tokenize: source(tokenize) + "\n# edited\n"}  # the encoders changed, ENCODING_VERSION not bumped
    monkeypatch.setattr(token_cache.inspect, "getsource", lambda obj: edited.get(obj) or source(obj))
    before = files()
    token_cache.cached_encoding("ner", ner, tokenizer, labels, 24)
    assert len(files()) == 6 and files() > before
