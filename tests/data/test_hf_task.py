"""`--task hf:SOURCE`: small Hugging Face datasets written here, run through bench.run for a round,
counted by `bench.data stats`, cut without dividing a group, and re-identified when changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import bench_data, bench_run, run_all_main

datasets = pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parents[2]
WORDS = "the patient had chest pain and fever after surgery with no history of diabetes".split()


def ner_dataset(folder, n=(40, 10, 10)):
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-Problem", "I-Problem"])),
        }
    )

    def rows(k, shift):
        tokens = [[WORDS[(i + j + shift) % len(WORDS)] for j in range(6)] for i in range(k)]
        tags = [[1 if w in ("pain", "fever", "diabetes") else 0 for w in sentence] for sentence in tokens]
        return {"tokens": tokens, "ner_tags": tags}

    splits = {
        name: datasets.Dataset.from_dict(rows(k, s), features=features)
        for (name, k, s) in zip(("train", "validation", "test"), n, (0, 3, 5))
    }
    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder


def cls_csv(folder, n_train=60, n_test=20):
    """Notes with string labels and a patient column; no validation file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        lines = ["text,label,patient"]
        for i in range(n):
            label = ["died", "survived", "transferred"][i % 3]
            lines.append(f"{' '.join(WORDS[i % 5 : i % 5 + 8])} {label},{label},{name}-p{i // 3}")
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return folder


def run_cli(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)


def test_ner_and_classification_datasets_run_for_a_round(tmp_path):
    from bench.data.hf import fingerprint as hf_fingerprint

    ner = ner_dataset(tmp_path / "ner")
    notes = cls_csv(tmp_path / "notes")
    for source, extra in ((ner, []), (notes, ["--group-column", "patient"])):
        out = tmp_path / f"run-{source.name}"
        done = bench_run(
            "--task", f"hf:{source}", "--method", "fedavg", "--model", "tiny-bert",
            "--clients", "2", "--rounds", "1", "--max-length", "32", "--out", str(out), *extra, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-1500:]
        final = json.loads((out / "final.json").read_text())
        assert final["status"] == "ok" and final["task_kind"] == ("ner" if source == ner else "cls")
        assert final["source_fingerprint"] == hf_fingerprint(str(source))  # which version of the dataset ran


def test_stats_count_the_splits_and_labels(tmp_path):
    done = bench_data("stats", "--task", f"hf:{ner_dataset(tmp_path / 'ner')}", "--json", check=False)
    assert done.returncode == 0, done.stderr[-1500:]
    stats = json.loads(done.stdout)
    assert [stats[s]["sentences"] for s in ("train", "validation", "test")] == [40, 10, 10]
    assert list(stats["train"]["entities"]) == ["Problem"] and stats["train"]["entities"]["Problem"] > 0


def test_a_carved_validation_split_never_divides_a_patient(tmp_path):
    from bench.data import load_task

    data = load_task(f"hf:{cls_csv(tmp_path / 'notes')}", group_column="patient")
    assert data.kind == "cls" and data.carved_validation and data.label_names == ["died", "survived", "transferred"]
    train = {ex.group for ex in data.splits["train"]}
    validation = {ex.group for ex in data.splits["validation"]}
    assert validation and not train & validation


def test_a_dataset_changed_on_disk_is_a_new_run(tmp_path):
    import bench.data  # noqa: F401  (every entry point imports it: it registers hf:'s fingerprint)
    from bench.config import ExperimentConfig

    folder = cls_csv(tmp_path / "notes")
    cfg = ExperimentConfig(task=f"hf:{folder}", method="fedavg")
    before = cfg.run_id
    assert ExperimentConfig(task=f"hf:{folder}", method="fedavg").run_id == before
    (folder / "train.csv").write_text((folder / "train.csv").read_text() + "one more note died,died,train-p99\n")
    assert ExperimentConfig(task=f"hf:{folder}", method="fedavg").run_id != before


