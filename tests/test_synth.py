"""The synthetic corpus: deterministic, in the real layouts, every label and site present."""

import filecmp

import pytest

from bench.data import load_task
from bench.data.stats import task_stats
from bench.errors import BenchError
from bench.synth.generate import write_corpus

TASK_DIRS = {
    "i2b2-2010": "i2b2-2010",
    "i2b2-2014": "i2b2-2014",
    "mimic-mortality": "mimic-iii",
    "mimic-icd50": "mimic-iii",
}


def same_tree(a, b) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def test_same_seed_same_bytes_other_seed_differs(tiny_corpus, tmp_path):
    again = write_corpus(tmp_path / "a", seed=0, scale="tiny")
    other = write_corpus(tmp_path / "b", seed=1, scale="tiny")
    assert same_tree(tiny_corpus, again)
    assert not same_tree(tiny_corpus, other)


@pytest.mark.parametrize("task", list(TASK_DIRS))
def test_every_label_and_site_nonzero(tiny_corpus, task):
    stats = task_stats(load_task(task, tiny_corpus / TASK_DIRS[task]))
    counts = stats["train"]["entities" if "i2b2" in task else "labels"]
    assert counts and all(n > 0 for n in counts.values()), counts
    assert all(n > 0 for n in stats["train"]["sites"].values())


def test_sites_write_differently(tiny_corpus):
    data = load_task("i2b2-2010", tiny_corpus / "i2b2-2010")
    assert set(data.sites()) == {"beth", "partners", "upmc"}
    mix = {site: {t: 0 for t in data.label_names} for site in ("beth", "partners", "upmc")}
    for ex in data.train:
        for t in ex.entity_types():
            mix[ex.site][t] += 1
    share = {s: m["test"] / sum(m.values()) for s, m in mix.items()}
    assert share["partners"] > share["beth"]  # partners writes more tests


def test_release_defects_are_present_and_repaired(tiny_corpus):
    warnings = load_task("i2b2-2010", tiny_corpus / "i2b2-2010").warnings
    assert warnings["duplicate_concept"] > 0 and warnings["offset_repaired"] > 0


def test_refuses_to_overwrite(tiny_corpus):
    with pytest.raises(BenchError, match="exists"):
        write_corpus(tiny_corpus, seed=0, scale="tiny")
