"""Secure aggregation: the unmasked sum equals the plain weighted sum within the quantisation
bound, with dropouts up to the threshold; beyond it the round fails; a masked vector alone
looks uniform, with either mask alone too, and not with neither."""

import dataclasses

import numpy as np
import pytest

from bench.federation.secagg import SecAggFailure, SecureRound, neighbours
from bench.federation.secagg_client import ClientKit, ClientParties, MaskLayout, Refused
from bench.federation.secagg_math import Quantiser, prg, reconstruct, split_secret
from bench.federation.secagg_network import key_exchange, secure_sum, unmask
from tests.tiny import tiny_config

N, DIM = 10, 64


def _round(drop: set[int]):
    rng = np.random.default_rng(0)
    updates = {c: rng.normal(0, 0.05, DIM) for c in range(N)}
    weights = {c: float(rng.integers(20, 200)) for c in range(N)}
    quantiser = Quantiser(clip=1.0, total_weight=sum(weights.values()))
    total, weight, costs = secure_sum(
        updates, weights, quantiser, round_=3, seed=1, degree=N - 1, threshold=6, drop_after_masking=drop
    )
    alive = [c for c in range(N) if c not in drop]
    plain = sum(weights[c] * updates[c] for c in alive)
    bound = len(alive) * 0.5 / quantiser.scale  # half a step per client per element
    return total, weight, plain, sum(weights[c] for c in alive), bound, costs


def test_secure_sum_equals_the_weighted_sum_with_three_dropped():
    total, weight, plain, plain_weight, bound, costs = _round({1, 4, 7})
    assert np.max(np.abs(total - plain)) <= bound
    assert abs(weight - plain_weight) <= bound
    assert costs["secagg_bytes_up"] > 7 * (DIM + 1) * 4  # at least the masked vectors


def test_without_dropouts_too():
    total, weight, plain, plain_weight, bound, _ = _round(set())
    assert np.max(np.abs(total - plain)) <= bound and abs(weight - plain_weight) <= bound


def test_five_dropped_is_a_failed_round():
    with pytest.raises(SecAggFailure, match="needed"):
        _round({0, 2, 4, 6, 8})


@pytest.mark.parametrize("removed", [(), ("self_mask",), ("pair_masks",), ("self_mask", "pair_masks")])
def test_a_masked_vector_alone_is_uniform(monkeypatch, removed):
    """Chi-square over 16 bins of one client's masked vector (a realistic small update, whose
    fixed-point values sit at both ends of the ring, so a leak shows as two spikes): uniform at the
    1e-6 level with both masks and with either alone (each is a full one-time pad; the secrets come
    from OS entropy, so the level is where chance alone fails it about once in a million runs),
    and rejected with neither: the statistic sees a leak, so its passing is evidence."""
    from scipy.stats import chisquare

    for mask in removed:
        monkeypatch.setattr(ClientKit, mask, lambda self, length: np.zeros(length, dtype=np.uint64))
    quantiser = Quantiser(clip=1.0, total_weight=100.0)
    server = SecureRound([0, 1, 2, 3], 0, 5, quantiser, ["v"], [(40_000,)])
    clients = ClientParties()
    key_exchange(server, clients)
    update = {"v": np.random.default_rng(0).normal(0, 0.05, 40_000)}
    masked = clients.kit(0, MaskLayout(["v"], [(40_000,)], quantiser)).mask_update(update, 1.0).vector
    counts = np.bincount((masked[:40_000] >> np.uint64(28)).astype(np.int64), minlength=16)
    pvalue = chisquare(counts).pvalue
    if len(removed) == 2:
        assert pvalue < 1e-6 and counts[1:15].sum() == 0  # the positive control: a leak is seen
    else:
        assert pvalue > 1e-6  # secrets from OS entropy: a fixed level must not fail by chance


def test_shamir_needs_the_threshold():
    rng = np.random.default_rng(0)
    secret = int.from_bytes(rng.bytes(32), "big")
    shares = split_secret(secret, list(range(8)), threshold=5)
    assert reconstruct({h: shares[h] for h in (0, 2, 3, 5, 7)}) == secret
    assert reconstruct({h: shares[h] for h in (0, 2, 3, 5)}) != secret


