"""The support rule, evidence-bounded candidates, and the answer when no supported config fits."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knowledge.metafeatures import from_traits
from knowledge.metalearner.budget import parse_budget
from knowledge.metalearner.candidates import evidence_candidates
from knowledge.metalearner.support import Evidence, Support, recommendable
from knowledge.search_space import PUBLISHED_PROTOCOL, TrainConfig, is_published_protocol

OWN = dict(model="resnet18", pretrained=False, scheme="end_to_end", resolution=32, optimizer="adamw",
           lr=1e-3, weight_decay=0.0, batch_size=64, epochs=6, augmentation="none",
           label_smoothing=0.0)
PUBLISHED = dict(model="vgg16", pretrained=True, scheme="end_to_end", resolution=224,
                 **PUBLISHED_PROTOCOL)


def _row(cfg: dict[str, Any], dataset: str, acc: float, source: str = "own", n: int = 1000,
         classes: int = 2, modality: str = "x-ray", status: str = "ok") -> dict[str, Any]:
    return {"dataset_id": dataset, "base_dataset": dataset.split("?")[0], "status": status,
            "prov.source": source, "out.test_acc": acc, "mf.n_instances": n, "mf.n_classes": classes,
            "mf.modality": modality, **{f"cfg.{k}": v for k, v in cfg.items()}}


def _frame() -> pd.DataFrame:
    rows = [_row(OWN, f"own{i}", 0.7 + 0.01 * i, n=300 * (i + 1)) for i in range(4)]
    rows += [_row(PUBLISHED, f"pub{i}", 0.9, source="published",
                  modality="ultrasound" if i == 2 else "x-ray", n=500 if i == 2 else 5000)
             for i in range(3)]
    rows.append(_row(dict(OWN, lr=3e-2, epochs=2), "own0", 0.5))  # recorded once: not a portfolio config
    rows.append(_row(dict(OWN, model="mobilenetv3_small_100", pretrained=False,
                          scheme="linear_probing"), "own0", 0.3))
    rows += [_row(dict(OWN, model="mobilenetv3_small_100", scheme="linear_probing"), f"own{i}", 0.3)
             for i in range(1, 4)]  # linear probing of random weights, on 4 datasets
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return Evidence.from_frame(_frame())


def test_support_rule(evidence: Evidence) -> None:
    exact = evidence.support(TrainConfig(**OWN))
    assert exact.supported and exact.n_runs == 4 and exact.n_datasets == 4 and exact.n_exact == 4
    assert exact.sources == {"own": 4}
    # lr and epochs within 3x of recorded runs: still backed by them (lr 3e-3, 2 epochs)
    near = evidence.support(TrainConfig(**dict(OWN, lr=3e-3, epochs=2)))
    assert near.supported and near.n_exact == 0 and near.n_runs >= 4
    # just outside 3x in lr, epochs, or another resolution, scheme or pretrained flag: unsupported
    for change in ({"lr": 1e-3 / 3.1}, {"epochs": 19}, {"resolution": 64},
                   {"scheme": "linear_probing"}, {"pretrained": True}, {"model": "densenet121"}):
        s = evidence.support(TrainConfig(**dict(OWN, **change)))
        assert not s.supported, change
        assert "extrapolation" in s.text()
    # the cases: a fine-tuned VGG16 at AdamW 1e-2 and a DenseNet-121 from scratch
    assert not evidence.support(TrainConfig(**dict(PUBLISHED, lr=1e-2, epochs=10))).supported
    assert evidence.support(TrainConfig(**PUBLISHED)).supported


def test_support_text_names_counts_and_the_closest_run_on_the_most_similar_dataset(evidence) -> None:
    meta = from_traits(n_instances=550, n_classes=2, modality="ultrasound")
    s = evidence.support(TrainConfig(**PUBLISHED), meta)
    assert s.text().startswith("backed by 3 runs on 3 datasets (published 3); the closest: pub2")
    unsupported = evidence.support(TrainConfig(**dict(PUBLISHED, lr=1e-2)))
    assert unsupported.nearest_unsupported and "VGG16" in unsupported.nearest_unsupported
    assert Support(n_runs=1, n_datasets=1).text().startswith("backed by 1 run on 1 dataset")


def test_dataset_size_covered_by_the_evidence(evidence: Evidence) -> None:
    own, published = TrainConfig(**OWN), TrainConfig(**PUBLISHED)
    assert evidence.max_n([own, published, TrainConfig(**dict(OWN, resolution=64))]).tolist()[:2] == [
        1200.0, 5000.0]
    assert np.isnan(evidence.max_n([TrainConfig(**dict(OWN, resolution=64))])[0])  # unbacked
    # backed on at most 1,200 images: covers up to 3x that, not beyond; unknown size: covered
    assert evidence.covers_size([own, published], 3600).tolist() == [True, True]
    assert evidence.covers_size([own, published], 3601).tolist() == [False, True]
    assert evidence.covers_size([own], None).tolist() == [True]
    large = evidence.support(own, from_traits(n_instances=80_000, n_classes=2))
    assert large.supported and large.size_extrapolates and large.largest_n == 1200
    assert "at most 1,200 training images and yours has 80,000" in large.text()
    assert "extrapolates in dataset size" in large.text()
    small = evidence.support(own, from_traits(n_instances=2_000, n_classes=2))
    assert not small.size_extrapolates and "dataset size" not in small.text()


def test_portfolio_and_shortened_candidates(evidence: Evidence) -> None:
    portfolio = evidence.portfolio()
    keys = {c.key() for c in portfolio}
    assert keys == {TrainConfig(**OWN).key(), TrainConfig(**PUBLISHED).key()}
    # linear probing of a randomly initialised network is never proposed, however often recorded
    assert not recommendable(TrainConfig(**dict(OWN, scheme="linear_probing")))
    shortened = evidence.shortened(portfolio)
    assert {(c.model, c.epochs) for c in shortened} == {("resnet18", 3), ("resnet18", 2),
                                                        ("vgg16", 50), ("vgg16", 34)}
    assert all(evidence.support(c).supported for c in shortened)
    assert evidence_candidates(evidence, cpu_only=True) == [TrainConfig(**OWN)]
    assert len(evidence_candidates(evidence, shortened=True)) == 6


def test_evidence_round_trips_through_json(evidence: Evidence) -> None:
    again = Evidence.from_json(json.loads(json.dumps(evidence.to_json())))
    assert len(again) == len(evidence) and again.configs == evidence.configs
    cfg = TrainConfig(**PUBLISHED)
    assert again.support(cfg) == evidence.support(cfg)
    assert len(Evidence.empty()) == 0 and not Evidence.empty().portfolio()


def test_failed_runs_back_nothing() -> None:
    frame = pd.DataFrame([_row(OWN, "a", 0.8, status="timeout")])
    from knowledge.metalearner.model import training_rows

    assert len(Evidence.from_frame(training_rows(frame))) == 0


def test_pretrained_vs_scratch_statement() -> None:
    lite = dict(OWN, model="efficientnet_lite0")
    rows = [_row(dict(lite, pretrained=True), "a", 0.9), _row(lite, "a", 0.7),
            _row(dict(lite, pretrained=True), "b", 0.6), _row(lite, "b", 0.8)]
    ev = Evidence.from_frame(pd.DataFrame(rows))
    text = ev.pretrained_vs_scratch(TrainConfig(**lite))
    assert text.startswith("From scratch vs pretrained (EfficientNet-Lite0): on 2 datasets")
    assert "beat the best pretrained run on 1" in text and "b, +20.0 points" in text
    assert "on 1 (largest gain: a, +20.0 points)" in ev.pretrained_vs_scratch(
        TrainConfig(**dict(lite, pretrained=True)))
    assert ev.pretrained_vs_scratch(TrainConfig(**OWN)) is None  # no resnet18 runs at all


def test_published_protocol_is_recognised() -> None:
    assert is_published_protocol(TrainConfig(**PUBLISHED))
    assert not is_published_protocol(TrainConfig(**dict(PUBLISHED, lr=3e-4)))
    assert np.isclose(PUBLISHED_PROTOCOL["lr"], 1e-4) and PUBLISHED_PROTOCOL["epochs"] == 100


# --- the answer: tiers, and when no supported config fits ----------------------------------------
@pytest.fixture(scope="module")
def advised():
    """A learner fitted on the synthetic runs, given the evidence of `_frame` (a resnet18 CPU
    portfolio config and the published VGG16 protocol), and an index."""
    import copy

    from knowledge.retrieval import HashingEmbedder, RunIndex
    from tests.knowledge.recommend_fixtures import fitted_learner
    from tests.knowledge.synthetic_runs import synthetic_records

    learner = copy.copy(fitted_learner())
    learner.support = Evidence.from_frame(_frame())
    index = RunIndex.build(synthetic_records(per_dataset=12), HashingEmbedder(256), embed_text=False)
    return learner, index


META = from_traits(n_instances=1500, n_classes=3, imbalance_ratio=2.0, height=128, modality="ct")


def _times(learner, budget: str) -> dict[str, float]:
    """Predicted seconds of the CPU portfolio config, of its shortened variants, and of the
    fastest config of the free sample, under `budget`'s device."""
    from knowledge.metalearner.budget import parse_budget
    from knowledge.metalearner.candidates import candidate_configs
    from knowledge.metalearner.ranking import score_candidates

    b = parse_budget(budget)
    recorded = score_candidates(META, learner, budget=b, candidates=[TrainConfig(**OWN)]).seconds
    short = score_candidates(META, learner, budget=b, candidates=evidence_candidates(
        learner.support, shortened=True, cpu_only=True)).seconds
    free = score_candidates(META, learner, budget=b,
                            candidates=candidate_configs(cpu_only=True)).seconds
    return {"recorded": float(recorded.min()), "shortened": float(short.min()),
            "free": float(free.min())}


