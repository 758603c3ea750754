"""Compressed uploads: exact payload bytes, bounded error, and error feedback that un-stalls top-k."""

import pytest
import torch

from bench.engine.server import run_experiment
from bench.errors import BenchError
from bench.federation.aggregate import weighted_average
from bench.federation.compress import Int8, TopK, codec_for, payload_bytes, restore_state
from tests.tiny import tiny_config


def _run(tiny_corpus, out, compress):
    cfg = tiny_config(tiny_corpus, method="layerskip", layers="top:1", rounds=2, compress=compress)
    return run_experiment(cfg, out, progress=False)


def test_int8_and_fp16_uploads_count_their_real_payload(tiny_corpus, tmp_path):
    plain = _run(tiny_corpus, tmp_path / "plain", "none")
    int8 = _run(tiny_corpus, tmp_path / "int8", "int8")
    half = _run(tiny_corpus, tmp_path / "fp16", "fp16")
    sent = plain["trainable_params"]  # layerskip: the trained block and the head, nothing else
    tensors = 16 + 2  # a BERT block's parameter tensors, and the classifier's weight and bias
    uploads = 2 * 2  # clients x rounds
    assert plain["bytes_up_total"] == uploads * 4 * sent
    assert int8["bytes_up_total"] == uploads * (sent + 4 * tensors)  # one byte a value, one fp32 scale a tensor
    assert half["bytes_up_total"] == uploads * 2 * sent
    assert int8["bytes_down_total"] == plain["bytes_down_total"]  # downloads are not compressed
    assert 0.24 < int8["bytes_up_total"] / plain["bytes_up_total"] < 0.26


@pytest.mark.parametrize("spec, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_uploads_travel_two_bytes_a_value_in_their_format(spec, dtype):
    x = torch.randn(1000) * 3
    packed, _ = codec_for(spec).encode({"w": x}, None)
    assert packed["w"].values.dtype == dtype and payload_bytes(packed) == 2 * 1000
    assert torch.equal(packed["w"].restore(), x.to(dtype).float())  # the value rounded once, nothing else


def test_int8_error_is_within_half_a_step():
    x = torch.randn(1000) * 3
    packed = Int8().pack(x)
    assert (packed.restore() - x).abs().max() <= packed.scale / 2 + 1e-6


def test_topk_payload_and_restore():
    start = {"w": torch.zeros(10)}
    update = {"w": torch.tensor([0.0, 5, -7, 0.1, 0, 0, 0, 0, 0, 1])}
    payload, kept = TopK(0.2).encode(update, None)
    assert payload_bytes(payload) == 2 * (4 + 4)  # two fp32 values and two int32 indices
    assert torch.equal(restore_state(payload, start)["w"], torch.tensor([0.0, 5, -7, 0, 0, 0, 0, 0, 0, 0]))
    assert torch.allclose(kept["w"], torch.tensor([0.0, 0, 0, 0.1, 0, 0, 0, 0, 0, 1]))


def _federated_topk(feedback: bool, rounds: int = 80) -> torch.Tensor:
    """Two clients on a 2-parameter least-squares model whose largest update entries cancel:
    client A pulls w[0] to +10, client B to -10, both pull w[1] to 1. Top-1 without error
    feedback sends only the cancelling entry, so w[1] never moves."""
    targets = [torch.tensor([10.0, 1.0]), torch.tensor([-10.0, 1.0])]
    codec, w = TopK(0.5), torch.zeros(2)
    kept = [None, None]
    for _ in range(rounds):
        updates = []
        for i, target in enumerate(targets):
            local = w + 0.1 * (target - w)  # a local step of gradient descent
            payload, left = codec.encode({"w": local - w}, kept[i] if feedback else None)
            kept[i] = left
            updates.append((1, restore_state(payload, {"w": w})))
        w = weighted_average(updates)["w"]
    return w


def test_topk_with_error_feedback_converges_where_without_it_stalls():
    assert abs(float(_federated_topk(feedback=False)[1])) < 1e-6  # stalled at its start
    assert abs(float(_federated_topk(feedback=True)[1]) - 1.0) < 0.05


def test_bad_compress_spec_is_named():
    for bad in ("int4", "topk:0", "topk:x"):
        with pytest.raises(BenchError, match="compress|compression"):
            codec_for(bad)
