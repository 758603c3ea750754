"""The server sums updates as they arrive, in sorted client order, and gets the held mean's bits."""

import itertools
import json

import pytest
import torch

from bench.engine import faults, rounds
from bench.engine.server import run_experiment
from bench.federation.aggregate import RunningMean, weighted_average
from tests.tiny import tiny_config


def updates(n=4):
    gen = torch.Generator().manual_seed(0)
    return {
        c: (10 + 7 * c, {"w": torch.randn(64, 32, generator=gen), "b": torch.randn(32, generator=gen).bfloat16()})
        for c in range(n)
    }


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_running_mean_is_the_held_mean_to_the_bit_in_any_arrival_order(order):
    ups = updates()
    held = weighted_average([ups[c] for c in sorted(ups)])
    mean = RunningMean({c: n for c, (n, _) in ups.items()})
    for c in order:
        mean.add(c, ups[c][1])
    out = mean.result()
    assert all(torch.equal(out[k], held[k]) and out[k].dtype == held[k].dtype for k in held)


def test_running_mean_holds_only_early_arrivals():
    ups = updates()
    mean = RunningMean({c: n for c, (n, _) in ups.items()})
    for c in (0, 1, 2, 3):
        mean.add(c, ups[c][1])
    assert mean.most_waiting == 1  # each was added the moment it came
    late_first = RunningMean({c: n for c, (n, _) in ups.items()})
    for c in (3, 2, 1):
        late_first.add(c, ups[c][1])
    assert late_first.most_waiting == 3 and not late_first.complete
    with pytest.raises(ValueError, match="not arrived"):
        late_first.result()
    late_first.add(0, ups[0][1])
    assert late_first.complete and not late_first.waiting
    with pytest.raises(ValueError, match="twice"):
        late_first.add(0, ups[0][1])


def run(corpus, out, **kw):
    cfg = tiny_config(corpus, clients=3, rounds=3, cpus_per_worker=1, max_length=48, **kw)
    final = run_experiment(cfg, out, progress=False)
    lines = [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]
    timings = ("wall_s", "paused_s", "compute_s")
    return final, [{k: v for k, v in line.items() if k not in timings} for line in lines]


def run_held(corpus, out, monkeypatch, **kw):
    """A run whose server holds every update (today's aggregation), checked to have done so."""
    asked = []
    monkeypatch.setattr(rounds, "streams", lambda ctx, secure: asked.append(1) and False)
    result = run(corpus, out, **kw)
    assert asked
    return result


def test_a_lost_client_gives_the_held_mean_over_the_rest(tiny_corpus, tmp_path, monkeypatch):
    """A worker dies with client 1 in round 2: the running mean expected it, so the rest train
    again into a mean over themselves, which must equal holding every update (streaming off)."""
    monkeypatch.setenv("BENCH_CHAOS_KILL", f"1:1:{tmp_path / 'killed-stream'}")
    streamed, streamed_lines = run(tiny_corpus, tmp_path / "stream", workers=2)
    monkeypatch.setenv("BENCH_CHAOS_KILL", f"1:1:{tmp_path / 'killed-held'}")
    held, held_lines = run_held(tiny_corpus, tmp_path / "held", monkeypatch, workers=2)
    assert streamed_lines[1]["lost"] == [1] == held_lines[1]["lost"]
    assert streamed_lines == held_lines and streamed["metric"] == held["metric"]


def test_a_rejected_update_gives_the_held_mean_over_the_rest(tiny_corpus, tmp_path, monkeypatch):
    """Screening rejects the largest update of each round (any norm above the median): the
    running mean had counted it, so the streamed round must still match the held one."""
    monkeypatch.setattr(faults, "NORM_OUTLIER", 1.0001)
    streamed, streamed_lines = run(tiny_corpus, tmp_path / "stream", backend="serial")
    held, held_lines = run_held(tiny_corpus, tmp_path / "held", monkeypatch, backend="serial")
    assert any(line["rejected"] for line in held_lines)
    assert streamed_lines == held_lines and streamed["metric"] == held["metric"]


def test_bfloat16_updates_are_averaged_in_float32_and_returned_in_bfloat16():
    """A hundred equal clients that all send 1.0 in bfloat16: the float32 mean is exactly 1.0;
    summing the hundredths in bfloat16 (the control) drifts to 1.046875."""
    ups = [(1, {"w": torch.ones(4, dtype=torch.bfloat16)}) for _ in range(100)]
    held = weighted_average(ups)["w"]
    mean = RunningMean({c: 1 for c in range(100)})
    for c, (_, state) in reversed(list(enumerate(ups))):
        mean.add(c, state)
    naive = torch.zeros(4, dtype=torch.bfloat16)
    for _, state in ups:
        naive += state["w"] / 100
    assert held.dtype == torch.bfloat16 and torch.equal(held, mean.result()["w"])
    assert float(held[0]) == 1.0 and float(naive[0]) != 1.0
