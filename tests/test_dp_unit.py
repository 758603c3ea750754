"""DP-SGD by document or patient: one clipped summed gradient per sampled unit, accounted at the
unit's sampling rate."""

import numpy as np
import pytest
import torch

from bench.engine.server import run_experiment
from bench.errors import BenchError
from bench.federation.dp_accounting import composed_epsilon, epsilon_of
from bench.federation.privacy import DpPlan, UnitPrivateTraining
from tests.tiny import tiny_config


def test_one_clipped_gradient_per_patient_whatever_its_admissions():
    from bench.engine.training import collate
    from bench.model.build import build_model

    model, _ = build_model("tiny-bert", "cls", 2, seed=0)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0)
    rows = np.arange(6)
    patients = np.array([7, 9, 9, 9, 9, 9])  # one admission, and five
    plan = DpPlan("sample", noise_multiplier=0.0, max_grad_norm=1e-4, delta=1e-5, target_epsilon=None, unit="patient")
    private = UnitPrivateTraining(
        model, optimizer, plan, rows, patients, batch_size=6, generator=torch.Generator().manual_seed(0)
    )
    batch_rows = next(private.batches(rows, 1, torch.Generator().manual_seed(0)))
    assert sorted(batch_rows.tolist()) == list(range(6))  # rate 1: both patients, all their rows
    encoded = type("E", (), {"input_ids": [[101, 5 + i, 6, 102] for i in range(6)], "labels": [0, 1, 0, 1, 1, 0]})()
    batch = collate(encoded, batch_rows.tolist(), 0, "cls", "cpu")
    private.module(**private.inputs(batch)).loss.backward()
    private.step(None, batch_rows)
    assert len(private.last_clipped_norms) == 2  # one vector per patient, not per admission
    assert private.last_clipped_norms == pytest.approx([1e-4, 1e-4], rel=1e-4)
    assert private.expected_units == pytest.approx(2.0)  # rate 1 x 2 patients: the divisor of the noisy sum
    private.close()


def test_patient_level_sampling_is_the_rate_accounted(tiny_corpus, tmp_path, monkeypatch):
    """Empirical: the patients' observed inclusion rate over many draws of the run's own sampler
    equals the rate its accountant recorded (sampling at 3x that rate fails), and the worst
    client's epsilon recomputes from its record."""
    from opacus.accountants import RDPAccountant

    samplers = []
    original = UnitPrivateTraining.__init__

    def keeping(self, *a, **kw):
        original(self, *a, **kw)
        samplers.append((self, a[3]))  # the instance and the rows it samples

    monkeypatch.setattr(UnitPrivateTraining, "__init__", keeping)
    cfg = tiny_config(
        tiny_corpus,
        task="mimic-mortality",
        method="layerskip",
        layers="top:1",
        rounds=2,
        dp_epsilon=4.0,
        dp_unit="patient",
    )
    final = run_experiment(cfg, tmp_path, progress=False)
    assert final["dp"]["unit"] == "patient" and final["epsilon"] <= 4.0
    recorded = {rate for history in final["dp"]["accountants"].values() for _, rate, _ in history}
    steps = 4000
    for sampler, rows in samplers[:2]:
        generator = torch.Generator().manual_seed(1)
        included = np.zeros(len(sampler.units))
        for batch in sampler.batches(rows, steps, generator):
            included[np.unique(sampler.unit_of[batch])] += 1
        observed = included.sum() / (steps * len(sampler.units))
        assert any(
            observed == pytest.approx(rate, abs=4 * np.sqrt(rate / (steps * len(sampler.units)))) for rate in recorded
        )
    for history in final["dp"]["accountants"].values():
        accountant = RDPAccountant()
        accountant.history = [tuple(h) for h in history]
        assert accountant.get_epsilon(cfg.dp_delta) <= final["epsilon"] + 1e-9
    alone = [epsilon_of([tuple(h) for h in hs], cfg.dp_delta) for hs in final["dp"]["accountants"].values()]
    shared = [  # a patient whose admissions the iid split dealt to several clients: composed
        composed_epsilon([[tuple(h) for h in final["dp"]["accountants"][str(c)]] for c in s], cfg.dp_delta)
        for s in final["dp"]["shared_holders"]
    ]
    assert max(alone + shared) == pytest.approx(final["epsilon"])


