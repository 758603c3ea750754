"""Every dataset, however small, gets a scored result or a one-line error, never a traceback (#30).

Releases in each layout the suite reads are cut from the tiny synthetic corpus down to 0 to a
handful of documents per split and per site, and run through `bench.run` in-process (tiny model,
one round, serial): each case must end in a scored final.json (exit 0) or exit 2 with exactly one
`error:` line. An exception that escapes fails the test with its traceback. The issue's own
table of inputs is checked case by case below the sweep."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench import run as bench_run
from bench.config import ExperimentConfig
from bench.data import load_task
from bench.data.layouts import I2B2_2010_TEST_CON_DIR, I2B2_2010_TEST_TXT_DIR, I2B2_2010_TRAIN_DIR, I2B2_2014_SPLIT_DIRS
from bench.engine.prepare import prepare_task
from bench.errors import BenchError

FAMILIES = [
    ["--method", "centralized"],
    ["--method", "fedavg"],
    ["--method", "lora"],
    ["--method", "layerskip", "--layers", "top:1"],
]


def _stems(folder: Path, n: int) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.txt"))[:n]


def i2b2_2010_tree(src: Path, dst: Path, per_site: list[int], n_test: int) -> tuple[str, Path]:
    """The release tree with per_site[i] training documents at the i-th site and n_test test documents."""
    sites = sorted(p.name for p in (src / I2B2_2010_TRAIN_DIR).iterdir())
    for site, n in zip(sites, per_site):
        for kind in ("txt", "concept"):
            (dst / I2B2_2010_TRAIN_DIR / site / kind).mkdir(parents=True)
        for stem in _stems(src / I2B2_2010_TRAIN_DIR / site / "txt", n):
            for kind, ext in (("txt", "txt"), ("concept", "con")):
                shutil.copy(
                    src / I2B2_2010_TRAIN_DIR / site / kind / f"{stem}.{ext}", dst / I2B2_2010_TRAIN_DIR / site / kind
                )
    (dst / I2B2_2010_TEST_TXT_DIR).mkdir(parents=True)
    (dst / I2B2_2010_TEST_CON_DIR).mkdir(parents=True)
    for stem in _stems(src / I2B2_2010_TEST_TXT_DIR, n_test):
        shutil.copy(src / I2B2_2010_TEST_TXT_DIR / f"{stem}.txt", dst / I2B2_2010_TEST_TXT_DIR)
        shutil.copy(src / I2B2_2010_TEST_CON_DIR / f"{stem}.con", dst / I2B2_2010_TEST_CON_DIR)
    return "i2b2-2010", dst


def i2b2_2010_flat(src: Path, dst: Path, n: int) -> tuple[str, Path]:
    """A flat txt/ + concept/ pair (split by a hash of each document) with n documents."""
    (dst / "txt").mkdir(parents=True)
    (dst / "concept").mkdir(parents=True)
    site = src / I2B2_2010_TRAIN_DIR / "beth"
    for stem in _stems(site / "txt", n):
        shutil.copy(site / "txt" / f"{stem}.txt", dst / "txt")
        shutil.copy(site / "concept" / f"{stem}.con", dst / "concept")
    return "i2b2-2010", dst


def i2b2_2014(src: Path, dst: Path, n_train: int, n_test: int) -> tuple[str, Path]:
    for split, n in (("train", n_train), ("test", n_test)):
        files = sorted(p for d in I2B2_2014_SPLIT_DIRS[split] for p in (src / d).glob("*.xml"))[:n]
        for d in I2B2_2014_SPLIT_DIRS[split]:
            (dst / d).mkdir(parents=True)
        for f in files:
            shutil.copy(f, dst / I2B2_2014_SPLIT_DIRS[split][0])
    return "i2b2-2014", dst


def _filter_csv(src: Path, dst: Path, keep: set[str]) -> None:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("HADM_ID")
    buf = io.StringIO()
    csv.writer(buf).writerows([rows[0], *(r for r in rows[1:] if r[col] in keep)])
    with opener(dst, "wt", newline="") as f:
        f.write(buf.getvalue())


def mimic(src: Path, dst: Path, n: int, task: str) -> tuple[str, Path]:
    """The MIMIC-III tables cut to the first n admissions."""
    dst.mkdir(parents=True)
    with open(src / "ADMISSIONS.csv", newline="") as f:
        keep = {row["HADM_ID"] for row in list(csv.DictReader(f))[:n]}
    for table in src.iterdir():
        _filter_csv(table, dst / table.name, keep)
    return task, dst


def conll(src: Path, dst: Path, n_train: int, n_devel: int | None, n_test: int) -> tuple[str, Path]:
    """A CoNLL folder with documents (-DOCSTART- separated) from the i2b2 tree; n_devel None: no devel.tsv."""
    data = load_task("i2b2-2010", src)
    docs: dict[str, list] = {}
    for ex in data.splits["train"] + data.splits["validation"] + data.splits["test"]:
        docs.setdefault(f"{ex.site}/{ex.doc_id}", []).append(ex)
    ordered = [docs[k] for k in sorted(docs)]
    dst.mkdir(parents=True)
    start = 0
    for name, n in (("train.tsv", n_train), ("devel.tsv", n_devel), ("test.tsv", n_test)):
        if n is None:
            continue
        lines = []
        for doc in ordered[start : start + n]:
            lines.append("-DOCSTART-\tO\n")
            for ex in doc:
                lines += [f"{t}\t{g}\n" for t, g in zip(ex.tokens, ex.tags)] + ["\n"]
        start += n
        (dst / name).write_text("".join(lines))
    return "conll", dst


def run(task: str, folder: Path, family: list[str], out: Path, capsys) -> tuple[int, str]:
    argv = ["--task", task, "--data-dir", str(folder), *family, "--model", "tiny-bert", "--clients", "2"]
    argv += ["--rounds", "1", "--max-length", "32", "--backend", "serial", "--out", str(out)]
    code = bench_run.main(argv)
    return code, capsys.readouterr().err


def check_outcome(code: int, err: str, out: Path) -> None:
    """Scored, or one `error:` line with exit 2; never a traceback."""
    assert "Traceback" not in err
    if code == 0:
        final = json.loads((out / "final.json").read_text())
        assert final["status"] == "ok" and math.isfinite(final["metric"])
    else:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1, err


LAYOUTS = {
    "i2b2-2010 tree": lambda src, dst, k: i2b2_2010_tree(src / "i2b2-2010", dst, [k[0], k[1], k[2]], k[3]),
    "i2b2-2010 flat": lambda src, dst, k: i2b2_2010_flat(src / "i2b2-2010", dst, k[0] + k[1]),
    "i2b2-2014": lambda src, dst, k: i2b2_2014(src / "i2b2-2014", dst, k[0] + k[1], k[2]),
    "mimic-mortality": lambda src, dst, k: mimic(src / "mimic-iii", dst, 4 * sum(k), "mimic-mortality"),
    "mimic-icd50": lambda src, dst, k: mimic(src / "mimic-iii", dst, 4 * sum(k), "mimic-icd50"),
    "conll": lambda src, dst, k: conll(src / "i2b2-2010", dst, k[0] + k[1], None if k[2] == 5 else k[2], k[3]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=st.sampled_from(FAMILIES), counts=st.lists(st.integers(0, 5), min_size=4, max_size=4))
def test_any_small_release_is_scored_or_refused_in_one_line(
    tiny_corpus, tmp_path_factory, capsys, layout, family, counts
):
    root = tmp_path_factory.mktemp("release")
    task, folder = LAYOUTS[layout](tiny_corpus, root / "data", counts)
    code, err = run(task, folder, family, root / "out", capsys)
    check_outcome(code, err, root / "out")
    event(f"{layout}: {'scored' if code == 0 else 'refused'}")  # --hypothesis-show-statistics


TABLE = {  # the issue's table: (builder, the split its one line must name)
    "i2b2-2014, one training and one test note": (lambda s, d: i2b2_2014(s / "i2b2-2014", d, 1, 1), "validation"),
    "CoNLL, empty devel.tsv": (lambda s, d: conll(s / "i2b2-2010", d, 6, 0, 2), "validation"),
    "CoNLL, empty test.tsv": (lambda s, d: conll(s / "i2b2-2010", d, 6, 2, 0), "test"),
    "CoNLL, no devel.tsv, one training document": (lambda s, d: conll(s / "i2b2-2010", d, 1, None, 2), "validation"),
    "MIMIC-III, six admissions, mortality": (lambda s, d: mimic(s / "mimic-iii", d, 6, "mimic-mortality"), None),
    "MIMIC-III, six admissions, ICD-9": (lambda s, d: mimic(s / "mimic-iii", d, 6, "mimic-icd50"), None),
}


@pytest.mark.parametrize("case", sorted(TABLE))
@pytest.mark.parametrize("family", FAMILIES[:3], ids=["centralized", "fedavg", "lora"])
def test_the_issue_inputs_end_in_one_line(tiny_corpus, tmp_path, capsys, case, family):
    build, split = TABLE[case]
    task, folder = build(tiny_corpus, tmp_path / "data")
    code, err = run(task, folder, family, tmp_path / "out", capsys)
    check_outcome(code, err, tmp_path / "out")
    assert code == 2, "these inputs cannot be scored"
    line = next(line for line in err.splitlines() if line.startswith("error:"))
    assert f"task {task}" in line and (split is None or f"the {split} split" in line)


def test_a_grid_records_the_line_and_runs_on(tiny_corpus, tmp_path, capsys):
    """In a grid, the too-small cell's failed.json and the report carry the same line; the other cell runs."""
    import run_all

    _, bad = i2b2_2014(tiny_corpus / "i2b2-2014", tmp_path / "one-note", 1, 1)
    grid = tmp_path / "g.yaml"
    grid.write_text(f"""name: small
defaults: {{model: tiny-bert, clients: 2, rounds: 1, max_length: 32, backend: serial, data_dir: "{bad}"}}
tasks: [i2b2-2014, i2b2-2010]
methods: [{{method: fedavg}}]
partitions: [iid]
seeds: [0]
overrides: [{{match: {{task: i2b2-2010}}, set: {{data_dir: "{tiny_corpus / "i2b2-2010"}"}}}}]
""")
    assert run_all.main(["--grid", str(grid), "--out", str(tmp_path / "out")]) == 0
    runs = {p.name.split("__")[0]: p for p in (tmp_path / "out" / "runs").iterdir()}
    failed = json.loads((runs["i2b2-2014"] / "failed.json").read_text())
    assert failed["error"].startswith("error: task i2b2-2014: the validation split is empty")
    assert json.loads((runs["i2b2-2010"] / "final.json").read_text())["status"] == "ok"
    assert failed["error"] in (tmp_path / "out" / "report.md").read_text()


