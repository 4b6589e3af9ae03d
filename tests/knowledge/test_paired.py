"""Paired evidence against the default (`knowledge.metalearner.paired`) and the anchor of the pick
(`knowledge.recommend.anchor`): who moves below the default, who stays, and what the note says."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knowledge.metafeatures import from_traits
from knowledge.metalearner.paired import MIN_DATASETS, paired
from knowledge.recommend.anchor import anchor, judged
from knowledge.search_space import TrainConfig, is_default

DEFAULT = TrainConfig(model="resnet18", pretrained=False)
FAST = TrainConfig(model="resnet18", pretrained=False, resolution=48, optimizer="adam", lr=7e-3,
                   batch_size=128, epochs=4, augmentation="none")
TUNED = TrainConfig(model="efficientnet_lite0", pretrained=True, resolution=48, lr=8e-3, epochs=8,
                    augmentation="none")
LONE = TrainConfig(model="mobilenetv3_small_100", pretrained=False, epochs=3)


def _row(cfg: TrainConfig, dataset: str, acc: float, n: int) -> dict[str, Any]:
    return {"dataset_id": dataset, "base_dataset": dataset.split("?")[0], "status": "ok",
            "prov.source": "own", "out.test_acc": acc, "mf.n_instances": n, "mf.n_classes": 2,
            "mf.modality": "x-ray", **{f"cfg.{k}": v for k, v in cfg.model_dump().items()}}


def _evidence(rows: list[dict[str, Any]]):
    from knowledge.metalearner.support import Evidence

    return Evidence.from_frame(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def evidence():
    """Six datasets of growing size with the default; FAST wins on the two largest only (by a lot)
    and loses elsewhere; TUNED wins by 2-4 points everywhere; LONE never ran beside the default."""
    rows = []
    for i, n in enumerate([200, 500, 1000, 2000, 5000, 10000]):
        d = f"set{i}"
        rows += [_row(DEFAULT, d, 0.80, n), _row(TUNED, d, 0.82 + 0.004 * i, n),
                 _row(FAST, d, 0.90 if i >= 4 else 0.76, n)]
    rows += [_row(DEFAULT, "set0", 0.78, 200)]  # a second seed of the default: averaged (0.79)
    rows += [_row(LONE, "other", 0.99, 300)]
    return _evidence(rows)


def test_is_default_takes_the_space_default_pretrained_or_not() -> None:
    assert is_default(DEFAULT) and is_default(TrainConfig(model="resnet18"))
    assert not is_default(DEFAULT.model_copy(update={"epochs": 9}))
    assert not is_default(TrainConfig(model="efficientnet_lite0"))


def test_paired_uses_the_datasets_run_both_ways_most_similar_first(evidence) -> None:
    meta = from_traits(n_instances=9000, n_classes=2, modality="x-ray")
    found = paired(evidence, FAST, DEFAULT, meta, k=3)
    assert [d for d, _ in found.deltas] == ["set5", "set4", "set3"]  # by size, closest first
    assert found.deltas[0][1] == pytest.approx(0.10) and found.deltas[2][1] == pytest.approx(-0.04)
    every = paired(evidence, TUNED, DEFAULT, meta, k=10)
    assert every.n == 6 and every.wins == 6
    assert dict(every.deltas)["set0"] == pytest.approx(0.82 - 0.79)  # the default's two runs averaged
    assert paired(evidence, LONE, DEFAULT, meta).n == 0
    assert paired(evidence, LONE, DEFAULT, meta).text() == "never run both ways on the same dataset"


def test_a_gain_is_shown_only_beyond_a_standard_error_on_enough_datasets(evidence) -> None:
    small = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    large = from_traits(n_instances=9000, n_classes=2, modality="x-ray")
    assert paired(evidence, TUNED, DEFAULT, small).shows_gain
    mixed = paired(evidence, FAST, DEFAULT, small)  # loses on the 4 small sets, wins on 2 large
    assert mixed.n == 6 and mixed.wins == 2 and not mixed.shows_gain and mixed.lower < 0
    two = paired(evidence, FAST, DEFAULT, large, k=2)  # two big wins: too few datasets to count
    assert two.mean > 0 and two.n < MIN_DATASETS and not two.shows_gain
    text = paired(evidence, TUNED, DEFAULT, small).text()
    assert text.startswith("on the 6 most similar recorded datasets run both ways: +") \
        and "better on 6 of 6" in text and "s.e." in text


def _scored(configs: list[TrainConfig], order: list[int]) -> SimpleNamespace:
    return SimpleNamespace(candidates=configs, order=np.asarray(order, dtype=int))


def test_a_pick_shown_no_better_than_the_default_moves_below_it(evidence) -> None:
    meta = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    configs = [DEFAULT, FAST, LONE]
    order, notes = anchor(_scored(configs, [1, 0, 2]), evidence, meta)
    assert order.tolist() == [0, 1, 2]
    assert len(notes) == 1 and "do not show it better than the search space's default" in notes[0]
    assert "ResNet-18, from scratch, end_to_end, 48 px" in notes[0] and "better on 2 of 6" in notes[0]
    # a config never run beside the default keeps its place above it: the records cannot tell
    order, notes = anchor(_scored(configs, [2, 1, 0]), evidence, meta)
    assert order.tolist() == [2, 0, 1] and notes == []


def test_a_config_worse_on_two_datasets_moves_below_the_default() -> None:
    # too few datasets to show it no better, but worse on both by far more than their spread
    probe = TrainConfig(model="resnet18", pretrained=True, scheme="linear_probing", lr=1e-4, epochs=100)
    rows = [_row(DEFAULT, "a", 0.85, 1000), _row(DEFAULT, "b", 0.80, 3000),
            _row(probe, "a", 0.70, 1000), _row(probe, "b", 0.70, 3000),
            _row(DEFAULT, "c", 0.80, 2000), _row(LONE, "c", 0.60, 2000)]  # LONE: one dataset only
    evidence = _evidence(rows)
    meta = from_traits(n_instances=50000, n_classes=2, modality="x-ray")
    found = paired(evidence, probe, DEFAULT, meta)
    assert found.n == 2 < MIN_DATASETS and found.shows_loss and not found.shows_gain
    assert not paired(evidence, LONE, DEFAULT, meta).shows_loss  # one dataset: no spread to judge
    cut = probe.model_copy(update={"epochs": 34})  # judged by its recorded 100-epoch schedule
    order, notes = anchor(_scored([DEFAULT, cut, LONE], [1, 2, 0]), evidence, meta)
    assert order.tolist() == [2, 0, 1]  # LONE keeps its place; the probe moves below the default
    assert len(notes) == 1 and "but the records show it (its recorded 100-epoch schedule) worse " \
        "than the search space's default" in notes[0] and "-12.5 points" in notes[0]
    assert "The next-ranked config" in notes[0]
    # a mixed pair is no evidence either way
    mixed = _evidence([_row(DEFAULT, "a", 0.85, 1000), _row(DEFAULT, "b", 0.80, 3000),
                       _row(probe, "a", 0.70, 1000), _row(probe, "b", 0.90, 3000)])
    assert not paired(mixed, probe, DEFAULT, meta).shows_loss


def test_a_pick_shown_better_stays_and_says_so(evidence) -> None:
    meta = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    order, notes = anchor(_scored([DEFAULT, TUNED, FAST], [1, 2, 0]), evidence, meta)
    assert order.tolist() == [1, 0, 2]  # TUNED stays first, FAST moves below the default
    assert len(notes) == 1 and notes[0].startswith("Against the search space's default") \
        and "did better on the 6 most similar" in notes[0]


def test_without_the_default_in_the_budget_nothing_moves(evidence) -> None:
    meta = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    order, notes = anchor(_scored([FAST, TUNED], [0, 1]), evidence, meta)
    assert order.tolist() == [0, 1] and notes == []
    order, notes = anchor(_scored([DEFAULT, FAST], [0, 1]), evidence, meta)  # default already first
    assert order.tolist() == [0, 1] and notes == []


def test_a_cut_schedule_is_judged_by_its_recorded_longer_one(evidence) -> None:
    meta = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    cut = TUNED.model_copy(update={"epochs": 4})
    found = judged(evidence, cut, DEFAULT, meta)
    assert found.challenger == TUNED and found.n == 6
    order, notes = anchor(_scored([DEFAULT, cut], [1, 0]), evidence, meta)
    assert order.tolist() == [1, 0] and "(its recorded 8-epoch schedule) did better" in notes[0]
    # more than 3x shorter: not backed by that schedule, so nothing to judge it by
    assert judged(evidence, TUNED.model_copy(update={"epochs": 2}), DEFAULT, meta).n == 0


def test_a_too_slow_config_is_cut_to_the_most_epochs_that_fit(evidence) -> None:
    from knowledge.metalearner.budget import Budget
    from knowledge.recommend.algorithm import _cut_to_fit

    budget = Budget(device="cpu", max_seconds=148.8)
    # predicted 5 % over the limit: 9 of its 10 epochs fit (not the half: `Evidence.shortened`)
    assert _cut_to_fit(evidence, [(DEFAULT, 157.0)], budget) == [DEFAULT.model_copy(update={"epochs": 9})]
    # fewer than a third of the epochs would fit: its runs no longer back that
    assert _cut_to_fit(evidence, [(DEFAULT, 400.0)], budget) == []  # 3 of 10 epochs would fit
    assert _cut_to_fit(evidence, [(DEFAULT, 300.0)], budget) == [DEFAULT.model_copy(update={"epochs": 4})]
    assert _cut_to_fit(evidence, [(DEFAULT, float("inf"))], budget) == []  # no time predicted
    assert _cut_to_fit(evidence, [(DEFAULT, 157.0)], Budget(device="cpu")) == []  # no limit


def test_recommend_puts_the_default_first_when_the_records_show_the_top_config_no_better() -> None:
    """The production path: a pretrained config the meta-learner ranks first (the synthetic signal
    favours pretrained weights) that did no better than the default where both ran moves below it."""
    import copy

    from knowledge.recommend import recommend
    from knowledge.retrieval import HashingEmbedder, RunIndex
    from tests.knowledge.recommend_fixtures import fitted_learner
    from tests.knowledge.synthetic_runs import synthetic_records

    challenger = TrainConfig(model="efficientnet_lite0", pretrained=True, resolution=64, epochs=10)
    rows = []
    for i, (n, delta) in enumerate([(400, -0.01), (900, 0.01), (1500, -0.02), (3000, 0.0)]):
        rows += [_row(DEFAULT, f"s{i}", 0.80, n), _row(challenger, f"s{i}", 0.80 + delta, n)]
    learner = copy.copy(fitted_learner())
    learner.support = _evidence(rows)
    index = RunIndex.build(synthetic_records(per_dataset=12), HashingEmbedder(256), embed_text=False)
    meta = from_traits(n_instances=1000, n_classes=2, modality="x-ray")
    rec = recommend(meta, learner=learner, index=index, budget="CPU only")
    assert rec.best.config == DEFAULT and rec.evidence_tier == "recorded"
    assert any("do not show it better than the search space's default" in n and "better on 1 of 4" in n
               for n in rec.notes)
    assert rec.top[1].config == challenger and rec.top[1].rank == 2
    assert rec.top[1].predicted_acc > rec.best.predicted_acc  # the forecast alone favoured it
    # where it did better on every dataset, it stays first and the card says by how much
    rows = [r for i, (n, delta) in enumerate([(400, 0.04), (900, 0.05), (1500, 0.03), (3000, 0.06)])
            for r in (_row(DEFAULT, f"s{i}", 0.80, n), _row(challenger, f"s{i}", 0.80 + delta, n))]
    learner.support = _evidence(rows)
    rec = recommend(meta, learner=learner, index=index, budget="CPU only")
    assert rec.best.config == challenger
    assert any(n.startswith("Against the search space's default") and "better on 4 of 4" in n
               for n in rec.notes)


def test_when_the_first_choice_moves_below_the_default_the_note_names_it(evidence) -> None:
    meta = from_traits(n_instances=300, n_classes=2, modality="x-ray")
    # FAST (shown no better) first, LONE (never beside the default) second: LONE becomes the pick
    order, notes = anchor(_scored([DEFAULT, FAST, LONE], [1, 2, 0]), evidence, meta)
    assert order.tolist() == [2, 0, 1]
    assert len(notes) == 1 and "ranked ResNet-18, from scratch, end_to_end, 48 px" in notes[0]
    assert "The next-ranked config" in notes[0] and "The default fits" not in notes[0]
    # FAST first, TUNED (shown better) second: TUNED is the pick, and both notes are given
    order, notes = anchor(_scored([DEFAULT, FAST, TUNED], [1, 2, 0]), evidence, meta)
    assert order.tolist() == [2, 0, 1] and len(notes) == 2
    assert notes[1].startswith("Against the search space's default") and "better on 6 of 6" in notes[1]