def test_a_supported_pick_whenever_one_fits(advised) -> None:
    from knowledge.recommend import recommend

    learner, index = advised
    rec = recommend(META, budget="CPU only", learner=learner, index=index)
    assert rec.best.config == TrainConfig(**OWN)  # the only CPU portfolio config
    assert rec.best.supported and rec.supported_fits and not rec.extrapolates
    assert rec.evidence_tier == "recorded" and rec.n_candidates == 1
    card = rec.to_markdown()
    assert "### Evidence" in card and "Support: backed by 4 runs on 4 datasets (own 4)" in card
    gpu = recommend(META, budget="one hour on an A100", learner=learner, index=index)
    assert gpu.best.supported and {r.config.model for r in gpu.top} <= {"resnet18", "vgg16"}
    if gpu.best.config.model == "vgg16":
        assert "MedMNIST+ protocol" in gpu.to_markdown()


def test_shortened_then_extrapolated_with_the_nearest_supported_option(advised) -> None:
    from knowledge.recommend import recommend

    learner, index = advised
    t = _times(learner, "CPU only")
    assert t["shortened"] < t["recorded"]
    # between the shortened variant and the recorded config: the shortened tier answers
    limit = (t["shortened"] + t["recorded"]) / 2
    rec = recommend(META, budget=f"CPU only, {limit:.1f} seconds", learner=learner, index=index)
    assert rec.evidence_tier == "shortened" and rec.best.supported and rec.best.config.epochs < 6
    assert any("fewer epochs" in n for n in rec.notes)
    # below every supported config but above the free sample's fastest: a marked extrapolation
    if t["free"] < t["shortened"] * 0.9:
        limit = (t["free"] + t["shortened"]) / 2
        rec = recommend(META, budget=f"CPU only, {limit:.2f} seconds", learner=learner, index=index)
        assert rec.evidence_tier == "extrapolated" and not rec.supported_fits
        assert rec.extrapolates and not rec.best.supported
        note = next(n for n in rec.notes if "extrapolates" in n)
        assert "No config backed by recorded runs fits" in note
        assert "nearest supported option is ResNet-18" in note
        assert rec.nearest_supported is not None and rec.nearest_supported.supported
        assert rec.nearest_supported.predicted_seconds > limit
        assert "This config extrapolates" in rec.to_markdown()