def test_secagg_plus_graph_is_sparse_and_symmetric():
    graph = neighbours(list(range(50)), degree=8, seed=0)
    assert all(len(v) == 8 for v in graph.values())
    assert all(c in graph[d] for c, v in graph.items() for d in v)


def test_prg_streams_depend_on_the_seed():
    assert not np.array_equal(prg(b"a" * 32, 100, 32), prg(b"b" * 32, 100, 32))
    assert np.array_equal(prg(b"a" * 32, 100, 32), prg(b"a" * 32, 100, 32))


def test_weights_at_the_edge_of_the_range_do_not_wrap():
    """Every client's full weight in the 0/1 slots: the sum is the bound W itself."""
    weights = {c: 347.0 for c in range(4)}
    updates = {c: np.full(8, 1.0) for c in range(4)}  # at the clipping range too
    quantiser = Quantiser(clip=1.0, total_weight=sum(weights.values()))
    total, weight, _ = secure_sum(updates, weights, quantiser, round_=0, seed=0, degree=3)
    assert weight == pytest.approx(1388.0, abs=1e-3) and np.allclose(total, 1388.0, atol=1e-3)


def test_a_value_beyond_the_clip_counts_at_the_clip_and_never_wraps():
    """README: each worker clips every value of its update to --secagg-clip before fixed point, so
    one large (or hostile) value counts at the clip. Unclipped, four clients of weight 10 sending
    3.0 at clip 1.0 wrapped round the modulus to a sum of -40."""
    weights = {c: 10.0 for c in range(4)}
    updates = {c: np.full(8, 3.0) for c in range(4)}
    updates[0][:4] = -5.0
    quantiser = Quantiser(clip=1.0, total_weight=sum(weights.values()))
    total, weight, _ = secure_sum(updates, weights, quantiser, round_=0, seed=0, degree=3)
    assert weight == pytest.approx(40.0, abs=1e-3)
    assert np.allclose(total[:4], 3 * 10.0 - 10.0, atol=1e-3) and np.allclose(total[4:], 40.0, atol=1e-3)


def test_a_run_with_secure_aggregation_matches_the_plain_run(tiny_corpus, tmp_path):
    """Same clients, same training: the unmasked means equal FedAvg's within quantisation noise
    (a couple of 1e-9 per element), so every score matches; the rounds record the overhead, and
    it is the size of the messages in the server's transcript. Run twice with one seed: fresh
    client secrets (other keys, other masked vectors), the same numbers."""
    import json

    from bench.engine.server import run_experiment
    from bench.federation.secagg_transcript import read_transcript

    cfg = tiny_config(tiny_corpus, clients=3, rounds=3, max_length=48, lr=3e-3)
    plain = run_experiment(cfg, tmp_path / "plain", progress=False)
    secure = [
        run_experiment(
            cfg.with_settings(secagg="on", secagg_transcript=str(tmp_path / f"t{i}.jsonl")),
            tmp_path / f"s{i}",
            progress=False,
        )
        for i in (0, 1)
    ]
    assert plain["metric"] > 0.05 and secure[0]["metric"] == pytest.approx(plain["metric"], abs=1e-6)
    assert secure[0]["val_metric"] == pytest.approx(plain["val_metric"], abs=1e-6)
    assert secure[1]["metric"] == secure[0]["metric"] and secure[1]["val_metric"] == secure[0]["val_metric"]
    lines = [json.loads(x) for x in (tmp_path / "s0/rounds.jsonl").read_text().splitlines()]
    assert all(x["secagg_bytes_up"] > 0 and x["secagg_bytes_down"] > 0 for x in lines)
    assert secure[0]["bytes_up_total"] == plain["bytes_up_total"]  # the plain payload; the protocol's extra is apart
    assert secure[0]["secagg_min_holders"] == 3
    views = [read_transcript(tmp_path / f"t{i}.jsonl") for i in (0, 1)]
    for line in lines:
        sent = [m for m in views[0] if m["round"] == line["round"]]
        up = sum(len(m["payload"]) for m in sent if m["direction"] == "to_server")
        assert up == line["bytes_up"] + line["secagg_bytes_up"]
        assert sum(len(m["payload"]) for m in sent if m["direction"] == "from_server") == line["secagg_bytes_down"]
    keys = [[m["payload"] for m in view if m["kind"] == "public_key"] for view in views]
    assert len(keys[0]) == len(keys[1]) > 0 and not set(keys[0]) & set(keys[1])  # fresh secrets every run