@pytest.mark.parametrize(
    "source, columns, message",
    [
        ("missing", {}, "no such folder, and not a dataset in the local Hugging Face cache"),
        ("notes", {"label_column": "outcome"}, "columns present: text, label, patient"),
        ("notes", {"group_column": "mrn"}, "no group column 'mrn'"),
    ],
)
def test_bad_sources_and_columns_are_one_line_errors(tmp_path, source, columns, message):
    from bench.data import load_task
    from bench.errors import BenchError

    cls_csv(tmp_path / "notes")
    with pytest.raises(BenchError, match=message):
        load_task(f"hf:{tmp_path / source}", **columns)


def test_a_group_in_two_given_splits_is_counted_and_figure_names_stay_files(tmp_path):
    from bench.data import load_task
    from bench.report.figures import _partition_file

    folder = cls_csv(tmp_path / "notes")
    (folder / "validation.csv").write_text("text,label,patient\nfever again died,died,train-p0\n")
    data = load_task(f"hf:{folder}", group_column="patient")
    assert not data.carved_validation and data.warnings["groups_in_two_splits"] == 1
    assert _partition_file(f"hf:{folder}", "dirichlet:0.5").count("/") == 0


def _write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".")).write_text(text)
    return folder


NER_ROW = '{"tokens": ["chest", "pain"], "ner_tags": %s}\n'


@pytest.mark.parametrize(
    "files, message",
    [
        ({"train_csv": "text,label\na,-1\nb,1\n", "test_csv": "text,label\nc,0\n"},
         r"train.csv record 1 \(line 2 if no value spans lines\): no label or no text"),
        ({"train_csv": "text,label\nb,x\na,\n", "test_csv": "text,label\nc,x\n"}, "train.csv record 2 .*: no label"),
        ({"train_jsonl": NER_ROW % '["S-Problem", "O"]', "test_jsonl": NER_ROW % '["O", "O"]'},
         "train.jsonl line 1: tag 1 'S-Problem' is not IOB2"),
        # a bare word is not quoted: it may be a note's (tokens and tags swapped)
        ({"train_jsonl": NER_ROW % '["O", "Problem"]', "test_jsonl": NER_ROW % '["O", "O"]'},
         r"tag 2 \(a value of 7 characters, not quoted: it may be text\) is not IOB2"),
        ({"train_csv": "text,label\na,x\n", "test_csv": "text,label\n"}, "test.csv: no rows \\(the test split\\)"),
        ({"train_csv": 'text,label\na,"[1, 2]"\n', "test_csv": "text,label\nc,0\n"},
         "train.csv record 1 .*: the label is text shaped like a list: a CSV cannot hold a list of labels"),
        ({"train_jsonl": '{"tokens": [\n', "test_jsonl": NER_ROW % '["O", "O"]'}, "train.jsonl: not readable as json"),
        ({"train_csv": "tokens,ner_tags\nab,OO\n", "test_csv": "tokens,ner_tags\nab,OO\n"}, "must be lists"),
        ({"train_csv": "text,label\na,x\n", "dev_csv": "text,label\na,x\n", "validation_csv": "text,label\na,x\n",
          "test_csv": "text,label\na,x\n"}, "two files for the validation split"),
    ],
)  # fmt: skip
def test_rows_and_files_a_loader_must_not_guess_are_one_line_errors(tmp_path, files, message):
    from bench.data import load_task
    from bench.errors import BenchError

    with pytest.raises(BenchError, match=message):
        load_task(f"hf:{_write(tmp_path / 'd', **files)}")


def test_an_iob1_start_is_repaired_and_counted(tmp_path):
    from bench.data import load_task

    folder = _write(
        tmp_path / "d", train_jsonl=NER_ROW % '["I-Problem", "I-Problem"]' * 3, test_jsonl=NER_ROW % '["O", "O"]'
    )
    data = load_task(f"hf:{folder}")
    assert data.splits["train"][0].tags == ("B-Problem", "I-Problem") and sum(data.warnings.values()) >= 3