def test_a_recorded_config_too_slow_is_offered_cut_beside_those_that_fit(advised) -> None:
    """Issue 17: the recorded configs that fit and the cut variants of those that do not compete
    (before, the cut variants were offered only when no recorded config fit)."""
    import copy

    from knowledge.metalearner.ranking import score_candidates
    from knowledge.recommend import recommend

    fast = dict(OWN, model="mobilenetv3_small_100", resolution=28, epochs=1)
    learner = copy.copy(advised[0])
    learner.support = Evidence.from_frame(pd.concat(
        [_frame(), pd.DataFrame([_row(fast, f"own{i}", 0.5) for i in range(3)])]))
    t_fast, t_own = score_candidates(META, learner, budget=parse_budget("CPU only"),
                                     candidates=[TrainConfig(**fast), TrainConfig(**OWN)]).seconds
    t_cut = t_own * 3 / OWN["epochs"]  # OWN cut to half its epochs
    assert t_fast < t_cut < t_own
    limit = (t_cut + t_own) / 2  # the fast config and the cut OWN fit, the recorded OWN does not
    rec = recommend(META, budget=f"CPU only, {limit:.2f} seconds", learner=learner, index=advised[1])
    models = {(r.config.model, r.config.epochs) for r in rec.pareto + rec.top}
    assert rec.n_candidates >= 2 and ("resnet18", 3) in models  # before: only the fast config
    assert all(r.supported for r in rec.top) and rec.supported_fits
    cut = rec.best.config.model == "resnet18"
    assert rec.evidence_tier == ("shortened" if cut else "recorded")
    assert any("fewer epochs than the recorded runs" in n for n in rec.notes) == cut
    pinned = recommend(META, budget=f"CPU only, {limit:.2f} seconds", learner=learner,
                       index=advised[1], require={"epochs": 6})  # pinned epochs: never cut
    assert {r.config.epochs for r in pinned.top} == {6}


