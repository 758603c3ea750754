"""Raising the round cap or the patience takes over the same cell's stored run (bench.protocol.extend)."""

from __future__ import annotations

import pytest

from bench.config import ExperimentConfig
from bench.protocol import extend, plan
from bench.protocol.plan_grid import progress
from bench.protocol.runner import run_cell
from tests.engine.extend_helpers import cell_of, read_final, serial_config
from tests.tiny import tiny_config


def test_more_rounds_continue_from_the_lower_cap_with_the_numbers_of_a_fresh_run(tiny_corpus, tmp_path):
    """... and --plan prices the continuation by its new rounds only (README: raising a cap costs
    only the rounds that are new)."""
    short, long = serial_config(tiny_corpus, rounds=2), serial_config(tiny_corpus, rounds=3)
    runs, fresh = tmp_path / "runs", tmp_path / "fresh"
    assert run_cell(cell_of(short), runs, resume=False, progress=False) == "ok"
    assert progress([(cell_of(long), cell_of(long))], runs) == (set(), {long.run_id: 2})
    checkpoint = runs / short.run_id / "checkpoint.pt"
    checkpoint.rename(runs / "away.pt")  # gone (checkpoints are not committed): nothing to continue, it reruns
    assert extend.predecessor(long, runs) is None and progress([(cell_of(long), cell_of(long))], runs) == (set(), {})
    (runs / "away.pt").rename(checkpoint)
    whole, rest = plan.cell_cost(long), plan.cell_cost(long, 2)
    assert rest.flops == pytest.approx(plan.cell_cost(long.with_settings(rounds=1)).flops)
    one_hour = {whole.shape_key: whole.flops / 3600 / 1e12}  # a throughput at which the whole run takes an hour
    text = plan.plan({"s": [cell_of(long)]}, [cell_of(long)], [], set(), one_hour, carried={long.run_id: 2})
    assert (
        f"s                     1      0 {rest.flops / whole.flops:>10.1f} CPU-h" in text
        and rest.flops < whole.flops / 2
    )
    assert run_cell(cell_of(long), runs, resume=False, progress=False) == "extended"
    assert run_cell(cell_of(long), fresh, resume=False, progress=False) == "ok"
    extended, alone = read_final(runs, long), read_final(fresh, long)
    assert extended["extended_from"] == {"run_id": short.run_id, "rounds": 2}
    assert extended["rounds_run"] == 3 and (runs / long.run_id / "rounds.jsonl").read_text().count("\n") == 3
    for key in ("metric", "val_metric", "best_round", "metric_last"):
        assert extended[key] == alone[key], key
    assert read_final(runs, short)["rounds_run"] == 2  # the source is left as it was


def _stopping(corpus, **kw) -> ExperimentConfig:
    """A cell whose run stops early on the tiny corpus: patience 1 stalls it in round 5 (seeded)."""
    return serial_config(
        corpus, **{"rounds": 8, "lr": 8e-3, "early_stop": True, "patience": 1, "min_delta": 0.02, **kw}
    )


