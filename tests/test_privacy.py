"""DP: honest epsilon (recomputed with Opacus), every method with DP, client-level DP, resume."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bench.engine.server as server
from bench.config import ExperimentConfig
from bench.engine.sampling import sample_clients
from bench.engine.server import run_experiment
from bench.errors import BenchError
from bench.federation.dp_accounting import epsilon_of
from bench.federation.privacy import DpPlan, clip_update, dp_fedavg
from tests.tiny import tiny_config


def cfg(corpus, **kw):
    return tiny_config(corpus, **{"method": "layerskip", "rounds": 2, "backend": "serial", **kw})


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.6, 1.0, 2.5]), st.sampled_from([0.004, 0.05, 1.0]), st.integers(1, 400)),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([1e-5, 1e-3]),
)
def test_epsilon_is_opacus_rdp_accountants_to_the_bit(history, delta):
    """epsilon_of computes each (noise, rate) pair's RDP once and reuses it: the result must be
    Opacus' own accountant's, exactly, for any history (repeated pairs, rate 1, many steps)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = list(history)
    assert epsilon_of(history, delta) == float(accountant.get_epsilon(delta))


def test_calibrated_epsilon_is_tight_and_recomputable(tiny_corpus, tmp_path):
    from opacus.accountants import RDPAccountant

    final = run_experiment(cfg(tiny_corpus, dp_epsilon=2.0, rounds=3), tmp_path, progress=False)
    assert 0.99 * 2.0 <= final["epsilon"] <= 2.0  # the README says the worst client is within 1%
    for history in final["dp"]["accountants"].values():  # recompute from noise, rate and steps
        accountant = RDPAccountant()
        accountant.history = [tuple(h) for h in history]
        assert accountant.get_epsilon(1e-5) <= final["epsilon"] + 1e-9
    worst = max(epsilon_of([tuple(h) for h in hs], 1e-5) for hs in final["dp"]["accountants"].values())
    assert worst == pytest.approx(final["epsilon"])
    rounds = [x for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert len(rounds) == 3 and '"epsilon": ' in rounds[0]


@pytest.mark.parametrize("model", ["tiny-llama", "minilm"])
@pytest.mark.parametrize("method", ["fedavg", "fedprox", "layerskip", "lora"])
def test_dp_runs_for_every_method(tiny_corpus, tmp_path, model, method):
    final = run_experiment(  # a few sentences: each architecture's per-sample gradients are the point, and
        # under DP-SGD full minilm computes one for every parameter of every example (its embeddings: 47 MB each)
        cfg(tiny_corpus, method=method, model=model, rounds=1, noise_multiplier=1.0, train_subsample=16),
        tmp_path,
        progress=False,
    )
    assert final["status"] == "ok" and final["epsilon"] > 0
    assert final["dp"]["noise_multiplier"] == 1.0


def test_client_level_dp(tiny_corpus, tmp_path):
    final = run_experiment(
        cfg(tiny_corpus, method="fedavg", dp_level="client", dp_epsilon=8.0, rounds=2, clients=4),
        tmp_path,
        progress=False,
    )
    assert 0.99 * 8.0 <= final["epsilon"] <= 8.0
    assert list(final["dp"]["accountants"]) == ["server"]
    with pytest.raises(BenchError, match="client-level DP needs a federated method"):
        run_experiment(
            cfg(tiny_corpus, method="centralized", dp_level="client", noise_multiplier=1.0),
            tmp_path / "x",
            progress=False,
        )


def test_dp_fedavg_clips_and_averages_by_hand():
    start = {"w": torch.zeros(2)}
    states = [{"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([0.3, 0.4])}]  # norms 5 and 0.5
    assert torch.allclose(clip_update({"w": torch.tensor([3.0, 4.0])}, 1.0)["w"], torch.tensor([0.6, 0.8]))
    plan = DpPlan("client", noise_multiplier=1e-12, max_grad_norm=1.0, delta=1e-5, target_epsilon=None)
    out = dp_fedavg(start, states, plan, expected_clients=2, seed=0)
    assert torch.allclose(out["w"], torch.tensor([0.45, 0.6]), atol=1e-6)  # (0.6+0.3)/2, (0.8+0.4)/2


def test_resume_after_crash_gives_same_epsilon_and_metrics(tiny_corpus, tmp_path, monkeypatch):
    config = cfg(tiny_corpus, dp_epsilon=4.0, rounds=3)
    whole = run_experiment(config, tmp_path / "whole", progress=False)
    original, calls = server.write_rounds, []

    def crash_after_two(path, history):
        original(path, history)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between rounds would

    monkeypatch.setattr(server, "write_rounds", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(server, "write_rounds", original)
    resumed = run_experiment(config, tmp_path / "resumed", progress=False)
    assert resumed["epsilon"] == whole["epsilon"] and resumed["metric"] == whole["metric"]
    assert (tmp_path / "whole/rounds.jsonl").read_text().count("\n") == 3


def test_ner_per_sample_gradient_ignores_the_rest_of_the_batch():
    """Under DP-SGD a sentence's gradient must not depend on its batch-mates' token counts."""
    from opacus import GradSampleModule

    from bench.engine.training import _private_loss
    from bench.model.build import build_model

    model, _ = build_model("tiny-bert", "ner", 3, seed=0)
    for m in model.modules():  # no dropout (train mode stays on: Opacus records activations only there)
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    module = GradSampleModule(model)
    ids = torch.randint(5, 100, (3, 12))
    labels = torch.full((3, 12), -100)
    labels[0, 1:4] = torch.tensor([0, 1, 2])  # example 0: 3 labelled tokens
    labels[1, 1:11] = 1  # example 1: 10
    labels[2, 1:2] = 2  # example 2: 1

    def token_mean(module, inputs, kind):  # the model's own loss: a mean over the batch's tokens
        return module(**inputs).loss

    def grad_of_first(rows, loss=_private_loss):
        module.zero_grad(set_to_none=True)
        positions = torch.arange(12).expand(len(rows), 12)
        inputs = {
            "input_ids": ids[rows],
            "attention_mask": torch.ones(len(rows), 12, dtype=torch.long),
            "position_ids": positions,
            "labels": labels[rows],
        }
        loss(module, inputs, "ner").backward()  # by default the loss DP-SGD trains on
        return torch.cat(
            [p.grad_sample[0].flatten() for p in module.parameters() if getattr(p, "grad_sample", None) is not None]
        )

    with_long, with_short = grad_of_first([0, 1]), grad_of_first([0, 2])
    assert with_long.abs().sum() > 0
    assert torch.allclose(with_long, with_short, atol=1e-6)
    # the control (README): under the token mean, example 0's gradient shrinks beside a long batch-mate
    assert not torch.allclose(grad_of_first([0, 1], token_mean), grad_of_first([0, 2], token_mean), atol=1e-6)


def test_recorded_accounting_matches_what_training_did(tiny_corpus, tmp_path, monkeypatch):
    """(sigma, rate, steps) in the accountant = the noise the optimizer used, the Poisson rate of the
    batches drawn, and the number of batches drawn."""
    from opacus.optimizers import DPOptimizer

    from bench.federation.privacy import PrivateTraining

    drawn, sizes, sigmas = [], [], []
    original_batches, original_step = PrivateTraining.batches, DPOptimizer.pre_step

    def counting_batches(self, rows, steps, generator):
        for batch in original_batches(self, rows, steps, generator):
            drawn.append(len(rows))
            sizes.append(len(batch))
            yield batch

    def noting_step(self, *a, **kw):
        sigmas.append(self.noise_multiplier)
        return original_step(self, *a, **kw)

    monkeypatch.setattr(PrivateTraining, "batches", counting_batches)
    monkeypatch.setattr(DPOptimizer, "pre_step", noting_step)
    final = run_experiment(
        cfg(tiny_corpus, noise_multiplier=1.3, rounds=2, local_epochs=1, batch_size=4), tmp_path, progress=False
    )
    entries = [tuple(e) for hist in final["dp"]["accountants"].values() for e in hist]
    assert sum(steps for _, _, steps in entries) == len(drawn)
    assert {sigma for sigma, _, _ in entries} == {1.3} and set(sigmas) == {1.3}
    rows = drawn[0]
    assert all(rate == pytest.approx(4 / rows) for _, rate, _ in entries if rows == drawn[0])
    assert len(sizes) > 40  # 96 batches here: enough for their mean
    assert sum(sizes) / len(sizes) == pytest.approx(4, rel=0.35)  # Poisson batches average rate x rows
    assert 2.0 < float(np.var(sizes)) < 6.5  # and vary as Binomial(rows, rate) does (variance ~3.8), not fixed at 4


def test_row_level_batches_are_poisson_samples_at_the_accounted_rate():
    """The amplification the accountant credits assumes each row joins each batch on its own
    with probability q = batch_size / rows: a shuffle cut into fixed batches of 4, or a rate 35%
    high, would each pass the run-level check above and fail here."""
    from types import SimpleNamespace

    from bench.federation.privacy import PrivateTraining, sample_rate

    rows, steps = np.arange(100), 20_000
    rate = sample_rate(len(rows), 4)
    drawn = list(PrivateTraining.batches(SimpleNamespace(rate=rate), rows, steps, torch.Generator().manual_seed(0)))
    sizes = np.array([len(b) for b in drawn])
    binomial_var = len(rows) * rate * (1 - rate)
    assert abs(sizes.mean() - 4) < 4 * np.sqrt(binomial_var / steps)  # the rate accounted, within 4 standard errors
    assert sizes.var() == pytest.approx(binomial_var, rel=0.05)
    joined = np.bincount(np.concatenate(drawn), minlength=len(rows)) / steps  # each row's own rate
    assert np.abs(joined - rate).max() < 5 * np.sqrt(rate * (1 - rate) / steps)
    assert any(
        len(np.intersect1d(a, b)) for a, b in zip(drawn, drawn[1:])
    )  # batches drawn anew, not cut from one shuffle


def test_client_level_sampling_is_the_poisson_sampling_accounted(tiny_corpus, tmp_path):
    config = cfg(tiny_corpus, method="fedavg", dp_level="client", noise_multiplier=1.0, clients=10, clients_per_round=3)
    sizes = [len(sample_clients(config, r)) for r in range(3000)]
    assert sum(sizes) / (3000 * 10) == pytest.approx(0.3, abs=0.01)  # inclusion probability K/N
    assert len(set(sizes)) > 3 and 0 in sizes  # not a fixed-size draw
    final = run_experiment(config.with_settings(rounds=2), tmp_path, progress=False)
    assert [tuple(e) for e in final["dp"]["accountants"]["server"]] == [(1.0, 0.3, 1), (1.0, 0.3, 1)]


def test_dp_fedavg_noise_has_the_stated_scale():
    start = {"w": torch.zeros(200_000)}
    plan = DpPlan("client", noise_multiplier=0.8, max_grad_norm=2.0, delta=1e-5, target_epsilon=None)
    out = dp_fedavg(start, [{"w": torch.zeros(200_000)}] * 4, plan, expected_clients=4, seed=3)
    assert float(out["w"].std()) == pytest.approx(0.8 * 2.0 / 4, rel=0.01)
    assert abs(float(out["w"].mean())) < 0.005


def test_rejected_updates_are_accounted_and_counted(tiny_corpus, tmp_path, monkeypatch):
    from bench.engine import faults

    monkeypatch.setattr(faults, "screen_norms", lambda norms, outliers=True: {min(norms): "test"})  # both paths
    final = run_experiment(cfg(tiny_corpus, noise_multiplier=1.0, rounds=1, method="fedavg"), tmp_path, progress=False)
    line = [x for x in (tmp_path / "rounds.jsonl").read_text().splitlines()][0]
    assert '"rejected": {"0": "test"}' in line
    assert "0" in final["dp"]["accountants"]  # the rejected client's DP-SGD spend is on record
    assert final["bytes_up_total"] == 2 * final["bytes_down_total"] / 2  # both clients' uploads counted


def test_auto_layers_refused_under_dp(tiny_corpus, tmp_path):
    with pytest.raises(BenchError, match="cannot run under differential privacy"):
        run_experiment(cfg(tiny_corpus, layers="auto:1", noise_multiplier=1.0), tmp_path, progress=False)


@pytest.mark.parametrize("level", ["sample", "client"])
def test_secure_rng_noise_is_not_the_seeds(tiny_corpus, tmp_path, level):
    """Seeded DP noise is regenerable from the stored seed; with --secure-rng it comes from OS
    entropy, so two runs with one seed differ (and say so), while two seeded runs are equal."""
    import torch

    def trained(name: str, secure: bool) -> tuple[dict, dict]:
        cfg = tiny_config(
            tiny_corpus, seed=3, backend="serial", train_subsample=60, noise_multiplier=1.0, dp_level=level,
            secure_rng=secure,
        )  # fmt: skip
        final = run_experiment(cfg, tmp_path / name, progress=False)
        return final, torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["states"]["global"]

    (f1, s1), (f2, s2) = trained("secure-1", True), trained("secure-2", True)
    (_, p1), (_, p2) = trained("seeded-1", False), trained("seeded-2", False)
    assert f1["secure_rng"] is True and f2["secure_rng"] is True
    assert any(not torch.equal(s1[k], s2[k]) for k in s1)  # the noise differs
    assert all(torch.equal(p1[k], p2[k]) for k in p1)  # seeded: the same noise


SECURE_PATHS = {
    "row": dict(noise_multiplier=1.0),
    "patient": dict(
        task="mimic-mortality", method="layerskip", layers="top:1", noise_multiplier=1.0, dp_unit="patient"
    ),
    "client": dict(noise_multiplier=1.0, dp_level="client"),
    # Poisson sampling at rate 1/2: a round of one client adds its noise on the client (lone_round)
    "client-secagg": dict(noise_multiplier=1.0, dp_level="client", secagg="on", clients_per_round=1, rounds=4),
}


@pytest.mark.parametrize("path", list(SECURE_PATHS))
def test_every_secure_draw_is_fresh_os_entropy_and_noise_is_opacus_secure_mode(
    tiny_corpus, tmp_path, monkeypatch, path
):
    """Under --secure-rng, every DP noise draw of a run (DP-SGD by row inside Opacus, by patient
    in the suite's own unit path, DP-FedAvg at the server) goes through Opacus's noise function
    in secure mode (four draws summed, against floating-point attacks), no other Gaussian draw
    is made, and DP-SGD's Poisson batches are drawn secretly too (subsampling's amplification
    assumes the adversary does not know them). os.urandom is replaced by a counter, so each
    generator's seed says which call seeded it: every noise and batch generator is one of
    them, fresh (not one seed reused), and no batch generator is a noise generator."""
    import opacus.optimizers.optimizer as opacus_optimizer

    import bench.seeding
    from bench.federation.privacy import PrivateTraining, UnitPrivateTraining

    given, real = [], bench.seeding.os.urandom

    def urandom(n: int) -> bytes:
        if n > 16:  # a generator's twister state: real entropy
            return real(n)
        given.append(len(given) + 1)  # a generator's name (initial_seed keeps the top 63 bits): the count
        return (2 * given[-1]).to_bytes(n, "little")

    monkeypatch.setattr(bench.seeding.os, "urandom", urandom)
    draws, batch_seeds, outside, inside = [], [], [], [False]
    original_noise, original_normal = opacus_optimizer._generate_noise, torch.normal

    def noise(std, reference, generator=None, secure_mode=False):
        draws.append((secure_mode, generator.initial_seed() if generator is not None else None))
        inside[0] = True
        try:
            return original_noise(std, reference, generator=generator, secure_mode=secure_mode)
        finally:
            inside[0] = False

    def normal(*args, **kwargs):
        if not inside[0]:
            outside.append(kwargs.get("size"))
        return original_normal(*args, **kwargs)

    def batches_of(cls):
        original = cls.batches

        def batches(self, rows, steps, generator):
            batch_seeds.append(generator.initial_seed())
            return original(self, rows, steps, generator)

        return batches

    monkeypatch.setattr(opacus_optimizer, "_generate_noise", noise)
    monkeypatch.setattr(torch, "normal", normal)
    for cls in (PrivateTraining, UnitPrivateTraining):
        monkeypatch.setattr(cls, "batches", batches_of(cls))
    settings = {"backend": "serial", "train_subsample": 60, "rounds": 2, "secure_rng": True, **SECURE_PATHS[path]}
    run_experiment(tiny_config(tiny_corpus, **settings), tmp_path, progress=False)
    if path == "client-secagg":  # the counter fixes the Poisson draws: rounds of one client are among them
        assert any('"secagg_lone_round": true' in x for x in (tmp_path / "rounds.jsonl").read_text().splitlines())
    noise_seeds = {seed for _, seed in draws}
    assert draws and {secure for secure, _ in draws} == {True} and not outside
    # a fresh generator for every client and round (DP-SGD: 2 clients x 2 rounds) or every round (the server's)
    assert noise_seeds <= set(given) and len(noise_seeds) == {"client": 2, "client-secagg": 4}.get(path, 4)
    if not path.startswith("client"):  # DP-SGD: each client's batches in each round from a generator of their own
        assert len(set(batch_seeds)) == len(batch_seeds) >= 4 and set(batch_seeds) <= set(given) - noise_seeds
    else:
        assert batch_seeds == []


def test_a_secure_generators_stream_depends_on_its_whole_twister_state_not_on_a_32_bit_seed(monkeypatch):
    """torch seeds its twister from a seed's low 32 bits: a secure generator seeded that way
    would fall to a brute force over 2^32 seeds. noise_generator fills the whole state from OS
    entropy instead: one bit changed in the second or the last state word changes the draws,
    and the generator's name (its initial_seed) does not."""
    import os

    import bench.seeding
    from bench.seeding import noise_generator

    state = bytearray(os.urandom(4 * 624))

    def draws(name: bytes, words: bytes) -> torch.Tensor:
        calls = iter([name, words])
        monkeypatch.setattr(bench.seeding.os, "urandom", lambda n: next(calls))
        return torch.randn(1000, generator=noise_generator())

    base = draws(b"\x02" * 8, bytes(state))
    assert torch.equal(base, draws(b"\x04" * 8, bytes(state)))  # another name, the same stream
    for at in (4, len(state) - 1):  # word 1 (word 0 contributes only its top bit) and word 623
        flipped = bytearray(state)
        flipped[at] ^= 1
        assert not torch.equal(base, draws(b"\x02" * 8, bytes(flipped)))


@pytest.mark.parametrize("secure", [False, True], ids=["seeded", "secure-rng"])
def test_a_seed_holder_regenerates_client_level_participation_unless_secure_rng(secure):
    """Client-level DP's amplification by sampling assumes nobody outside knows which clients
    each round drew. Holding the seed, an attacker regenerates the Poisson draw as the seeded
    server made it: every one of 40 rounds matches. Under --secure-rng the draw comes from OS
    entropy: two independent draws of 10 clients at rate 0.3 coincide with probability
    0.58^10 = 0.4%, so about 0.2 of 40 rounds match by chance."""
    from bench.engine.sampling import sample_clients
    from bench.seeding import stream

    cfg = ExperimentConfig(
        task="i2b2-2010", method="fedavg", clients=10, clients_per_round=3, dp_level="client",
        noise_multiplier=1.0, seed=4, secure_rng=secure,
    )  # fmt: skip
    regenerated = [np.flatnonzero(stream("client_sampling", 4, r).random(10) < 0.3).tolist() for r in range(40)]
    matches = sum(sample_clients(cfg, r) == regenerated[r] for r in range(40))
    assert matches == 40 if not secure else matches <= 5


@pytest.mark.parametrize("secure", [False, True], ids=["seeded", "secure-rng"])
def test_an_attacker_holding_the_seed_strips_seeded_noise_only(secure):
    """The attack --secure-rng exists for: someone with a stored run's config (its seed) and the
    released model regenerates the client-level DP noise as the server drew it and subtracts it.
    Seeded: what is left is the noiseless mean, to float rounding. Secure: the regenerated noise
    is unrelated to the noise added, so subtracting it adds noise instead of removing it (residual
    std about sqrt(2) x the noise's 0.25, against 0 when stripped)."""
    from bench.federation.privacy import noisy_mean

    size, clients, seed = 20_000, 4, 7
    plan = DpPlan("client", 1.0, 1.0, 1e-5, None, "client", secure)
    released = noisy_mean({"w": torch.zeros(size)}, {"w": torch.full((size,), 0.3)}, plan, clients, seed)["w"]
    residuals = [  # the attacker holds the code: it replays both of its draws (one, or secure mode's four) from the seed
        released - _regenerated(1.0 / clients, (size,), seed, scheme) - 0.3 / clients for scheme in (False, True)
    ]
    stripped = [float(residual.abs().max()) < 1e-6 for residual in residuals]
    if secure:
        assert not any(stripped) and all(0.3 < float(residual.std()) < 0.4 for residual in residuals)
    else:
        assert stripped[0]


def _regenerated(std: float, shape, seed: int, secure_mode: bool) -> torch.Tensor:
    """The server's noise as the seed would give it: the generator seeded as the seeded path seeds
    it, drawn by the suite's noise function in either of its schemes, float64 cast to float32."""
    from bench.federation.dp_noise import gaussian

    return gaussian(std, shape, torch.Generator().manual_seed(seed), secure_mode, torch.float64).float()


def _one_dp_round(corpus, out, noise_multiplier: float, secure: bool) -> None:
    """A real run of one client-level DP round (tiny-bert, 2 clients), written to `out`."""
    cfg = tiny_config(
        corpus, seed=3, backend="serial", train_subsample=60, noise_multiplier=noise_multiplier,
        dp_level="client", secure_rng=secure,
    )  # fmt: skip
    run_experiment(cfg, out, progress=False)


def _released_model(run) -> dict:
    """The model a stored run released: its checkpoint's global state after the last round."""
    return torch.load(run / "checkpoint.pt", weights_only=False)["states"]["global"]


def _strip_regenerated_noise(run, secure_mode: bool) -> dict:
    """The attacker: from the run folder alone (final.json's config: seed, sigma, clip, clients;
    rounds.jsonl: which round; the checkpoint: the released model) and the code, it derives the
    round's noise seed as the server does (bench.seeding's dp_server_noise stream of (seed, round
    index)), draws N(0, (sigma C / K)^2) tensor by tensor in the released state's order, float64
    cast to each tensor's dtype, by the code's noise function in either scheme (`secure_mode`: the
    sum of four draws), and subtracts it."""
    import json

    from bench.federation.dp_noise import gaussian
    from bench.seeding import seed_of

    stored = ExperimentConfig.from_dict(json.loads((run / "final.json").read_text())["config"])
    (line,) = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
    released = _released_model(run)
    generator = torch.Generator().manual_seed(seed_of("dp_server_noise", stored.seed, line["round"] - 1))
    std = stored.noise_multiplier * stored.client_clip / stored.per_round
    return {
        name: value - gaussian(std, value.shape, generator, secure_mode, torch.float64).to(value.dtype)
        for name, value in released.items()
    }


@pytest.fixture(scope="module")
def noiseless_round(tiny_corpus, tmp_path_factory) -> dict:
    """The same round with (as good as) no noise: sigma must be > 0 (config_checks), and at 1e-30
    the noise's std is 5e-31, far below the 1e-6 the comparison allows. Client-level DP adds no
    noise on the clients, so with the same seed the training is the noisy runs' exactly."""
    out = tmp_path_factory.mktemp("noiseless")
    _one_dp_round(tiny_corpus, out, 1e-30, False)
    return _released_model(out)


@pytest.mark.parametrize("secure", [False, True], ids=["seeded", "secure-rng"])
def test_a_stored_runs_seed_strips_its_released_models_noise_unless_secure_rng(
    tiny_corpus, tmp_path, noiseless_round, secure
):
    """End to end, the attack the README's "DP noise and the seed" describes: a real client-level
    DP round (sigma 1, so the noise's std is sigma C / K = 0.5), and an attacker holding only the
    run folder and the code. Seeded: stripping the regenerated noise gives the noiseless round's
    model to float rounding. --secure-rng: what is left is the added noise minus an independent
    one, std sqrt(2) x 0.5 over the model's 2 million values, whichever of the code's two draws
    (one, or secure mode's four) the attacker replays from the seed."""
    run = tmp_path / "run"
    _one_dp_round(tiny_corpus, run, 1.0, secure)
    released = _released_model(run)
    assert list(released) == list(noiseless_round)
    added = torch.cat([(released[k] - noiseless_round[k]).flatten() for k in released])
    assert float(added.std()) == pytest.approx(0.5, rel=0.01)  # the noise is there to strip
    lefts = []
    for scheme in (False, True):  # the seeded scheme's one draw, secure mode's four
        stripped = _strip_regenerated_noise(run, scheme)
        lefts.append(torch.cat([(stripped[k] - noiseless_round[k]).flatten() for k in released]))
    if secure:
        assert all(float(left.std()) == pytest.approx(0.5 * 2**0.5, rel=0.01) for left in lefts)
    else:
        assert float(lefts[0].abs().max()) < 1e-6


def test_a_dp_runs_partition_json_withholds_the_clients_label_counts(tiny_corpus, tmp_path):
    """Each client's label and entity counts are statistics of its private data that no
    mechanism noised: a DP run's partition.json (sample or client level) keeps each client's id
    and size; the same split without DP records the counts, and the partition figure reads
    only those."""
    import json

    from bench.report.figures import partition_heatmaps

    settings = dict(rounds=1, backend="serial", train_subsample=40, seed=5)
    runs = {"plain": {}, "sample": dict(noise_multiplier=1.0), "client": dict(noise_multiplier=1.0, dp_level="client")}
    for name, dp in runs.items():
        run_experiment(tiny_config(tiny_corpus, **settings, **dp), tmp_path / name, progress=False)
    stored = {name: json.loads((tmp_path / name / "partition.json").read_text()) for name in runs}
    assert all({"labels", "entities", "divergence"} <= set(c) for c in stored["plain"]["clients"])
    for level in ("sample", "client"):
        assert set(stored[level]) == {"task", "partition", "seed", "clients", "label_counts"}
        assert [c for c in stored[level]["clients"]] == [
            {"id": c["id"], "size": c["size"]} for c in stored["plain"]["clients"]
        ]
    figures = partition_heatmaps([{"partition_description": stored["sample"]}], tmp_path / "figures")
    assert figures == [] and not (tmp_path / "figures").exists()  # a DP record is not plotted


def test_client_level_dp_averages_bfloat16_updates_in_float32():
    """DP-FedAvg in the clear sums a hundred clients' clipped bfloat16 updates: in float32, as the
    plain average, the mean of 0.01 each is bfloat16's 0.01; summed in bfloat16 it drifts (the
    control: 4.9% high). Noise off (multiplier 0) so the sum alone is compared."""
    start = {"w": torch.zeros(4, dtype=torch.bfloat16)}
    step = torch.full((4,), 0.01, dtype=torch.bfloat16)
    plan = DpPlan("client", noise_multiplier=0.0, max_grad_norm=10.0, delta=1e-5, target_epsilon=None, unit="client")
    out = dp_fedavg(start, [{"w": step.clone()} for _ in range(100)], plan, expected_clients=100, seed=0)["w"]
    assert out.dtype == torch.bfloat16 and torch.equal(out, step.float().to(torch.bfloat16))
    naive = torch.zeros(4, dtype=torch.bfloat16)
    for _ in range(100):
        naive += step
    assert float(naive[0] / 100) > 1.04 * float(step[0])  # the control: bfloat16 accumulation drifts