def test_nothing_fits_names_the_nearest_supported_option(advised) -> None:
    from knowledge.errors import ConfigError
    from knowledge.recommend import recommend

    learner, index = advised
    with pytest.raises(ConfigError, match="nearest supported option: ResNet-18"):
        recommend(META, budget="CPU only, 0.001 seconds", learner=learner, index=index)


def test_less_support_never_gets_a_narrower_interval(advised) -> None:
    from knowledge.metalearner.model import support_stratum

    learner, _ = advised
    m = learner.interval_margins
    assert set(m) == {"well", "thin", "none", "protocol"}
    assert m["none"] >= m["thin"] >= m["well"] >= 0
    assert list(support_stratum(np.array([5, 3, 2, 1, 0]))) == ["well", "well", "thin", "thin", "none"]
    protocol, own, nowhere = (TrainConfig(**PUBLISHED), TrainConfig(**OWN),
                              TrainConfig(**dict(OWN, lr=0.3, epochs=100)))
    assert list(support_stratum(learner.support.n_datasets([protocol, own, nowhere]),
                                [protocol, own, nowhere])) == ["protocol", "well", "none"]
    def margins_of(cfg: TrainConfig) -> float:
        return float(learner.margins_for([cfg])[0])

    margins = learner.margins_for([own, nowhere, protocol])
    assert list(margins) == [m["well"], m["none"], m["protocol"]]
    # the intervals the answer shows use them: an unsupported config's is at least as wide
    from knowledge.metalearner.ranking import score_candidates

    scored = score_candidates(META, learner, candidates=[own, nowhere])
    ranked = {r.config: r for r in scored.ranked([0, 1])}
    assert ranked[own].supported and not ranked[nowhere].supported
    raw = learner.predict_matrix(scored.matrix[[0, 1]], intervals=True, margins=np.zeros(2))
    for j, cfg in enumerate((own, nowhere)):  # the margin of its stratum, then clipped to [0, 1]
        assert ranked[cfg].acc_lo == pytest.approx(max(0.0, raw["acc_lo"][j] - margins_of(cfg)))
        assert ranked[cfg].acc_hi == pytest.approx(min(1.0, raw["acc_hi"][j] + margins_of(cfg)))


