"""`--test-every N` (README, flags table and "Choices on validation, test only to report"): 0 by
default on the command line, and a round's test `metric` in rounds.jsonl is null in the rounds
that are not tested."""

from __future__ import annotations

import math

from bench.data.registry import TASKS, release_folder
from bench.run import build_parser
from tests.cli import bench_run
from tests.tiny import rounds


def test_the_command_line_tests_only_the_reported_state_by_default():
    """README: `--test-every N` defaults to 0 on the command line (the config's default is 1)."""
    args = build_parser().parse_args(["--task", "i2b2-2010", "--method", "fedavg", "--out", "x"])
    assert args.test_every == 0


def test_rounds_that_are_not_tested_have_a_null_metric(tiny_corpus, tmp_path):
    """README: test is scored every `test_every` rounds (null otherwise). A two-round
    `--test-every 2` run: round 1's metric is null, round 2's a number; validation every round."""
    data = tiny_corpus / release_folder(TASKS.get("i2b2-2010"))
    bench_run(
        *("--task", "i2b2-2010", "--method", "fedavg", "--model", "tiny-bert", "--data-dir", data),
        *("--clients", 2, "--rounds", 2, "--max-length", 32, "--train-subsample", 16, "--backend", "serial"),
        *("--test-every", 2, "--out", tmp_path, "--quiet"),
    )
    lines = rounds(tmp_path)
    assert len(lines) == 2
    assert lines[0]["metric"] is None
    assert isinstance(lines[1]["metric"], float) and math.isfinite(lines[1]["metric"])
    assert all(isinstance(line["val_metric"], float) for line in lines)
