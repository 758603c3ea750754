"""Raising the round cap takes over the same cell's stored run (bench.extend)."""

from __future__ import annotations

import json

from bench.config import ExperimentConfig
from bench.grid import Cell
from bench.runner import run_cell


def _cfg(corpus, **kw) -> ExperimentConfig:
    base = dict(task="i2b2-2010", method="fedavg", model="tiny-bert", clients=2, rounds=2, max_length=32,
                data_dir=str(corpus / "i2b2-2010"), backend="serial")  # fmt: skip
    return ExperimentConfig(**{**base, **kw})


def _cell(cfg) -> Cell:
    return Cell(cfg.run_id, cfg)


def _final(runs, cfg) -> dict:
    return json.loads((runs / cfg.run_id / "final.json").read_text())


def test_more_rounds_continue_from_the_lower_cap_with_the_numbers_of_a_fresh_run(tiny_corpus, tmp_path):
    short, long = _cfg(tiny_corpus, rounds=2), _cfg(tiny_corpus, rounds=3)
    runs, fresh = tmp_path / "runs", tmp_path / "fresh"
    assert run_cell(_cell(short), runs, resume=False, progress=False) == "ok"
    assert run_cell(_cell(long), runs, resume=False, progress=False) == "extended"
    assert run_cell(_cell(long), fresh, resume=False, progress=False) == "ok"
    extended, alone = _final(runs, long), _final(fresh, long)
    assert extended["extended_from"] == {"run_id": short.run_id, "rounds": 2}
    assert extended["rounds_run"] == 3 and (runs / long.run_id / "rounds.jsonl").read_text().count("\n") == 3
    for key in ("metric", "val_metric", "best_round", "metric_last"):
        assert extended[key] == alone[key], key
    assert _final(runs, short)["rounds_run"] == 2  # the source is left as it was


def test_a_converged_run_stands_as_is_and_private_or_unfinished_runs_are_not_taken_over(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    short = _cfg(tiny_corpus, rounds=2, early_stop=True)
    run_cell(_cell(short), runs, resume=False, progress=False)
    final = _final(runs, short)
    (runs / short.run_id / "final.json").write_text(json.dumps({**final, "converged": True}))  # as if it had stalled
    (runs / short.run_id / "checkpoint.pt").unlink()  # nothing is trained: the result is copied
    long = _cfg(tiny_corpus, rounds=5, early_stop=True)
    assert run_cell(_cell(long), runs, resume=False, progress=False) == "extended"
    taken = _final(runs, long)
    assert taken["metric"] == final["metric"] and taken["config"]["rounds"] == 5 and taken["stopped_early"]
    assert (runs / long.run_id / "rounds.jsonl").read_text().count("\n") == 2

    from bench import extend

    assert extend.predecessor(_cfg(tiny_corpus, rounds=5, lr=1e-3, early_stop=True), runs) is None  # another cell
    (runs / short.run_id / "final.json").unlink()  # unfinished (maybe running now): left alone
    (runs / long.run_id / "final.json").unlink()
    assert extend.predecessor(_cfg(tiny_corpus, rounds=9, early_stop=True), runs) is None


def test_a_private_run_never_extends(tiny_corpus, tmp_path):
    """DP calibrates its noise to the planned rounds: a higher cap is a different run."""
    from bench import extend

    runs = tmp_path / "runs"
    short = _cfg(tiny_corpus, rounds=1, method="layerskip", dp_epsilon=4.0)
    assert run_cell(_cell(short), runs, resume=False, progress=False) == "ok"
    assert (runs / short.run_id / "checkpoint.pt").is_file()
    assert extend.predecessor(_cfg(tiny_corpus, rounds=2, method="layerskip", dp_epsilon=4.0), runs) is None
