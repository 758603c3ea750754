"""An interrupted or extended run reuses its checkpoint: the rounds it has played are not played
again (their rows stay byte for byte), and top-k's error-feedback residuals travel with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import bench.engine.server as server
from bench.engine.server import run_experiment
from bench.protocol.runner import run_cell, run_cells
from bench.store import load_checkpoint
from tests.engine.extend_helpers import cell_of, read_final, serial_config
from tests.tiny import rounds


def _tiny(corpus, **kw):
    """The extension tests' serial two-client cell (extend_helpers.serial_config), one step per
    client a round, test scored at the end."""
    return serial_config(corpus, **{"train_subsample": 32, "test_every": 0, **kw})


class Killed(Exception):
    """Stands for a kill in the middle of a round."""


def _spy(monkeypatch, kill_at: int | None = None) -> list[int]:
    """The round indices server.play_round is called with from now on; with `kill_at`, that
    round raises Killed before it plays."""
    played: list[int] = []
    real = server.play_round

    def play_round(r, *args, **kwargs):
        played.append(r)
        if r == kill_at:
            raise Killed(f"killed in round {r + 1}")
        return real(r, *args, **kwargs)

    monkeypatch.setattr(server, "play_round", play_round)
    return played


@pytest.fixture(scope="module")
def killed(tiny_corpus, tmp_path_factory) -> dict:
    """A 2-round top-k run killed in round 2, then resumed (the same call again): its config and
    folder, rounds.jsonl and the checkpoint's residuals as round 1 left them, and the round
    indices the resumed run played. Shared: each run costs seconds on a loaded machine."""
    cfg, out = _tiny(tiny_corpus, rounds=2, compress="topk:0.1"), tmp_path_factory.mktemp("killed")
    with pytest.MonkeyPatch.context() as m:
        _spy(m, kill_at=1)
        with pytest.raises(Killed):
            run_experiment(cfg, out, progress=False)
    before = (out / "rounds.jsonl").read_bytes()
    residuals = load_checkpoint(out / "checkpoint.pt").get("residuals", {})  # {} if not kept
    interrupted = tmp_path_factory.mktemp("interrupted") / "run"  # the folder as the kill left it
    shutil.copytree(out, interrupted)
    with pytest.MonkeyPatch.context() as m:
        played = _spy(m)
        run_experiment(cfg, out, progress=False)
    return {
        "cfg": cfg,
        "out": out,
        "before": before,
        "residuals": residuals,
        "played": played,
        "interrupted": interrupted,
    }


def test_a_killed_run_continues_from_its_last_round_checkpoint(killed):
    """README: a killed run continues from its last round checkpoint. Killed in round 2, the
    resumed run plays round 2 only, and round 1's row (wall time included) is the one the killed
    run wrote, not a replay from round 1 that the seed would reproduce but for the clock."""
    out: Path = killed["out"]
    assert killed["before"].count(b"\n") == 1
    assert killed["played"] == [1]
    assert (out / "rounds.jsonl").read_bytes().startswith(killed["before"])
    assert [line["round"] for line in rounds(out)] == [1, 2]


def test_grid_resume_continues_an_interrupted_cell_from_its_checkpoint(killed, tmp_path, monkeypatch):
    """README: "`--resume` continues an interrupted cell from its checkpoint". The grid runner's
    resume path (bench.protocol.runner.run_cells, as run_all.py --resume calls it) on a cell whose
    folder holds the checkpoint of round 1 of 2 plays round 2 only and keeps round 1's row as the
    interrupted run wrote it; starting the cell over would play round 1 again."""
    cfg, runs = killed["cfg"], tmp_path / "runs"
    shutil.copytree(killed["interrupted"], runs / cfg.run_id)
    played = _spy(monkeypatch)
    run_cells([cell_of(cfg)], runs, resume=True, desc="resume")
    assert played == [1]
    assert (runs / cfg.run_id / "rounds.jsonl").read_bytes().startswith(killed["before"])
    assert read_final(runs, cfg)["rounds_run"] == 2


def _same(a: dict, b: dict) -> bool:
    """{key: {tensor name: tensor}} equal to the bit."""
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(torch.equal(a[k][t], b[k][t]) for t in a[k]) for k in a
    )


def test_topk_residuals_are_kept_in_the_checkpoint_and_a_resumed_run_matches(killed, tmp_path):
    """README: top-k's error-feedback residuals are kept by each client, in the checkpoint. After
    round 1 the checkpoint holds a non-zero residual per client; the run killed in round 2 and
    resumed ends with the very state (and residuals) of an uninterrupted run, which it would not
    if round 2 encoded without round 1's residuals."""
    kept = killed["residuals"]
    assert sorted(kept) == [0, 1]  # one per client
    assert all(kept[c] and any(t.abs().sum() > 0 for t in kept[c].values()) for c in kept)
    alone = run_experiment(killed["cfg"], tmp_path, progress=False)
    resumed, fresh = (load_checkpoint(d / "checkpoint.pt") for d in (killed["out"], tmp_path))
    assert _same(resumed["states"], fresh["states"])
    assert _same(resumed["residuals"], fresh["residuals"])
    ended = json.loads((killed["out"] / "final.json").read_text())
    for key in ("metric", "val_metric", "metric_last", "best_round"):
        assert ended[key] == alone[key], key


def test_raising_the_round_cap_plays_only_the_new_rounds(tiny_corpus, tmp_path, monkeypatch):
    """README: raising a stored run's round cap costs only the rounds that are new
    (bench.protocol.extend.take_over): a 1-round run taken to 2 plays one round, round 2, and
    keeps round 1's row as the stored run wrote it."""
    runs = tmp_path / "runs"
    short, long = _tiny(tiny_corpus, rounds=1), _tiny(tiny_corpus, rounds=2)
    assert run_cell(cell_of(short), runs, resume=False, progress=False) == "ok"
    played = _spy(monkeypatch)
    assert run_cell(cell_of(long), runs, resume=False, progress=False) == "extended"
    assert played == [1]
    stored = (runs / short.run_id / "rounds.jsonl").read_bytes()
    assert (runs / long.run_id / "rounds.jsonl").read_bytes().startswith(stored)
    assert read_final(runs, long)["rounds_run"] == 2