def test_one_dataset_one_identity_however_spelled_and_edits_the_clock_hides_still_count(tmp_path):
    import os

    import bench.data  # noqa: F401  (registers hf:'s fingerprint)
    from bench.config import ExperimentConfig

    folder = cls_csv(tmp_path / "notes")

    def run_id(task):
        return ExperimentConfig.from_dict({"task": task, "method": "fedavg"}).run_id

    assert run_id(f"hf:{folder}") == run_id(f"hf:{folder}/") == run_id(f"hf:{folder}/./")
    before, train = run_id(f"hf:{folder}"), folder / "train.csv"
    stamp = train.stat()
    train.write_text(train.read_text().replace("died,died", "dyed,died"))  # same size
    os.utime(train, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    import bench.data.hf as hf

    hf._fingerprint.cache_clear()  # a fresh process, as a new session would be
    assert run_id(f"hf:{folder}") != before


def test_an_empty_or_damaged_saved_dataset_is_one_line_not_a_traceback(tmp_path):
    from bench.data import load_task
    from bench.errors import BenchError

    folder = ner_dataset(tmp_path / "ner")
    data = datasets.load_from_disk(str(folder))
    datasets.DatasetDict({**data, "validation": data["validation"].select([])}).save_to_disk(str(tmp_path / "empty"))
    with pytest.raises(BenchError, match="a save_to_disk folder datasets cannot read"):
        load_task(f"hf:{tmp_path / 'empty'}")
    (folder / "dataset_dict.json").write_text("{not json")
    with pytest.raises(BenchError, match="a save_to_disk folder datasets cannot read"):
        load_task(f"hf:{folder}")


def test_a_text_column_named_as_the_label_is_refused_without_quoting_a_note(tmp_path):
    """Swapped columns would make every note a class name, written to partition.json and stats."""
    from bench.data import load_task
    from bench.errors import BenchError

    folder = cls_csv(tmp_path / "notes")
    train = folder / "train.csv"  # notes are nearly all distinct: make these so
    lines = train.read_text().splitlines()
    train.write_text(
        "\n".join(
            [lines[0]] + [f"{WORDS[i % 14]} day {i}{line[line.index(',') :]}" for i, line in enumerate(lines[1:])]
        )
    )
    with pytest.raises(BenchError) as caught:
        load_task(f"hf:{folder}", text_column="label", label_column="text")
    assert "label column 'text' has 60 distinct values in 60 training rows" in str(caught.value)
    assert "zqxnote" not in str(caught.value)
    assert len(load_task(f"hf:{folder}").label_names) == 3  # the right way round: three classes


def test_groups_in_two_given_splits_are_named_by_id_where_a_run_starts(tmp_path, capsys):
    from bench.config import ExperimentConfig
    from bench.data import load_task
    from bench.data.stats import task_stats
    from bench.engine.prepare import prepare_task

    folder = cls_csv(tmp_path / "notes")
    (folder / "validation.csv").write_text(
        "text,label,patient\nfever again died,died,train-p0\nno fever survived,survived,v-p1\n"
    )
    data = load_task(f"hf:{folder}", group_column="patient")
    assert data.notes == [
        "1 patient group(s) in two given splits ('train-p0'): the splits are used as given, so those groups train and are scored"
    ]
    assert task_stats(data)["notes"] == data.notes
    prepare_task(ExperimentConfig(task=f"hf:{folder}", method="fedavg", group_column="patient", model="tiny-bert"))
    assert f"warning: hf:{folder}: {data.notes[0]}" in capsys.readouterr().out.splitlines()


def test_one_site_is_no_natural_split_and_document_dp_needs_groups(tmp_path):
    from bench.config import ExperimentConfig
    from bench.engine.prepare import require_units
    from bench.errors import BenchError
    from partitions import parse_partition

    with pytest.raises(BenchError, match="the data has one site \\('hf'\\); the natural split needs two or more"):
        parse_partition("site").split(["x"] * 40, ["hf"] * 40, 2, seed=0)
    cfg = ExperimentConfig(task=f"hf:{tmp_path}", method="fedavg", noise_multiplier=1.0, dp_unit="document")
    with pytest.raises(BenchError, match="has documents only with --group-column"):
        require_units(cfg, [])
    require_units(ExperimentConfig(**{**cfg.to_dict(), "group_column": "patient"}), [])


def test_a_file_beside_the_data_is_not_the_data(tmp_path):
    import bench.data  # noqa: F401  (registers hf:'s fingerprint)
    import bench.data.hf as hf
    from bench.config import ExperimentConfig

    for folder in (cls_csv(tmp_path / "notes"), ner_dataset(tmp_path / "ner")):
        before = ExperimentConfig(task=f"hf:{folder}", method="fedavg").run_id
        (folder / "README.md").write_text("where these notes came from")
        hf._fingerprint.cache_clear()
        assert ExperimentConfig(task=f"hf:{folder}", method="fedavg").run_id == before
        data_file = next(p for p in sorted(folder.rglob("*")) if p.suffix in (".csv", ".arrow"))
        data_file.write_bytes(data_file.read_bytes() + b"\n")
        hf._fingerprint.cache_clear()
        assert ExperimentConfig(task=f"hf:{folder}", method="fedavg").run_id != before


def test_a_bad_file_is_one_line_on_the_command_line(tmp_path):
    """datasets logs its own parser errors: the user sees ours alone."""
    folder = _write(
        tmp_path / "d", train_jsonl='{"text": "a", "label": 1}\n{"text": \n', test_jsonl='{"text": "b", "label": 0}\n'
    )
    done = run_cli("-m", "bench.data", "stats", "--task", f"hf:{folder}", "--json")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error:") and "train.jsonl: not readable as json" in done.stderr


def _grid(tmp_path, source, settings=""):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        f"name: g\ndefaults: {{model: tiny-bert, clients: 2, rounds: 1{settings}}}\ntasks: ['hf:{source}']\n"
        "methods: [{method: fedavg}, {method: centralized}]\npartitions: [iid]\nseeds: [0]\n"
    )
    return grid