def test_a_tensor_with_too_few_holders_is_refused(tiny_corpus, tmp_path):
    """A block only one client trains would be 'summed' over that client: the server would read
    its update. Refused with the threshold named, before any training."""
    from bench.engine.server import run_experiment
    from bench.errors import BenchError

    budgets = tmp_path / "budgets.json"
    budgets.write_text('{"0": 2, "1": 1, "2": 1}')
    cfg = tiny_config(
        tiny_corpus, method="layerskip", layers="top:2", clients=3, secagg="on", client_budgets=str(budgets)
    )
    with pytest.raises(
        BenchError, match=r"fewer holders than 2 \(max\(2, threshold 2\); fewest: 1\).*--client-budgets"
    ):
        run_experiment(cfg, tmp_path / "run", progress=False)
    budgets.write_text('{"0": 2, "1": 1}')  # two clients: threshold 1, but a sum over one client is still refused
    with pytest.raises(BenchError, match=r"fewer holders than 2 \(max\(2, threshold 1\)"):
        run_experiment(cfg.with_settings(clients=2), tmp_path / "two", progress=False)


def test_too_many_stragglers_fail_the_round_and_the_run_goes_on(tiny_corpus, tmp_path):
    import json

    from bench.engine.server import run_experiment
    from bench.federation.secagg_transcript import read_transcript

    transcript = tmp_path / "transcript.jsonl"
    cfg = tiny_config(  # one block and the head travel: the protocol is what is tested, not the vector's size
        tiny_corpus,
        clients=10,
        rounds=2,
        method="layerskip",
        layers="top:1",
        secagg="on",
        straggler_frac=0.3,
        secagg_transcript=str(transcript),
    )
    final = run_experiment(cfg, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert final["status"] == "ok" and len(lines) == 2
    assert "secagg_failed" not in lines[0] and len(lines[0]["stragglers"]) == 2  # recovered from the survivors' shares
    assert "needed" in lines[1]["secagg_failed"] and len(lines[1]["stragglers"]) == 4  # too few survivors: counted
    for line in lines:  # the stragglers' vectors and the failed round's messages are counted as sent
        sent = [m for m in read_transcript(transcript) if m["round"] == line["round"]]
        assert sum(len(m["payload"]) for m in sent if m["direction"] == "to_server") == (
            line["bytes_up"] + line["secagg_bytes_up"]
        ), line["round"]
        assert sum(len(m["payload"]) for m in sent if m["direction"] == "from_server") == line["secagg_bytes_down"]


def test_a_late_upload_that_leaves_one_holder_fails_its_round_not_the_run(tiny_corpus, tmp_path):
    """Lateness is drawn per round: with two clients and one late, the sum would be over one
    client, so the round fails (the server round's own check) and the next round runs. The
    check before the round counted only the clients expected in time and stopped the run."""
    import json

    from bench.engine.server import run_experiment

    cfg = tiny_config(tiny_corpus, rounds=2, secagg="on", straggler_frac=0.5, seed=3, train_subsample=40)
    final = run_experiment(cfg, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert final["status"] == "ok" and [x["stragglers"] for x in lines] == [[0], []]
    assert "needed" in lines[0]["secagg_failed"] and "secagg_failed" not in lines[1]


def test_client_level_dp_through_secure_aggregation_matches_plain_dp_fedavg(tiny_corpus, tmp_path):
    """Clients clip before masking, the server adds the same seeded noise to the unmasked sum:
    the same model as DP-FedAvg in the clear, and the same accounting."""
    import json

    from bench.engine.server import run_experiment

    cfg = tiny_config(
        tiny_corpus,
        clients=3,
        rounds=2,
        max_length=48,
        lr=3e-3,
        dp_level="client",
        noise_multiplier=0.3,
        client_clip=0.5,
    )
    plain = run_experiment(cfg, tmp_path / "plain", progress=False)
    secure = run_experiment(cfg.with_settings(secagg="on"), tmp_path / "secure", progress=False)

    def val(d):
        return [json.loads(x)["val_metric"] for x in (tmp_path / d / "rounds.jsonl").read_text().splitlines()]

    assert max(val("plain")) > 0.05 and val("secure") == pytest.approx(val("plain"), abs=1e-6)
    assert secure["epsilon"] == plain["epsilon"] and secure["dp"]["accountants"] == plain["dp"]["accountants"]


@pytest.mark.parametrize("budgets", [False, True], ids=["fedavg", "budgets"])
def test_a_round_that_reaches_one_client_under_client_level_dp_is_the_plain_mechanism(tiny_corpus, tmp_path, budgets):
    """Poisson sampling reaches one client in a quarter of the rounds at N=4, K=2; a secure sum
    over one client is its update, so the run stopped there. Now that client clips and adds the
    round's noise itself, in the clear, and the server adds none: the same models round by
    round as DP-FedAvg in the clear (noise added once, at its scale, on every tensor: with
    --client-budgets the lone client trains one block of two and noises both), and the server's
    transcript of that round holds the noised upload alone."""
    import base64
    import json

    import torch

    from bench.engine.sampling import sample_clients
    from bench.engine.server import run_experiment

    cfg = tiny_config(
        tiny_corpus, clients=4, clients_per_round=2, rounds=3, max_length=48, lr=3e-3, dp_level="client",
        noise_multiplier=0.3, client_clip=0.5, seed=7, train_subsample=60,
    )  # fmt: skip
    if budgets:  # the lone client (0) trains the top block only; every block has two holders in the other draws
        (tmp_path / "budgets.json").write_text('{"0": 1, "1": 2, "2": 2, "3": 2}')
        cfg = cfg.with_settings(method="layerskip", layers="top:2", client_budgets=str(tmp_path / "budgets.json"))
    assert [len(sample_clients(cfg, r)) for r in range(3)] == [3, 1, 4]  # the second round reaches one client
    plain = run_experiment(cfg, tmp_path / "plain", progress=False)
    transcript = tmp_path / "transcript.jsonl"
    secure = run_experiment(
        cfg.with_settings(secagg="on", secagg_transcript=str(transcript)), tmp_path / "secure", progress=False
    )

    def lines(d):
        return [json.loads(x) for x in (tmp_path / d / "rounds.jsonl").read_text().splitlines()]

    assert [x.get("secagg_lone_round", False) for x in lines("secure")] == [False, True, False]
    assert "secagg_failed" not in lines("secure")[1]
    assert [x["val_metric"] for x in lines("secure")] == pytest.approx(
        [x["val_metric"] for x in lines("plain")], abs=1e-6
    )
    state = {
        d: torch.load(tmp_path / d / "checkpoint.pt", weights_only=False)["states"]["global"]
        for d in ("plain", "secure")
    }
    assert max(float((state["plain"][k] - state["secure"][k]).abs().max()) for k in state["plain"]) < 1e-4
    assert secure["dp"]["accountants"] == plain["dp"]["accountants"]
    second = [json.loads(x) for x in transcript.read_text().splitlines() if json.loads(x)["round"] == 2]
    assert [(m["kind"], m["sender"]) for m in second] == [("noised_vector", 0)]
    sent = np.frombuffer(base64.b64decode(second[0]["payload"]), dtype="<f4")
    assert sent.size == sum(v.numel() for v in state["secure"].values()) and np.isfinite(sent).all()


def _record_noisy_means(monkeypatch) -> list:
    """Each call of the server's DP-FedAvg half on a secure sum: (round, whether the sum was empty)."""
    from bench.federation.dp_ledger import DpLedger

    noised, original = [], DpLedger.noisy_mean

    def recording(self, global_state, summed, r):
        noised.append((r, all(float(v.abs().max()) == 0 for v in summed.values())))
        return original(self, global_state, summed, r)

    monkeypatch.setattr(DpLedger, "noisy_mean", recording)
    return noised


def test_a_lone_round_whose_upload_is_late_releases_the_noise_alone(tiny_corpus, tmp_path, monkeypatch):
    """The lone client's upload comes after the deadline: the server received it (the transcript
    has it) and does not sum it, and the round still releases the model plus the round's noise
    over an empty sum, as DP-FedAvg does every round (an unchanged model would show the round
    failed). The next lone round, on time, adds no server noise: the client's is in its upload."""
    import base64
    import json

    from bench.engine.server import run_experiment

    transcript = tmp_path / "transcript.jsonl"
    cfg = tiny_config(
        tiny_corpus, clients=4, clients_per_round=2, rounds=2, dp_level="client", noise_multiplier=0.3,
        client_clip=0.5, seed=8, straggler_frac=0.5, train_subsample=60, secagg="on",
        secagg_transcript=str(transcript),
    )  # fmt: skip
    noised = _record_noisy_means(monkeypatch)
    final = run_experiment(cfg, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert [x["clients"] for x in lines] == [[], [3]] and [x["stragglers"] for x in lines] == [[3], []]
    assert all(x["secagg_lone_round"] for x in lines) and final["secagg_lone_rounds"] == 2
    assert "in time" in lines[0]["secagg_failed"] and "secagg_failed" not in lines[1]
    assert noised == [(0, True)]  # the failed round: the server's noise alone; the next: the client's only
    received = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert [(m["round"], m["kind"], m["sender"]) for m in received] == [
        (1, "noised_vector", 3),
        (2, "noised_vector", 3),
    ]
    assert len(base64.b64decode(received[0]["payload"])) == lines[0]["bytes_up"] > 0  # the late upload, counted


def test_a_poisson_draw_that_leaves_a_block_to_one_client_is_withheld_not_the_run(tiny_corpus, tmp_path, monkeypatch):
    """Under client-level DP with --client-budgets, a Poisson draw may reach clients whose budgets
    leave a block to one of them: its sum would be that client's. That round no one trains and
    DP-FedAvg releases its noise alone (the draw and the budgets are public); the next draw,
    which covers every block, is summed securely. With a fixed K of N such budgets stop the run."""
    import json

    from bench.engine.server import run_experiment
    from bench.federation.dp_ledger import DpLedger

    budgets = tmp_path / "budgets.json"
    budgets.write_text('{"0": 2, "1": 2, "2": 1, "3": 1}')  # the second block from the top: clients 0 and 1 only
    cfg = tiny_config(
        tiny_corpus, method="layerskip", layers="top:2", clients=4, clients_per_round=2, rounds=2, seed=14,
        dp_level="client", noise_multiplier=0.3, client_clip=0.5, train_subsample=60, secagg="on",
        client_budgets=str(budgets),
    )  # fmt: skip
    noised, original = [], DpLedger.fedavg

    def recording(self, global_state, client_states, r):
        noised.append((r, len(client_states)))
        return original(self, global_state, client_states, r)

    monkeypatch.setattr(DpLedger, "fedavg", recording)
    final = run_experiment(cfg, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert lines[0]["secagg_failed"].startswith("withheld: 16 of 34 tensors") and lines[0]["bytes_down"] == 0
    assert lines[0]["clients"] == [] and "secagg_failed" not in lines[1] and lines[1]["clients"] == [0, 1]
    assert noised == [(0, 0)] and len(final["dp"]["accountants"]["server"]) == 2  # noise alone, accounted


def test_a_secure_round_with_too_few_survivors_under_client_level_dp_releases_the_noise_alone(
    tiny_corpus, tmp_path, monkeypatch
):
    """Two clients reached, one late: the secure sum would be over one survivor, so the round
    fails; under client-level DP it still releases the model plus the round's noise over an
    empty sum (an unchanged model would show the round failed)."""
    import json

    from bench.engine.server import run_experiment

    cfg = tiny_config(
        tiny_corpus, clients=4, clients_per_round=2, dp_level="client", noise_multiplier=0.3, client_clip=0.5,
        seed=0, straggler_frac=0.5, train_subsample=40, secagg="on",
    )  # fmt: skip
    noised = _record_noisy_means(monkeypatch)
    run_experiment(cfg, tmp_path, progress=False)
    line = json.loads((tmp_path / "rounds.jsonl").read_text())
    assert line["stragglers"] == [0] and "needed" in line["secagg_failed"] and "secagg_lone_round" not in line
    assert noised == [(0, True)]  # the server's noise over an empty sum


def test_a_lone_clients_upload_carries_the_rounds_noise():
    """What the server sees of a lone round: the clipped update plus N(0, (zC)^2) per element,
    so the upload itself is off the update by the noise. The attack of one who holds the seed:
    regenerate the round's noise and subtract it. Seeded, that gives the clipped update exactly
    (a seeded lone round hides nothing from a seed holder, the server included: README says
    so), which also pins the clip's scale; under --secure-rng the noise is fresh and the
    attack is off by the whole noise."""
    import torch

    from bench.federation import dp_noise
    from bench.federation.lone_round import LoneNoise, noised_update

    rng = np.random.default_rng(0)
    update = {"a": rng.normal(0, 1, 50_000), "b": rng.normal(0, 1, 50_000)}  # norm ~316, clipped to 0.5
    layout = MaskLayout(["a", "b"], [(50_000,), (50_000,)], Quantiser(1.0, 1.0), clip_norm=0.5)
    clipped = np.concatenate([update["a"], update["b"]]) * 0.5 / np.sqrt(sum((v**2).sum() for v in update.values()))

    def sent(seed):
        return noised_update(0, update, dataclasses.replace(layout, lone=LoneNoise(0.8 * 0.5, seed))).vector

    def seed_holders_guess(upload):
        generator = torch.Generator().manual_seed(11)
        noise = [dp_noise.gaussian(0.4, (50_000,), generator, False, torch.float64).numpy() for _ in range(2)]
        return upload - np.concatenate(noise)

    error = sent(11) - clipped
    assert np.std(error) == pytest.approx(0.4, rel=0.02) and abs(np.mean(error)) < 0.01
    assert np.corrcoef(error, clipped)[0, 1] == pytest.approx(0, abs=0.02)  # noise, not a rescaled update
    assert np.abs(seed_holders_guess(sent(11)) - clipped).max() < 1e-6  # seeded: the update, at the clip's scale
    assert np.std(seed_holders_guess(sent(None)) - clipped) > 0.5  # secure: the seed's noise and fresh noise both
    assert np.array_equal(sent(11), sent(11)) and not np.array_equal(sent(None), sent(None))
    update["b"][3] = np.inf
    assert isinstance(noised_update(0, update, dataclasses.replace(layout, lone=LoneNoise(0.4, 11))), Refused)


def test_a_clip_below_one_leaves_the_held_slots_and_the_mean_exact():
    """--secagg-clip 0.25 clipped the 0/1 'trains this tensor' slots to 0.25 too, so the recovered
    weight was a quarter and the mean four times too large (0.04 for 0.01)."""
    updates = {c: np.full(DIM, 0.01) for c in range(4)}
    weights = {c: 50.0 for c in range(4)}
    quantiser = Quantiser(clip=0.25, total_weight=200.0)
    total, weight, _ = secure_sum(updates, weights, quantiser, round_=0, seed=2, degree=3)
    assert weight == pytest.approx(200.0, abs=1e-6)
    assert np.allclose(total / weight, 0.01, atol=1e-6)


def test_a_non_finite_update_is_refused_on_the_client_and_the_round_goes_on():
    """A NaN cast to fixed point was counted with its full weight; now the client refuses before
    masking, and the sum is the other clients' (its masks are removed as a dropped client's)."""
    rng = np.random.default_rng(3)
    updates = {c: rng.normal(0, 0.05, DIM) for c in range(5)}
    updates[2][7] = np.nan
    quantiser = Quantiser(clip=1.0, total_weight=5.0)
    server = SecureRound(list(range(5)), 0, 4, quantiser, ["v"], [(DIM,)], 4, 3)
    clients = ClientParties()
    key_exchange(server, clients)
    sent = [
        clients.kit(c, MaskLayout(["v"], [(DIM,)], quantiser)).mask_update({"v": updates[c]}, 1.0) for c in range(5)
    ]
    assert isinstance(sent[2], Refused) and all(not isinstance(s, Refused) for i, s in enumerate(sent) if i != 2)
    sums, weights, _ = unmask(server, clients, sent)
    plain = sum(updates[c] for c in range(5) if c != 2)
    assert weights["v"] == pytest.approx(4.0, abs=1e-6)
    assert np.max(np.abs(sums["v"] - plain)) <= 4 * 0.5 / quantiser.scale


def _masked_round(holdings=None, n=6, dim=8):
    quantiser = Quantiser(clip=1.0, total_weight=float(n))
    server = SecureRound(list(range(n)), 0, 0, quantiser, ["a", "b"], [(dim,), (dim,)], n - 1, 3, None, holdings)
    clients = ClientParties()
    key_exchange(server, clients)
    layout = MaskLayout(["a", "b"], [(dim,), (dim,)], quantiser)
    own = holdings or {c: {"a", "b"} for c in range(n)}
    sent = [clients.kit(c, layout).mask_update({t: np.full(dim, 0.01 * c) for t in own[c]}, 1.0) for c in range(n)]
    return server, clients, sent


def test_a_tensor_left_with_one_holder_after_dropouts_fails_the_round_before_any_request():
    """Tensor b is trained by clients 0-2 only; 1 and 2 drop after masking: b's 'sum' would be
    client 0's update, so the round fails before the server asks anyone for shares."""
    holdings = {c: frozenset({"a", "b"} if c < 3 else {"a"}) for c in range(6)}
    server, clients, sent = _masked_round(holdings)
    with pytest.raises(SecAggFailure, match="holders: 1 tensors summed over fewer than 3"):
        unmask(server, clients, [m for m in sent if m.client not in (1, 2)])
    assert server.fewest_holders is None and all(p._answered is None for p in clients.parties.values())
    server, clients, sent = _masked_round(holdings)  # nobody drops: b is summed over its 3 holders
    assert unmask(server, clients, sent)[2]["secagg_min_holders"] == 3


def test_a_client_answers_one_request_naming_it_a_survivor_and_enough_survivors():
    """A server that asked twice (survivor once, dropped once) would rebuild both of a client's
    secrets; the threshold is the one the client shared with, not one the request brings."""
    import json

    server, clients, sent = _masked_round()
    party = clients.parties[0]
    honest = json.dumps({"survivors": [0, 1, 2, 3, 4, 5], "dropped": []}).encode()
    party.answer(honest)
    assert party.answer(honest)  # the same request again: the same answer
    with pytest.raises(ValueError, match="refused"):  # a second, different request
        party.answer(json.dumps({"survivors": [0, 1, 2, 4, 5], "dropped": [3]}).encode())
    fresh = _masked_round()[1].parties[0]
    for request in (
        {"survivors": [1, 2, 3, 4, 5], "dropped": [0]},  # does not name it a survivor
        {"survivors": [0, 1], "dropped": [2, 3, 4, 5]},  # fewer survivors than its threshold, 3
        {"survivors": [0, 1, 2, 3, 4, 5], "dropped": [3]},  # one client both ways (and nobody unaccounted for)
        {"survivors": [0, 1, 900, 901], "dropped": [2, 3, 4, 5]},  # clients that do not exist
        {"survivors": [0, 1, 2, 3], "dropped": [4]},  # a neighbour (5) left unaccounted for
    ):
        with pytest.raises(ValueError, match="refused"):
            fresh.answer(json.dumps(request).encode())


def test_a_refusal_is_in_the_transcript(tmp_path):
    from bench.federation.secagg_transcript import read_transcript

    quantiser = Quantiser(clip=1.0, total_weight=4.0)
    server = SecureRound(list(range(4)), 0, 0, quantiser, ["v"], [(8,)], 3, 2, str(tmp_path / "t.jsonl"))
    clients = ClientParties()
    key_exchange(server, clients)
    layout = MaskLayout(["v"], [(8,)], quantiser)
    sent = [clients.kit(c, layout).mask_update({"v": np.full(8, np.nan if c == 2 else 0.1)}, 1.0) for c in range(4)]
    unmask(server, clients, sent)
    vectors = {m["sender"]: m["payload"] for m in read_transcript(tmp_path / "t.jsonl") if m["kind"] == "masked_vector"}
    assert set(vectors) == {0, 1, 2, 3} and vectors[2] == b"" and all(len(vectors[c]) == 9 * 4 for c in (0, 1, 3))


def test_a_client_whose_worker_died_before_advertising_is_out_of_the_round():
    """Its keys never reach the server: the others mask without it and the sum is theirs."""

    class Losing(ClientParties):
        def secagg(self, name, round_, per_client):
            out = super().secagg(name, round_, per_client)
            return {c: v for c, v in out.items() if c != 2} if name == "advertise" else out

    quantiser = Quantiser(clip=1.0, total_weight=5.0)
    server = SecureRound(list(range(5)), 0, 0, quantiser, ["v"], [(DIM,)], 4, 2)
    clients = Losing()
    key_exchange(server, clients)
    layout = MaskLayout(["v"], [(DIM,)], quantiser)
    sent = [clients.kit(c, layout).mask_update({"v": np.full(DIM, 0.01 * c)}, 1.0) for c in range(5)]
    sums, weights, _ = unmask(server, clients, sent)  # client 2's stray vector is not summed
    assert 2 not in server.graph and weights["v"] == pytest.approx(4.0, abs=1e-6)
    assert np.allclose(sums["v"], 0.01 * (0 + 1 + 3 + 4), atol=1e-6)


def test_a_refusal_in_a_run_reaches_the_transcript(tiny_corpus, tmp_path, monkeypatch):
    """In the engine, not only in unit tests: the round's screen names the refusal, the server
    still receives it (an empty masked_vector), and the round goes on with the others."""
    import json

    from bench.engine.server import run_experiment
    from bench.federation.secagg_client import ClientKit
    from bench.federation.secagg_transcript import read_transcript

    real = ClientKit.mask_update

    def refusing(self, update, weight, plain_bytes=0):
        return Refused(self.client, "scripted") if self.client == 1 else real(self, update, weight, plain_bytes)

    monkeypatch.setattr(ClientKit, "mask_update", refusing)
    cfg = tiny_config(tiny_corpus, clients=4, secagg="on", secagg_transcript=str(tmp_path / "t.jsonl"))
    run_experiment(cfg, tmp_path / "run", progress=False)
    line = json.loads((tmp_path / "run/rounds.jsonl").read_text())
    vectors = {m["sender"]: m["payload"] for m in read_transcript(tmp_path / "t.jsonl") if m["kind"] == "masked_vector"}
    assert line["rejected"] == {"1": "scripted"} and "secagg_failed" not in line
    assert vectors[1] == b"" and len(vectors) == 4


def test_auto_layers_refused_under_secure_aggregation(tiny_corpus, tmp_path):
    """auto:K's probe reads each client's per-block gradient norms in the clear: a per-client
    vector secure aggregation exists to hide."""
    from bench.engine.server import run_experiment
    from bench.errors import BenchError

    cfg = tiny_config(tiny_corpus, method="layerskip", layers="auto:1", clients=3, backend="serial", secagg="on")
    with pytest.raises(BenchError, match="cannot run under secure aggregation"):
        run_experiment(cfg, tmp_path, progress=False)


def test_what_a_secure_run_stores_holds_no_per_client_value(tiny_corpus, tmp_path):
    """Everything a secure run writes, as a reader of the stored run (or the server) sees it: the
    round lines name clients only by id (who was sampled, dropped, late, lost or rejected), every
    number in them is a round total or a mean over at least 2 clients, the checkpoint holds the
    global state alone, never a client's update or residual, and final.json's only per-client
    field is the shared model's held-out score."""
    import json

    import torch

    from bench.engine.server import run_experiment

    cfg = tiny_config(tiny_corpus, clients=3, rounds=2, backend="serial", secagg="on", train_subsample=60)
    run_experiment(cfg, tmp_path, progress=False)
    ids_only = {"clients", "dropped", "stragglers", "lost", "rejected"}
    for line in map(json.loads, (tmp_path / "rounds.jsonl").read_text().splitlines()):
        assert len(line["clients"]) >= 2
        for key, value in line.items():
            if key in ids_only:
                assert all(isinstance(c, int) for c in value) if isinstance(value, list) else isinstance(value, dict)
            else:  # a round total or mean: a scalar, never a per-client list or mapping
                assert value is None or isinstance(value, (int, float, str, bool)), key
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert set(checkpoint["states"]) == {"global"} and not checkpoint.get("residuals")
    final = json.loads((tmp_path / "final.json").read_text())
    per_client = [
        k
        for k, v in final.items()
        if (isinstance(v, dict) and set(map(str, range(3))) <= set(v)) or (isinstance(v, list) and len(v) == 3)
    ]
    # the one per-client field: the final global model's score on each client's held-out slice
    # (an evaluation of the shared model, no update; the README lists it with the clear metadata)
    assert per_client == ["per_client"], per_client


@pytest.mark.parametrize("compress", ["int8", "topk:0.1"])
def test_secure_aggregation_with_a_compressed_upload_is_refused(compress):
    """Masks are added to the quantised full vector: a compressed (quantised or sparse) upload
    would be masked as something else, or leak which coordinates it holds."""
    from bench.config import ExperimentConfig
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="secagg quantises uploads itself: use it with --compress none"):
        ExperimentConfig(task="conll", method="fedavg", secagg="on", compress=compress)
    assert ExperimentConfig(task="conll", method="fedavg", secagg="on").compress == "none"