def test_a_stalled_run_stands_as_is_and_private_or_unfinished_runs_are_not_taken_over(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    short = _stopping(tiny_corpus)
    run_cell(cell_of(short), runs, resume=False, progress=False)
    final = read_final(runs, short)
    assert final["stopped_early"] and final["rounds_run"] == 5
    long = _stopping(tiny_corpus, rounds=12)
    assert progress([(cell_of(long), cell_of(long))], runs) == ({long.run_id}, {})  # --plan counts it done
    assert run_cell(cell_of(long), runs, resume=False, progress=False) == "extended"
    taken = read_final(runs, long)
    assert taken["metric"] == final["metric"] and taken["config"]["rounds"] == 12 and taken["stopped_early"]
    assert (runs / long.run_id / "rounds.jsonl").read_text().count("\n") == 5
    assert (runs / long.run_id / "checkpoint.pt").is_file(), "kept, so a longer patience can still continue it"
    for name in ("test_items.json", "test_groups.json"):  # what the report's bootstrap reads, groups included
        assert (runs / long.run_id / name).read_text() == (runs / short.run_id / name).read_text(), name

    from bench.protocol import extend

    assert extend.predecessor(_stopping(tiny_corpus, rounds=12, lr=1e-3), runs) is None  # another cell
    (runs / short.run_id / "final.json").unlink()  # unfinished (maybe running now): left alone
    (runs / long.run_id / "final.json").unlink()
    assert extend.predecessor(_stopping(tiny_corpus, rounds=20), runs) is None


def test_more_patience_continues_a_run_that_stopped_early_with_the_numbers_of_a_fresh_run(tiny_corpus, tmp_path):
    """A longer patience fires at the same round or later: the run that stopped under the
    shorter one continues from its checkpoint, and ends where a fresh run would."""
    runs, fresh = tmp_path / "runs", tmp_path / "fresh"
    short, patient = _stopping(tiny_corpus), _stopping(tiny_corpus, patience=3)
    run_cell(cell_of(short), runs, resume=False, progress=False)
    assert run_cell(cell_of(patient), runs, resume=False, progress=False) == "extended"
    assert run_cell(cell_of(patient), fresh, resume=False, progress=False) == "ok"
    extended, alone = read_final(runs, patient), read_final(fresh, patient)
    assert extended["extended_from"] == {"run_id": short.run_id, "rounds": 8, "patience": 1}
    assert extended["rounds_run"] == alone["rounds_run"] > 5
    for key in ("metric", "val_metric", "best_round", "metric_last", "converged"):
        assert extended[key] == alone[key], key
    from bench.protocol import extend

    assert extend.predecessor(_stopping(tiny_corpus, patience=2, rounds=4), runs) is None, "never from a higher cap"


def test_a_private_run_never_extends(tiny_corpus, tmp_path):
    """DP calibrates its noise to the planned rounds: a higher cap is a different run."""
    from bench.protocol import extend

    runs = tmp_path / "runs"
    short = serial_config(tiny_corpus, rounds=1, method="layerskip", dp_epsilon=4.0)
    assert run_cell(cell_of(short), runs, resume=False, progress=False) == "ok"
    assert (runs / short.run_id / "checkpoint.pt").is_file()
    assert extend.predecessor(serial_config(tiny_corpus, rounds=2, method="layerskip", dp_epsilon=4.0), runs) is None


def test_a_checkpoint_resumes_only_under_its_own_settings_but_for_rounds_and_patience(tiny_corpus, tmp_path):
    """bench.run on a folder that holds a checkpoint continues it; under other computed settings
    (a seeded run resumed with --secure-rng, another lr) it is refused before anything is
    written, naming the setting; a higher round cap continues it, as a grid's extension does."""
    import pytest

    from bench.engine.server import run_experiment
    from bench.errors import BenchError

    seeded = tiny_config(tiny_corpus, backend="serial", noise_multiplier=1.0, train_subsample=40)
    run_experiment(seeded, tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for changed, named in [({"secure_rng": True}, "secure_rng=True"), ({"lr": 1e-3}, "lr=0.001")]:
        with pytest.raises(BenchError, match=f"checkpoint.pt was written with .*this run has {named}"):
            run_experiment(seeded.with_settings(**changed), tmp_path, progress=False)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written
    final = run_experiment(seeded.with_settings(rounds=2), tmp_path, progress=False)
    assert final["rounds_run"] == 2 and final["secure_rng"] is False


def test_a_run_calibrated_to_an_epsilon_does_not_resume_with_more_rounds(tiny_corpus, tmp_path):
    """--dp-epsilon sizes the noise for the round cap; a resumed run with a higher cap would
    recalibrate to less noise while its first rounds spent at the old one, past the target
    (test_a_recalibrated_continuation_would_spend_past_the_target). Refused before anything is
    written; with a fixed --noise-multiplier the accountant reports what more rounds spend."""
    import pytest

    from bench.engine.server import run_experiment
    from bench.errors import BenchError

    calibrated = tiny_config(tiny_corpus, backend="serial", dp_epsilon=8.0, train_subsample=40)
    run_experiment(calibrated, tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(BenchError, match="checkpoint.pt was written with rounds=1, this run has rounds=2"):
        run_experiment(calibrated.with_settings(rounds=2), tmp_path, progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_recalibrated_continuation_would_spend_past_the_target():
    """Why the refusal above: 10 rounds at the noise calibrated for 10 and 10 more at the noise
    calibrated for 20 compose past the target (RDP adds), 9.8 against 8 for a client of 100
    rows at batch 16 (README). Calibrated for all 20 from the start, the same rounds stay within it."""
    from bench.federation.dp_accounting import composed_epsilon
    from bench.federation.dp_calibration import _calibrate
    from bench.federation.privacy import sample_rate, steps_per_round

    target, delta = 8.0, 1e-5
    rate, steps = sample_rate(100, 16), steps_per_round(100, 16, 1)
    sigma_10, sigma_20 = (_calibrate(target, delta, rate, rounds * steps) for rounds in (10, 20))
    continued = composed_epsilon([[(sigma_10, rate, 10 * steps), (sigma_20, rate, 10 * steps)]], delta)
    planned = composed_epsilon([[(sigma_20, rate, 20 * steps)]], delta)
    assert continued == pytest.approx(9.8, abs=0.05)  # the README's figure
    assert planned <= target + 0.01