def test_a_grid_over_a_bad_source_stops_before_any_cell_runs(tmp_path):
    """As --plan does: one line and exit 2, not a failed.json in every cell of the task; the
    columns a grid names are checked as its runs read them."""
    source = cls_csv(tmp_path / "notes")
    out = tmp_path / "out"
    found = run_all_main("--grid", _grid(tmp_path, source, ", label_column: outcome"), "--out", out, check=False)
    assert found.returncode == 2 and "columns present: text, label, patient" in found.stderr
    assert found.stderr.strip().count("\n") == 0 and not (out / "runs").exists()
    (source / "test.csv").unlink()
    grid = _grid(tmp_path, source)
    found = run_all_main("--grid", grid, "--out", out, check=False)
    assert found.returncode == 2 and "no test split (splits found: train)" in found.stderr
    assert found.stderr.strip().count("\n") == 0 and not (out / "runs").exists()


def _rows(n, multi=False):
    """Notes with integer labels (0, 1, 2), or lists of string labels; a site column."""
    labels = (
        [[["flu", "sepsis"][i % 2]] + (["copd"] if i % 3 == 0 else []) for i in range(n)]
        if multi
        else [i % 3 for i in range(n)]
    )
    return {
        "note": [" ".join(WORDS[i % 5 : i % 5 + 6]) for i in range(n)],
        "outcome": labels,
        "ward": [f"w{i % 2}" for i in range(n)],
    }