def test_an_offline_budget_keeps_only_weights_on_this_machine(advised, monkeypatch) -> None:
    from knowledge.metalearner.budget import parse_budget
    from knowledge.recommend import recommend
    from knowledge.training import weights

    learner, index = advised
    assert parse_budget("CPU only, 2 minutes, offline").offline
    assert parse_budget("one hour on a T4, no internet").offline
    assert parse_budget("air-gapped hospital machine").offline
    assert not parse_budget("one hour on a T4").offline
    assert parse_budget("offline").describe() == "no time limit on CPU, offline"
    monkeypatch.setattr(weights, "pretrained_available", lambda model: model != "vgg16")
    online = recommend(META, budget="an A100", learner=learner, index=index)
    offline = recommend(META, budget="an A100, offline", learner=learner, index=index)
    assert any(r.config.model == "vgg16" for r in online.top)
    assert all(r.config.model != "vgg16" for r in offline.top)
    assert offline.best.config == TrainConfig(**OWN) and offline.best.supported


def test_evidence_without_dataset_descriptors_still_answers(evidence: Evidence) -> None:
    data = evidence.to_json()
    for key in ("run_n", "run_classes", "run_modality"):
        data.pop(key)
    old = Evidence.from_json(data)
    meta = from_traits(n_instances=550, n_classes=2, modality="ultrasound")
    assert old.support(TrainConfig(**PUBLISHED), meta).n_runs == 3


def test_evidence_on_data_of_the_users_size_comes_first(advised) -> None:
    """10,000 images: the CPU config was only run on up to 1,200, the published protocol on up to
    5,000 (within 3x): without a budget the protocol is picked; on a CPU the CPU config still is,
    with its card saying the forecast extrapolates in dataset size."""
    from knowledge.recommend import recommend

    learner, index = advised
    meta = META.model_copy(update={"n_instances": 10_000})
    free = recommend(meta, learner=learner, index=index)
    assert free.best.config == TrainConfig(**PUBLISHED)
    assert not free.best.support.size_extrapolates
    cpu = recommend(meta, budget="CPU only", learner=learner, index=index)
    assert cpu.best.config == TrainConfig(**OWN) and cpu.best.support.size_extrapolates
    assert "extrapolates in dataset size" in cpu.to_markdown()


def test_setups_are_compared_by_their_leaders_pessimistic_forecast() -> None:
    """Two setups the ranker never saw on one task: the setup whose best configs have the higher
    midpoint of forecast and lower interval end leads, whatever the ranking score says; within a
    setup the score orders; a slightly higher lower end does not beat a far higher forecast."""
    from knowledge.metalearner.ranking import _order, _setup_leaders

    class Learner:  # the two methods `_setup_leaders` uses; forecast and lower end from the matrix
        def predict_matrix(self, M, **_):
            return {"acc": M[:, 0], "acc_lo": M[:, 1]}

        def margins_for(self, configs):
            return None

    acc = np.array([0.95, 0.90, 0.85, 0.84])  # the CPU setup forecasts higher ...
    matrix = np.array([[0.95, 0.40], [0.90, 0.45], [0.85, 0.70], [0.84, 0.60]])  # ... less surely
    setups = np.array([False, False, True, True])
    keep = np.ones(4, dtype=bool)
    level = np.ones(4)
    configs = [TrainConfig(**OWN)] * 2 + [TrainConfig(**PUBLISHED)] * 2
    leaders = _setup_leaders(Learner(), matrix, configs, keep, level, setups, acc)
    assert np.allclose(leaders, [0.675, 0.675, 0.775, 0.775])
    score = np.array([0.9, 0.8, 0.1, 0.2])
    assert _order(score, keep, np.zeros(4), np.zeros(4), level, leaders).tolist() == [3, 2, 0, 1]
    # a 0.2-point higher lower end with a 10-point lower forecast no longer wins (lower end alone did)
    close = np.array([[0.777, 0.686], [0.70, 0.60], [0.881, 0.684], [0.80, 0.60]])
    leaders = _setup_leaders(Learner(), close, configs, keep, level, setups, close[:, 0])
    assert leaders[2] > leaders[0]
    # one setup only: no leaders, the score alone orders
    assert _setup_leaders(Learner(), matrix, configs, keep, level, np.zeros(4, dtype=bool), acc) is None
    # a higher support level (backed on data of the user's size) beats any setup value
    assert _order(score, keep, np.zeros(4), np.zeros(4), np.array([2, 1, 1, 1]),
                  leaders).tolist()[0] == 0