def test_two_i2b2_2014_training_notes_are_enough(tiny_corpus, tmp_path, monkeypatch):
    """README: "a site with one document gives none: one i2b2 2014 training note is too few, two are
    enough": with two, a validation note is carved and the checks before any model pass (two
    clients, each with rows to train on and to keep back); with one, the one line refuses."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))

    def prepared(n_train: int):
        _, folder = i2b2_2014(tiny_corpus / "i2b2-2014", tmp_path / f"train{n_train}", n_train, 1)
        cfg = ExperimentConfig(task="i2b2-2014", method="fedavg", model="tiny-bert", clients=2, max_length=32)
        return prepare_task(dataclasses.replace(cfg, data_dir=str(folder)))

    with pytest.raises(BenchError, match="the validation split is empty"):
        prepared(1)
    task = prepared(2)
    assert len(task.validation.gold) > 0 and len(task.test.gold) > 0
    assert len(task.clients) == 2 and all(len(c) >= 1 for c in task.clients)
    assert all(len(h) >= 1 for h in task.holdouts)


def bad_i2b2_2010(tiny_corpus: Path, dst: Path) -> tuple[str, Path]:
    """The tiny i2b2 2010 tree with a concept line of an unknown type appended to one file."""
    shutil.copytree(tiny_corpus / "i2b2-2010", dst)
    con = sorted((dst / I2B2_2010_TRAIN_DIR).glob("*/concept/*.con"))[0]
    con.write_text(con.read_text() + 'c="pain" 1:0 1:0||t="symptom"\n')
    return "i2b2-2010", dst


REFUSED = {  # a run refused for its data: (builder, what its line says)
    "too small: one i2b2-2014 training note": (
        lambda s, d: i2b2_2014(s / "i2b2-2014", d, 1, 1),
        "the validation split is empty",
    ),
    "malformed: an unknown concept type": (bad_i2b2_2010, "unknown concept type"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_run_leaves_no_output_behind(tiny_corpus, tmp_path, capsys, case):
    """A run refused for its data "ends before any model is built with one `error:` line (exit 2)"
    and leaves nothing half-written: no --out folder at all, so nothing in it to mistake for a run."""
    build, says = REFUSED[case]
    task, folder = build(tiny_corpus, tmp_path / "data")
    code, err = run(task, folder, FAMILIES[1], tmp_path / "out", capsys)
    check_outcome(code, err, tmp_path / "out")
    assert code == 2 and says in err
    assert not (tmp_path / "out").exists()


def _scorable_or_why(kind: str, validation: list, test: list) -> str:
    from bench.data.split_check import check_splits
    from bench.data.types import ClsExample, NerExample, TaskData

    def make(value, i):
        return NerExample(("w",), (value,), "s", f"d{i}") if kind == "ner" else ClsExample("w", value, "s", f"d{i}")

    splits = {  # train as scorable as test: only the scored splits are judged
        name: [make(v, i) for i, v in enumerate(values)]
        for name, values in (("train", test), ("validation", validation), ("test", test))
    }
    try:
        check_splits(TaskData("t", kind, [], splits), None)
        return "scored"
    except BenchError as e:
        return str(e)


@pytest.mark.parametrize(
    "kind, scorable, unscorable, why",
    [
        ("ner", ["O", "B-Problem"], ["O", "O"], "has no entity in its 2 sentences"),
        ("cls", [("x",), ("y",)], [("x",), ("x",)], "has one class only (all 2 examples are 'x')"),
        ("multilabel", [(), ("x", "y")], [(), ()], "has no positive label in its 2 examples"),
    ],
)
def test_a_split_is_scored_only_where_its_metric_can_tell_models_apart(kind, scorable, unscorable, why):
    # the rules of README's "How small a release can be": one entity, two classes, one positive label
    assert _scorable_or_why(kind, scorable, scorable) == "scored"
    assert _scorable_or_why(kind, unscorable, scorable).startswith(f"task t: the validation split {why}")
    assert _scorable_or_why(kind, scorable, unscorable).startswith(f"task t: the test split {why}")