def _write_files(folder, fmt, multi=False):
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 30), ("validation", 8), ("test", 8)):
        data = datasets.Dataset.from_dict(_rows(n, multi))
        path = str(folder / f"{split}.{fmt}")
        if fmt == "parquet":
            data.to_parquet(path)
        else:
            data.to_json(path, lines=fmt == "jsonl")  # .json: one array of records
    return folder


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_json_jsonl_and_parquet_files_with_integer_labels_and_named_columns_load(tmp_path, fmt):
    from bench.data import load_task

    columns = {"text_column": "note", "label_column": "outcome", "site_column": "ward"}
    data = load_task(f"hf:{_write_files(tmp_path / fmt, fmt)}", **columns)
    assert data.kind == "cls" and data.label_names == ["0", "1", "2"] and not data.carved_validation
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [30, 8, 8]
    assert [ex.labels for ex in data.splits["train"][:4]] == [("0",), ("1",), ("2",), ("0",)]
    assert {ex.site for ex in data.train} == {"w0", "w1"}


def test_a_list_of_labels_is_multi_label_and_a_classlabel_gives_its_names(tmp_path):
    from bench.data import load_task

    data = load_task(
        f"hf:{_write_files(tmp_path / 'multi', 'jsonl', multi=True)}", text_column="note", label_column="outcome"
    )
    assert data.kind == "multilabel" and data.label_names == ["copd", "flu", "sepsis"]
    assert data.train[0].labels == ("flu", "copd") and data.train[1].labels == ("sepsis",)

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["home", "died"])}
    )
    rows = {"text": [" ".join(WORDS[i : i + 5]) for i in range(10)], "label": [i % 2 for i in range(10)]}
    split = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "saved"))
    data = load_task(f"hf:{tmp_path / 'saved'}")
    assert data.kind == "cls" and data.label_names == ["died", "home"]  # the names, not 0 and 1
    assert [ex.labels for ex in data.train[:2]] == [("home",), ("died",)]
    assert {ex.site for ex in data.train} == {"hf"}  # no --site-column: one site


def test_ner_columns_named_otherwise_with_iob2_string_tags(tmp_path):
    from bench.data import load_task

    tokens = [WORDS[i : i + 4] for i in range(6)]
    tags = [["B-Problem" if w in ("pain", "fever") else "O" for w in t] for t in tokens]
    split = datasets.Dataset.from_dict({"words": tokens, "iob": tags})
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "ner"))
    data = load_task(f"hf:{tmp_path / 'ner'}", tokens_column="words", tags_column="iob")
    assert data.kind == "ner" and data.label_names == ["Problem"]
    assert data.train[1].tokens == tuple(WORDS[1:5]) and data.train[1].tags == tuple(tags[1])


def test_a_dataset_id_is_looked_up_in_the_local_cache_only_even_with_the_hub_online(tmp_path):
    # the user's environment says online (HF_HUB_OFFLINE=0, which bench's own default does not
    # override); every network lookup is refused here and recorded: none may be tried
    script = (
        "import socket, sys\n"
        "tried = []\n"
        "def refuse(*a, **k):\n"
        "    tried.append(a[:1]); raise OSError('no network in this test')\n"
        "socket.getaddrinfo = refuse\n"
        "socket.socket.connect = lambda self, *a, **k: refuse(*a)\n"
        "from bench.data.hf import open_source\n"
        "from bench.errors import BenchError\n"
        "for source in ('someorg/notes', 'buckets/someorg/notes'):\n"
        "    try:\n"
        "        open_source(source)\n"
        "    except BenchError as e:\n"
        "        print(e)\n"
        "print('tried', len(tried))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")} | {"HF_HUB_OFFLINE": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )
    lines = done.stdout.splitlines()
    assert lines[-1] == "tried 0", done.stdout + done.stderr[-2000:]
    assert sum("not a dataset in the local Hugging Face cache" in line for line in lines) == 2
