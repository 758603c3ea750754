"""`val_subsample`: a fixed, class-stratified subset of validation for model selection (the
MedQuAD study validates 1,595 answers each round otherwise); test stays whole, and a run without
it keeps its identity."""

from __future__ import annotations

from collections import Counter

from bench.config import ExperimentConfig
from bench.data.types import ClsExample, NerExample
from bench.engine.prepare import prepare_task, stratified_subsample

SIZES = {"information": 500, "symptoms": 300, "treatment": 150, "stages": 40, "complications": 10}


def _examples() -> list[ClsExample]:
    return [
        ClsExample(f"answer {label} {i}", (label,), "site", f"doc{i % 97}")
        for label, size in SIZES.items()
        for i in range(size)
    ]


def test_each_class_keeps_its_share_within_one_and_a_rare_one_is_not_lost():
    examples = _examples()
    kept = stratified_subsample(examples, 100)
    counts = Counter(ex.labels[0] for ex in kept)
    assert len(kept) == 100 and len({id(ex) for ex in kept}) == 100
    for label, size in SIZES.items():
        assert abs(counts[label] - size * 100 / len(examples)) <= 1, (label, counts)
    assert counts["complications"] >= 1  # 10 examples where N/n is 10


def test_the_subset_is_fixed_in_order_and_a_large_n_keeps_everything():
    examples = _examples()
    first, again = stratified_subsample(examples, 100), stratified_subsample(list(examples), 100)
    assert first == again  # the same for every seed and method: part of the setting
    positions = [examples.index(ex) for ex in first]
    assert positions == sorted(positions)  # the release's order, so batches are formed alike
    assert stratified_subsample(examples, None) is examples
    assert stratified_subsample(examples, len(examples)) is examples


def test_ner_sentences_are_taken_at_random_without_repeats():
    sentences = [NerExample((f"w{i}",), ("O",), "s", f"d{i}") for i in range(200)]
    kept = stratified_subsample(sentences, 30)
    assert len({ex.doc_id for ex in kept}) == 30
    assert kept != sentences[:30]  # not simply the first ones


def test_a_run_validates_the_subset_and_tests_the_whole_split(tiny_corpus):
    base = ExperimentConfig(
        task="mimic-mortality", method="fedavg", model="tiny-bert", clients=2, data_dir=str(tiny_corpus / "mimic-iii")
    )
    whole, cut = prepare_task(base), prepare_task(base.with_settings(val_subsample=7))
    assert len(cut.validation.gold) == 7 < len(whole.validation.gold)
    assert len(cut.test.gold) == len(whole.test.gold) and len(cut.train.gold) == len(whole.train.gold)
    assert cut.encoding["validation"]["examples"] == 7
    assert base.with_settings(val_subsample=7).run_id != base.run_id
    assert "val_subsample" not in base.identity_settings()  # runs stored before it keep their folders


def test_the_plan_prices_only_the_validation_it_scores(tiny_corpus):
    from bench.protocol.plan import cell_cost

    base = ExperimentConfig(
        task="mimic-mortality", method="fedavg", model="tiny-bert", data_dir=str(tiny_corpus / "mimic-iii")
    )
    whole, cut = cell_cost(base), cell_cost(base.with_settings(val_subsample=3))
    assert cut.round_flops < whole.round_flops
    assert cell_cost(base.with_settings(val_subsample=10**6)).round_flops == whole.round_flops