def test_a_gradient_without_its_per_sample_gradient_is_an_error():
    """A layer Opacus cannot sample leaves its parameter a plain gradient and no per-sample one:
    that gradient would reach the optimizer unclipped and unnoised, so it is refused."""
    from bench.engine.training import collate
    from bench.model.build import build_model

    model, _ = build_model("tiny-bert", "cls", 2, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    plan = DpPlan("sample", noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5, target_epsilon=None, unit="patient")
    rows = np.arange(4)
    private = UnitPrivateTraining(
        model, torch.optim.SGD(params, lr=0.1), plan, rows, np.array([1, 1, 2, 2]), 4, torch.Generator().manual_seed(0)
    )
    encoded = type("E", (), {"input_ids": [[101, 5 + i, 6, 102] for i in range(4)], "labels": [0, 1, 0, 1]})()
    batch = collate(encoded, rows.tolist(), 0, "cls", "cpu")
    private.module(**private.inputs(batch)).loss.backward()
    victim = next(p for p in private.module.parameters() if p.requires_grad)
    victim.grad_sample = None  # as if its layer had no per-sample gradient
    with pytest.raises(BenchError, match="no per-sample gradient"):
        private.step(None, rows)
    private.close()


def test_patient_unit_needs_patient_ids(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, noise_multiplier=1.0, dp_unit="patient")
    with pytest.raises(BenchError, match="no patient ids"):
        run_experiment(cfg, tmp_path, progress=False)


@pytest.mark.parametrize("unit", ["row", "patient"])
def test_an_empty_poisson_batch_is_a_noisy_step_not_a_skipped_one(tiny_corpus, tmp_path, monkeypatch, unit):
    """DP-SGD's analysis has a step at every Poisson draw, the empty ones included (noise alone),
    and the accountant counts them: with every draw empty, each one still moves the model, once."""
    from bench.federation.privacy import PrivateTraining, UnitPrivateTraining

    def empty(self, rows, steps, generator):
        for _ in range(steps):
            yield rows[:0]

    moved = []

    def watched(original):
        def noise_step(self):
            param = next(p for p in self.module.parameters() if p.requires_grad)
            before = param.detach().clone()
            original(self)
            moved.append(not torch.equal(before, param.detach()))

        return noise_step

    for cls in (PrivateTraining, UnitPrivateTraining):
        monkeypatch.setattr(cls, "batches", empty)
        monkeypatch.setattr(cls, "noise_step", watched(cls.noise_step))
    task = {"task": "mimic-mortality", "dp_unit": "patient"} if unit == "patient" else {}
    cfg = tiny_config(tiny_corpus, method="layerskip", layers="top:1", noise_multiplier=1.0, train_subsample=40, **task)
    final = run_experiment(cfg, tmp_path, progress=False)
    drawn = sum(steps for history in final["dp"]["accountants"].values() for _, _, steps in history)
    assert drawn > 0 and moved == [True] * drawn


def test_a_document_split_between_clients_spends_their_composition(tiny_corpus, tmp_path):
    """An iid split deals a note's sentences out to several clients, each running DP-SGD on its
    part: the note is in each of those mechanisms, so its loss is their composition. The noise
    is calibrated for that and the reported epsilon is it; per-client accounting alone (the old
    rule) let such a note spend more than the target. The site split keeps notes whole: nothing
    is composed there, and the noise is the per-client calibration."""
    from bench.federation.dp_calibration import _calibrate

    cfg = tiny_config(tiny_corpus, dp_epsilon=8.0, dp_unit="document", train_subsample=40, backend="serial")
    final = run_experiment(cfg, tmp_path / "iid", progress=False)
    histories = [[tuple(h) for h in hs] for hs in final["dp"]["accountants"].values()]
    composed = composed_epsilon(histories, cfg.dp_delta)
    assert final["dp"]["shared_holders"] == [[0, 1]] and len(histories) == 2
    assert 8.0 - 0.005 <= composed <= 8.0 and final["epsilon"] == pytest.approx(composed)
    old_sigma = max(_calibrate(8.0, cfg.dp_delta, h[0][1], sum(steps for *_, steps in h)) for h in histories)
    assert final["dp"]["noise_multiplier"] > old_sigma
    old = [[(old_sigma, rate, steps) for _, rate, steps in h] for h in histories]
    assert composed_epsilon(old, cfg.dp_delta) > 8.0 * 1.2  # what the old rule let a shared note spend

    whole = run_experiment(cfg.with_settings(partition="site", clients=3), tmp_path / "site", progress=False)
    assert whole["dp"]["shared_holders"] == []
    alone = [epsilon_of([tuple(h) for h in hs], cfg.dp_delta) for hs in whole["dp"]["accountants"].values()]
    assert max(alone) == pytest.approx(whole["epsilon"]) and 8.0 - 0.005 <= whole["epsilon"] <= 8.0
    # every training client composed whatever the split: the site split's notes are whole, and
    # still the run calibrates for a note at all three hospitals and reports that composition
    free = run_experiment(
        cfg.with_settings(partition="site", clients=3, dp_unit_holders="all"), tmp_path / "all", progress=False
    )
    assert (
        free["dp"]["shared_holders"] == [[0, 1, 2]] and free["dp"]["noise_multiplier"] > whole["dp"]["noise_multiplier"]
    )
    composed = composed_epsilon([[tuple(h) for h in hs] for hs in free["dp"]["accountants"].values()], cfg.dp_delta)
    assert 8.0 - 0.005 <= composed <= 8.0 and free["epsilon"] == pytest.approx(composed)


def test_the_sets_that_share_a_unit_are_the_largest_among_the_training_clients():
    """Units sit at clients {0, 1} (two of them) and {1, 2}: both sets compose, neither holds the
    other; once one unit also sits at client 2, {0, 1, 2} holds both and alone remains. A unit
    at one client composes nothing, nor does a client that does not train (a pooled method's
    others), nor any unit by row."""
    from types import SimpleNamespace

    from bench.engine.unit_holders import shared_holders

    rows_of = {0: [0, 1], 1: [2, 3], 2: [4], 3: [5], 4: [6, 7], 5: [8]}  # example -> its rows
    units = np.array([0, 1, 0, 1, 2, 3, 1, 2, 3, 1])  # row -> its unit (row 9: unit 1, unused at first)

    def task():
        rows = {e: np.array(r, dtype=int) for e, r in rows_of.items()}
        return SimpleNamespace(
            train_units={"document": units},
            train=SimpleNamespace(rows=lambda ex: np.concatenate([rows[e] for e in ex])),
        )

    cfg = SimpleNamespace(private=True, dp_level="sample", dp_unit="document", dp_unit_holders="observed")
    trained = {0: [0], 1: [1, 4], 2: [2], 3: [3, 5]}  # client -> examples
    assert shared_holders(cfg, task(), trained) == ((0, 1), (1, 2))
    rows_of[2] = [4, 9]  # unit 1 at client 2 too
    assert shared_holders(cfg, task(), trained) == ((0, 1, 2),)
    assert shared_holders(cfg, task(), {0: [0], 3: [3, 5]}) == ()  # clients 1 and 2 train nothing
    assert shared_holders(SimpleNamespace(**{**vars(cfg), "dp_unit": "row"}), task(), trained) == ()


def test_the_calibration_composes_each_shared_set_and_only_it():
    """Three clients, one unit shared by clients 0 and 1 only: the noise is what makes those two
    composed spend the target, less than composing all three would need, more than one alone."""
    from types import SimpleNamespace

    from bench.federation.dp_accounting import composed_epsilon
    from bench.federation.dp_calibration import plan

    cfg = SimpleNamespace(
        dp_epsilon=8.0, noise_multiplier=None, dp_delta=1e-5, dp_level="sample", private=True, batch_size=8,
        local_epochs=1, max_grad_norm=1.0, dp_unit="document", secure_rng=False, dp_fixed_shape=False, dp_unit_max_rows=None,
    )  # fmt: skip
    rows, rounds = {0: 80, 1: 80, 2: 80}, {0: 5, 1: 5, 2: 5}
    alone, pair, triple = (plan(cfg, rows, rounds, s).noise_multiplier for s in ((), ((0, 1),), ((0, 1, 2),)))
    assert alone < pair < triple
    history = [(pair, 0.1, 50)]
    assert 8.0 - 0.005 <= composed_epsilon([history, history], 1e-5) <= 8.0


def test_all_holders_makes_the_noise_independent_of_where_units_sit():
    """`dp_unit_holders: all` composes every training client whatever the data hold, so moving a
    unit between clients (the same rows per client) leaves the noise unchanged; `observed` reads
    the sets from the data, and the same moves change it. Three layouts: every document at one
    client, one shared by two clients, one at all three; the clients differ in rows and rounds,
    so composing a pair is not composing all three. Rows never span clients: refused."""
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.unit_holders import shared_holders
    from bench.errors import BenchError
    from bench.federation.dp_calibration import plan

    def task(units):
        return SimpleNamespace(
            train_units={"document": np.array(units)},
            train=SimpleNamespace(rows=lambda ex: np.asarray(ex, dtype=int)),
        )

    trained = {0: list(range(0, 60)), 1: list(range(60, 160)), 2: list(range(160, 300))}
    apart = [i // 10 for i in range(300)]  # each document at one client
    pair = list(apart)
    pair[60] = 0  # document 0 also at client 1
    every = list(pair)
    every[160] = 0  # and at client 2: the same rows per client throughout
    rows, rounds = {c: len(ex) for c, ex in trained.items()}, {0: 5, 1: 4, 2: 3}
    sigmas = {}
    for holders in ("observed", "all"):
        cfg = ExperimentConfig(
            task="i2b2-2010", method="fedavg", dp_epsilon=8.0, dp_unit="document", dp_unit_holders=holders, batch_size=8
        )
        sets = [shared_holders(cfg, task(units), trained) for units in (apart, pair, every)]
        sigmas[holders] = [plan(cfg, rows, rounds, s).noise_multiplier for s in sets]
        if holders == "all":
            assert sets == [((0, 1, 2),)] * 3
    observed, free = sigmas["observed"], sigmas["all"]
    assert observed[0] < observed[1] < observed[2]  # the data's sets: the noise tells each move
    assert free[0] == free[1] == free[2] == observed[2]  # every client composed: it tells none
    with pytest.raises(BenchError, match="give --dp-unit document or patient"):
        ExperimentConfig(task="i2b2-2010", method="fedavg", dp_epsilon=8.0, dp_unit_holders="all")


def test_the_tables_tell_the_data_free_bound_from_the_observed_sets():
    """Runs under `dp_unit_holders: all` and under the default are separate cells: the table's
    DP column names them apart."""
    from bench.report.dp_label import dp_label

    cfg = {"dp_epsilon": 4.0, "dp_level": "sample", "dp_unit": "document"}
    assert dp_label(cfg) == "sample, per document"
    assert dp_label({**cfg, "dp_unit_holders": "all"}) == "sample, per document, every client composed"


def test_each_step_of_the_unit_path_draws_fresh_noise():
    """The accountant composes independent noise at every step: two steps (and two clients'
    trainings from different seeds) must not repeat a draw, or differencing them would cancel it."""
    from bench.model.build import build_model

    def trainer(seed):
        model, _ = build_model("tiny-bert", "cls", 2, seed=0)
        params = [p for p in model.parameters() if p.requires_grad]
        plan = DpPlan(
            "sample", noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5, target_epsilon=None, unit="patient"
        )
        return UnitPrivateTraining(
            model, torch.optim.SGD(params, lr=0.1), plan, np.arange(4), np.array([1, 1, 2, 2]), 4,
            torch.Generator().manual_seed(seed),
        )  # fmt: skip

    first, other = trainer(0), trainer(1)
    zero = torch.zeros(1000)
    draws = [first._noisy_mean(zero), first._noisy_mean(zero), other._noisy_mean(zero)]
    assert all(d.std() > 0 for d in draws)
    assert not torch.allclose(draws[0], draws[1]) and not torch.allclose(draws[0], draws[2])
    assert torch.equal(trainer(0)._noisy_mean(zero), draws[0])  # seeded: the same run draws the same
    first.close(), other.close()
