"""`val_subsample`: a fixed subset of validation for model selection (the MedQuAD study scores
1,595 answers each round otherwise): rare classes whole, large ones capped, each example weighted
by its class's size over its kept count so weighted scores aim at the whole split's; test stays
whole, and a run without it keeps its identity."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bench.config import ExperimentConfig
from bench.data.types import ClsExample, NerExample
from bench.engine.prepare import prepare_task
from bench.engine.subsample import class_quotas, validation_subsample
from bench.metrics import cls_scores

SIZES = {"information": 500, "symptoms": 300, "treatment": 150, "stages": 40, "complications": 10}


def _examples() -> list[ClsExample]:
    return [
        ClsExample(f"answer {label} {i}", (label,), "site", f"doc{i % 97}")
        for label, size in SIZES.items()
        for i in range(size)
    ]


def test_rare_classes_stay_whole_and_large_ones_share_the_rest():
    kept, weights = validation_subsample(_examples(), 100)
    counts = Counter(ex.labels[0] for ex in kept)
    assert len(kept) == 100 and len({id(ex) for ex in kept}) == 100
    assert counts == {"complications": 10, "information": 23, "symptoms": 23, "treatment": 22, "stages": 22}
    for ex, w in zip(kept, weights):
        assert w == pytest.approx(SIZES[ex.labels[0]] / counts[ex.labels[0]])
    assert class_quotas([5, 3, 1], 9) == [5, 3, 1] and class_quotas([9, 9], 3) == [2, 1]
    assert sum(class_quotas([4, 4, 4], 2)) == 2  # fewer than the classes: the largest first, n in all


def test_weighted_scores_of_the_subset_equal_the_whole_splits_where_errors_follow_the_class():
    """A model whose answer depends only on the true class: the weighted confusion counts of any
    class-stratified subset are the whole split's, so macro-F1 is too; unweighted it is not."""
    examples = _examples()
    names = list(SIZES)
    answer = {0: 0, 1: 1, 2: 0, 3: 4, 4: 4}  # treatment read as information, stages as complications
    gold_all = np.array([names.index(ex.labels[0]) for ex in examples])
    kept, weights = validation_subsample(examples, 100)
    gold = np.array([names.index(ex.labels[0]) for ex in kept])

    def probs(g):
        return np.eye(len(names))[[answer[int(x)] for x in g]]

    whole = cls_scores(gold_all, probs(gold_all))["metric"]
    assert cls_scores(gold, probs(gold), weights)["metric"] == pytest.approx(whole)
    assert abs(cls_scores(gold, probs(gold))["metric"] - whole) > 0.01


def test_the_subset_is_fixed_in_order_and_a_large_n_keeps_everything():
    examples = _examples()
    first, again = validation_subsample(examples, 100), validation_subsample(list(examples), 100)
    assert first[0] == again[0] and list(first[1]) == list(again[1])  # part of the setting
    positions = [examples.index(ex) for ex in first[0]]
    assert positions == sorted(positions)  # the release's order, so batches are formed alike
    assert validation_subsample(examples, None) == (examples, None)
    assert validation_subsample(examples, len(examples)) == (examples, None)


def test_ner_sentences_are_one_class_taken_at_random_with_equal_weights():
    sentences = [NerExample((f"w{i}",), ("O",), "s", f"d{i}") for i in range(200)]
    kept, weights = validation_subsample(sentences, 30)
    assert len({ex.doc_id for ex in kept}) == 30 and set(weights) == {200 / 30}
    assert kept != sentences[:30]  # not simply the first ones


def test_a_run_validates_the_weighted_subset_and_tests_the_whole_split(tiny_corpus):
    base = ExperimentConfig(
        task="mimic-mortality", method="fedavg", model="tiny-bert", clients=2, data_dir=str(tiny_corpus / "mimic-iii")
    )
    whole, cut = prepare_task(base), prepare_task(base.with_settings(val_subsample=7))
    assert len(cut.validation.gold) == 7 < len(whole.validation.gold)
    assert cut.validation.weights.sum() == pytest.approx(len(whole.validation.gold))
    assert whole.validation.weights is None and cut.test.weights is None
    assert cut.in_memory().validation.weights is cut.validation.weights  # Ray's copy keeps them
    assert len(cut.test.gold) == len(whole.test.gold) and len(cut.train.gold) == len(whole.train.gold)
    assert cut.encoding["validation"]["examples"] == 7
    from bench.engine.scoring import all_examples, score_predictions

    examples = all_examples(cut, "validation", None)
    answers = {row: np.array([0.9, 0.1]) for e in examples for row in cut.validation.chunks[e]}  # always class 0
    gold = np.array(cut.validation.gold)
    scored = score_predictions(cut, "validation", examples, answers)["accuracy"]
    assert scored == pytest.approx(np.average(gold == 0, weights=cut.validation.weights))  # weighted, as scored
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
