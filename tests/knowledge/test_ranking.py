"""Candidates, budgets, ranking, Pareto front and fastest-within."""

from __future__ import annotations

import time

import pytest

from knowledge.errors import ConfigError, DatasetError
from knowledge.metafeatures import from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.metalearner.candidates import candidate_configs, check_candidates
from knowledge.metalearner.cost import gpu_estimate
from knowledge.metalearner.features import featurize_one
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner
from knowledge.metalearner.ranking import RankedConfig, fastest_within, pareto_front, rank
from knowledge.search_space import MODELS, TrainConfig
from tests.knowledge.synthetic_runs import synthetic_frame

META = from_traits(n_instances=3000, n_classes=3, imbalance_ratio=2.5, height=128, modality="x-ray")


@pytest.fixture(scope="module")
def learner() -> MetaLearner:
    return MetaLearner(acc_params=dict(ACC_PARAMS, n_estimators=80, n_jobs=1)).fit(synthetic_frame())


# --- candidates ----------------------------------------------------------------------------
def test_candidates_are_deterministic_valid_and_sized() -> None:
    full = candidate_configs()
    assert full == candidate_configs() and 500 < len(full) <= 3000
    check_candidates(full)
    assert len({c.key() for c in full}) == len(full)
    assert {c.model for c in full} == {n for n, s in MODELS.items() if s.trainable}
    assert not any(c.scheme == "linear_probing" and not c.pretrained for c in full)
    assert {c.scheme for c in full} == {"end_to_end", "linear_probing"}


def test_candidate_constraints() -> None:
    cpu = candidate_configs(cpu_only=True)
    assert cpu and all(MODELS[c.model].cpu_friendly for c in cpu)
    assert all(c.pretrained for c in candidate_configs(pretrained_only=True))
    assert max(c.resolution for c in candidate_configs(max_resolution=64)) == 64
    assert {c.model for c in candidate_configs(models=["resnet18"])} == {"resnet18"}
    with pytest.raises(ConfigError, match="unknown model"):
        candidate_configs(models=["resnet9000"])
    with pytest.raises(ConfigError, match="below the smallest"):
        candidate_configs(max_resolution=16)


# --- ranking -------------------------------------------------------------------------------
def test_rank_returns_top_k_sorted(learner: MetaLearner) -> None:
    top = rank(META, learner, top_k=5)
    assert [r.rank for r in top] == [1, 2, 3, 4, 5]
    scores = [r.score for r in top]  # ranked by the learner's ranking score
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(r, RankedConfig) and r.acc_lo <= r.predicted_acc <= r.acc_hi for r in top)
    everything = rank(META, learner, top_k=None)
    assert len(everything) == len(candidate_configs())  # the synthetic runs have no portfolio
    # configs backed by recorded runs rank before the others (knowledge.metalearner.support)
    backed = [r for r in everything if r.supported]
    assert backed and everything[:len(backed)] == backed
    assert top[0].score == max(r.score for r in backed)
    assert top[0].config.pretrained  # the obvious signal of the synthetic runs
    by_acc = rank(META, learner, top_k=5, order_by="acc")
    accs = [r.predicted_acc for r in by_acc]
    assert accs == sorted(accs, reverse=True)
    assert by_acc[0].predicted_acc == max(r.predicted_acc for r in everything if r.supported)
    assert "%" in top[0].summary()


def test_rank_time_is_per_image_epoch_times_size_and_device(learner: MetaLearner) -> None:
    config = TrainConfig(model="resnet18", resolution=64, epochs=10)
    cpu = rank(META, learner, candidates=[config], budget=Budget(device="cpu"))[0]
    t4 = rank(META, learner, candidates=[config], budget=Budget(device="t4"))[0]
    spie = learner.predict(featurize_one(META, [config]))
    assert cpu.predicted_seconds == pytest.approx(spie["sec_per_img_epoch"].iloc[0] * 3000 * 10,
                                                  rel=1e-6)
    # a GPU: the timm-benchmark cost model (issue 14), not CPU time / DEVICE_SPEEDUP
    assert t4.predicted_seconds == pytest.approx(gpu_estimate(config, 3000, "t4").seconds)
    assert t4.time_source.startswith("timm RTX 3090 train benchmark (resnet18 @224)")
    assert cpu.time_source.startswith("CPU time model")
    assert not cpu.time_is_estimate and t4.device == "t4"


def test_budget_removes_too_slow_configs(learner: MetaLearner) -> None:
    everything = rank(META, learner, top_k=None, budget=Budget(device="a100"))
    times = sorted(r.predicted_seconds for r in everything)
    limit = times[len(times) // 4]
    within = rank(META, learner, top_k=None, budget=Budget(device="a100", max_seconds=limit))
    assert 0 < len(within) < len(everything)
    assert all(r.predicted_seconds <= limit for r in within)
    with pytest.raises(ConfigError, match="no candidate config is predicted to train within"):
        rank(META, learner, budget=Budget(device="cpu", max_seconds=times[0] / 1000))


def test_cpu_only_keeps_cpu_friendly_models(learner: MetaLearner) -> None:
    ranked = rank(META, learner, top_k=None, budget=parse_budget("CPU only"))
    assert ranked and all(MODELS[r.config.model].cpu_friendly for r in ranked)
    given = [TrainConfig(model="vgg16"), TrainConfig(model="resnet18")]
    assert [r.config.model for r in rank(META, learner, candidates=given,
                                         budget=Budget(device="cpu"))] == ["resnet18"]


def test_time_budget_needs_the_dataset_size(learner: MetaLearner) -> None:
    with pytest.raises(DatasetError, match="n_instances"):
        rank(from_traits(n_classes=3), learner, budget=parse_budget("10 minutes"))
    unknown = rank(from_traits(n_classes=3), learner, top_k=3)
    assert all(r.predicted_seconds is None for r in unknown)


def test_extrapolation_is_flagged_and_can_be_excluded(learner: MetaLearner) -> None:
    far = TrainConfig(model="vgg16", epochs=100)  # a model and epochs the runs never saw
    near = TrainConfig(model="resnet18", epochs=10)
    ranked = {r.config.model: r for r in rank(META, learner, candidates=[far, near], top_k=None)}
    assert set(ranked["vgg16"].extrapolated) == {"model", "epochs"}
    assert ranked["resnet18"].extrapolated == []
    supported = rank(META, learner, candidates=[far, near], supported_only=True)
    assert [r.config.model for r in supported] == ["resnet18"]


def test_pareto_front_is_non_dominated(learner: MetaLearner) -> None:
    everything = rank(META, learner, top_k=None, budget=Budget(device="t4"))
    front = pareto_front(everything)
    assert front
    for p in front:
        assert not any(
            q.predicted_acc >= p.predicted_acc and q.predicted_seconds <= p.predicted_seconds
            and (q.predicted_acc > p.predicted_acc or q.predicted_seconds < p.predicted_seconds)
            for q in everything
        )
    assert front[-1].predicted_acc == max(r.predicted_acc for r in everything)
    assert front[0].predicted_seconds == min(r.predicted_seconds for r in everything)
    assert [p.predicted_seconds for p in front] == sorted(p.predicted_seconds for p in front)


def test_fastest_within(learner: MetaLearner) -> None:
    everything = rank(META, learner, top_k=None, budget=Budget(device="t4"))
    best = max(r.predicted_acc for r in everything)
    pick = fastest_within(everything, 2.0)
    assert pick.predicted_acc >= best - 0.02
    eligible = [r for r in everything if r.predicted_acc >= best - 0.02]
    assert pick.predicted_seconds == min(r.predicted_seconds for r in eligible)
    exact = fastest_within(everything, 0.0)
    assert exact.predicted_acc == best
    assert fastest_within(everything, 100.0).predicted_seconds == min(
        r.predicted_seconds for r in everything)
    with pytest.raises(ConfigError):
        fastest_within(everything, -1)
    with pytest.raises(ConfigError):
        fastest_within([], 1)


def test_rank_is_fast_with_a_loaded_learner(tmp_path, learner: MetaLearner) -> None:
    loaded = artifact.load(artifact.save(learner, tmp_path / "ml"))
    rank(META, loaded, top_k=5)  # warm-up (candidate cache, xgboost)
    started = time.perf_counter()
    top = rank(META, loaded, top_k=5, budget=parse_budget("one hour on a T4"))
    elapsed = time.perf_counter() - started
    print(f"rank over {len(candidate_configs())} candidates: {elapsed * 1000:.0f} ms")
    assert top and elapsed < 2.0  # target < 1 s; slack for a loaded test machine
