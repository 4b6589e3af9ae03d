"""`knowledge.recommend`: the whole recommendation, its alternatives, caching and rendering."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from knowledge.errors import ConfigError, DatasetError, StoreError
from knowledge.explain import shap_values
from knowledge.metafeatures import from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.features import FEATURE_COLUMNS, featurize_one
from knowledge.recommend import (
    FASTER_WITHIN_POINTS,
    TRAIT_KEYS,
    Advisor,
    Recommendation,
    artifact_dirs,
    clear_cache,
    get_advisor,
    meta_from_traits,
    recommend,
)
from knowledge.retrieval import HashingEmbedder, RunIndex
from knowledge.search_space import MODELS, TrainConfig
from tests.knowledge.recommend_fixtures import fitted_learner, ready_store, small_fits
from tests.knowledge.synthetic_runs import synthetic_records

META = from_traits(n_instances=1500, n_classes=3, imbalance_ratio=2.0, height=128, modality="ct")


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="module")
def learner():
    return fitted_learner()


@pytest.fixture(scope="module")
def index():
    return RunIndex.build(synthetic_records(per_dataset=12), HashingEmbedder(256), embed_text=False)


def test_top_k_sorted_best_explained(learner, index) -> None:
    rec = recommend(META, top_k=4, learner=learner, index=index)
    assert len(rec.top) == 4 and rec.best == rec.top[0]
    scores = [r.score for r in rec.top]  # the order is the ranking score's
    assert scores == sorted(scores, reverse=True)
    assert [r.rank for r in rec.top] == [1, 2, 3, 4]
    assert rec.explanation.config == rec.best.config
    assert rec.explanation.prediction == pytest.approx(100 * rec.best.predicted_acc, abs=1e-3)
    assert rec.explanation.factors
    assert rec.meta_features == META and rec.missing_traits == META.missing()
    assert rec.n_candidates >= len(rec.top) and rec.seconds > 0
    assert rec.learner["n_records"] == learner.n_records and rec.learner["fitted_at"]
    again = Recommendation.model_validate_json(rec.model_dump_json())
    assert again.best == rec.best and again.similar_runs == rec.similar_runs


def test_alternatives_are_consistent(learner, index) -> None:
    rec = recommend(META, learner=learner, index=index)  # no budget
    assert rec.faster is not None
    assert rec.faster.predicted_seconds < rec.best.predicted_seconds
    assert rec.faster.predicted_acc >= rec.best.predicted_acc - FASTER_WITHIN_POINTS / 100 - 1e-9
    # "faster" is never forecast more accurate than the pick, and never the "more accurate" one
    assert rec.faster.predicted_acc <= rec.best.predicted_acc + 1e-9 and rec.faster.rank > 1
    # without a budget the alternative is the most accurate config when the ranking put it below
    # the best, else the runner-up (the second-ranked)
    assert rec.more_accurate is not None and rec.more_accurate.config != rec.best.config
    assert rec.more_accurate_within_budget is True
    if rec.more_accurate_kind == "ranked_lower":
        assert rec.more_accurate.predicted_acc > rec.best.predicted_acc
        assert rec.more_accurate.rank > 1
    else:  # the best-ranked config after the pick that is not the faster alternative
        assert rec.more_accurate_kind == "runner_up" and rec.more_accurate.rank >= 2
        assert rec.more_accurate.predicted_acc <= rec.best.predicted_acc
    assert rec.more_accurate.config != rec.faster.config
    front = [(r.predicted_seconds, r.predicted_acc) for r in rec.pareto]
    assert front == sorted(front) and len({a for _, a in front}) == len(front)

    limited = recommend(META, budget="2 minutes", learner=learner, index=index)
    assert all(r.predicted_seconds <= 120 for r in limited.top)
    assert limited.more_accurate_kind == "beyond_budget"
    assert limited.more_accurate.predicted_acc > limited.best.predicted_acc
    assert limited.more_accurate_within_budget is False
    assert limited.more_accurate.predicted_seconds > 120


def test_accuracy_only_ranking_gives_the_runner_up(learner, index) -> None:
    # a learner that ranks by its accuracy alone (blend 0): the best is the most accurate
    by_accuracy = copy.copy(learner)
    by_accuracy.blend = 0.0
    rec = recommend(META, learner=by_accuracy, index=index)
    assert rec.more_accurate_kind == "runner_up" and rec.more_accurate.rank == 2
    accs = [r.predicted_acc for r in rec.top]
    assert accs == sorted(accs, reverse=True)
    assert rec.best.predicted_acc >= rec.more_accurate.predicted_acc


def test_cpu_only_budget_keeps_cpu_friendly_models(learner, index) -> None:
    rec = recommend(META, budget="CPU only", top_k=10, learner=learner, index=index)
    assert rec.budget is not None and rec.budget.cpu_only
    chosen = [*rec.top, *rec.pareto] + ([rec.faster] if rec.faster else [])
    assert all(MODELS[r.config.model].cpu_friendly for r in chosen)
    assert all(r.device == "cpu" for r in rec.top)


def test_similar_runs_are_one_per_dataset_and_exclude(learner, index) -> None:
    alpha = from_traits(n_instances=500, n_classes=2, imbalance_ratio=3.0, modality="x-ray",
                        height=64, channels=1)
    rec = recommend(alpha, learner=learner, index=index)
    bases = [h.base_dataset for h in rec.similar_runs]
    assert bases[0] == "alpha" and len(set(bases)) == len(bases)
    left_out = recommend(alpha, exclude_base=["Alpha"], learner=learner, index=index)
    assert left_out.similar_runs and "alpha" not in {h.base_dataset for h in left_out.similar_runs}
    assert left_out.excluded == ["alpha"]


def test_markdown_shows_the_numbers(learner, index) -> None:
    rec = recommend(META, top_k=3, budget="one hour on a T4", learner=learner, index=index)
    md = rec.to_markdown()
    best = rec.best
    assert f"{100 * best.predicted_acc:.1f} %" in md
    assert f"{100 * best.acc_lo:.1f} %" in md and f"{100 * best.acc_hi:.1f} %" in md
    assert best.config.spec.label in md and "NVIDIA T4" in md
    assert rec.explanation.factors[0].text in md
    assert md.count("\n| ") >= 1 + len(rec.top)  # header + one table row per config
    assert rec.similar_runs[0].card in md
    assert f"{rec.explanation.base_value:.1f} %" in md


def test_the_card_says_whether_the_pick_fits_the_gpu(learner, index) -> None:
    """Issue 14 item 4: a GPU budget gets a memory line (`metalearner.memory`), a CPU one none."""
    from knowledge.metalearner.memory import fits

    rec = recommend(META, top_k=3, budget="one hour on a T4", learner=learner, index=index)
    assert rec.memory and f"Memory: {rec.memory}." in rec.to_markdown()
    assert "of 16 GB" in rec.memory or "to fit 16 GB" in rec.memory
    assert fits(rec.best.config, "t4")[:2] == (True, rec.best.config.batch_size)
    cpu = recommend(META, top_k=3, budget="CPU only", learner=learner, index=index)
    assert cpu.memory is None and "Memory:" not in cpu.to_markdown()


def test_budget_errors(learner, index) -> None:
    with pytest.raises(DatasetError, match="n_instances"):
        recommend(from_traits(n_classes=3), budget="10 minutes", learner=learner, index=index)
    with pytest.raises(ConfigError, match="cannot read a compute budget"):
        recommend(META, budget="whenever", learner=learner, index=index)
    with pytest.raises(ConfigError, match="top_k"):
        recommend(META, top_k=0, learner=learner, index=index)


def test_unknown_size_gives_no_times_and_a_note(learner, index) -> None:
    rec = recommend(from_traits(n_classes=3, modality="ct"), learner=learner, index=index)
    assert rec.best.predicted_seconds is None and rec.faster is None
    assert any("n_instances" in n for n in rec.notes)


def test_meta_from_traits() -> None:
    meta = meta_from_traits({"n_instances": "3000", "n_classes": 3, "height": 512, "modality": "X-Ray",
                             "imbalance_ratio": None})
    assert (meta.n_instances, meta.width, meta.modality, meta.task) == (3000, 512, "x-ray", "multi-class")
    assert meta.class_size_mean == 1000
    counts = meta_from_traits({"class_counts": [300, 100], "class_entropy": 0.5})
    assert (counts.n_instances, counts.imbalance_ratio, counts.class_entropy) == (400, 3.0, 0.5)
    with pytest.raises(DatasetError, match=r"unknown key 'classes'; allowed keys: n_instances"):
        meta_from_traits({"classes": 3})
    with pytest.raises(DatasetError, match="n_classes"):
        meta_from_traits({"n_classes": 1})
    with pytest.raises(DatasetError, match="modality"):
        meta_from_traits({"modality": "banana"})
    with pytest.raises(DatasetError, match="class_counts"):
        meta_from_traits({"class_counts": [5]})
    with pytest.raises(DatasetError, match="JSON object"):
        meta_from_traits([3])  # type: ignore[arg-type]
    assert set(TRAIT_KEYS) >= {"n_instances", "class_counts", "class_entropy"}


def test_exact_treeshap_matches_shap(learner) -> None:
    shap = pytest.importorskip("shap")
    configs = [TrainConfig(model="resnet18", resolution=64), TrainConfig(model="vgg16", pretrained=False)]
    features = featurize_one(META, configs)
    values, base = shap_values(learner, features)
    explainer = shap.TreeExplainer(learner.acc_model)
    reference = np.asarray(explainer.shap_values(features[list(FEATURE_COLUMNS)]))[:, :, 1] * 100
    np.testing.assert_allclose(values, reference, atol=1e-4)
    assert base == pytest.approx(100 * np.atleast_1d(explainer.expected_value)[1], abs=1e-4)


# --- the advisor: loading once, refreshing on change ----------------------------------------------

def test_advisor_loads_once_and_refreshes_when_the_store_changes(tmp_path, monkeypatch) -> None:
    store = ready_store(tmp_path / "runs.sqlite")
    first = recommend(META, store=store.path)
    advisor = get_advisor(store.path)
    learner, index = advisor.learner, advisor.index
    assert index.text_pending  # recommend never embeds the run cards
    assert first.learner["store"] == str(store.path)
    recommend(META, store=store.path)
    assert advisor.learner is learner and advisor.index is index  # cached, not reloaded

    # a new process finds the stamp: loads both without refitting or re-reading the store
    with monkeypatch.context() as patched:
        patched.setattr(artifact, "load_or_fit", lambda *a, **k: pytest.fail("should load"))
        fresh = Advisor(store.path)
        assert fresh.learner.data_hash == learner.data_hash and len(fresh.index) == len(index)

    small_fits(monkeypatch)  # keep the refit below quick
    extra = synthetic_records(per_dataset=12, seed=1)[0]
    store.add(extra)
    assert advisor.index is not index and extra.run_id in {r.run_id for r in advisor.index.records}
    assert advisor.learner is not learner  # refitted on the changed store


def test_empty_store_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(StoreError, match=r"empty\.sqlite: the meta-learner needs at least 10"):
        recommend(META, store=tmp_path / "empty.sqlite")


def test_search_text_builds_the_text_index_on_demand(tmp_path) -> None:
    store = ready_store(tmp_path / "runs.sqlite")
    advisor = get_advisor(store.path)
    assert advisor.index.text_pending
    hits = advisor.search_text("dermoscopy", k=3)
    assert hits and hits[0].base_dataset == "gamma" and not advisor.index.text_pending
    saved = json.loads((artifact_dirs(store)[1] / "meta.json").read_text())
    assert saved["text_pending"] is False and saved["text_dim"] == 2**11  # persisted for next time


@pytest.mark.parametrize("budget", [None, "CPU only, 10 minutes", "one hour on a T4"])
def test_the_card_passes_the_advisors_grounding_check(learner, index, budget) -> None:
    """The card itself (every number attributed to the model it is about, Pareto line included) is
    what the advisor falls back to; its own grounding check must accept it."""
    from agent import prompts
    from agent.grounding import check_answer

    rec = recommend(META, top_k=5, budget=budget, learner=learner, index=index)
    sources = [rec.to_markdown(), json.dumps(rec.model_dump(mode="json")),
               json.dumps(prompts.recommendation_facts(rec)),
               json.dumps(prompts.recommendation_facts(rec, "faster"))]
    assert check_answer(rec.to_markdown(), sources, pick=rec.best.config.model_dump(),
                        pick_sources=sources[1:3]) == []


# --- impossible traits are refused, unusual ones noted (issue 13 item 9) ----------------------------

@pytest.mark.parametrize(("traits", "message"), [
    ({"n_instances": 10**9}, "traits: n_instances: 1,000,000,000 training images is beyond the "
                             "hard limit of 100,000,000 training images"),
    ({"height": 100_000, "n_classes": 2}, "traits: height: 100,000 px is beyond the hard limit"),
    ({"n_instances": 3, "n_classes": 1000}, "traits: n_classes 1,000 exceeds n_instances 3"),
    ({"n_instances": True, "n_classes": 3}, "traits: n_instances: True is a boolean, not a number"),
    ({"n_instances": -5}, "traits: n_instances: Input should be greater than or equal to 1 (got -5)"),
    ({"imbalance_ratio": float("nan")}, "traits: imbalance_ratio: Input should be a finite number "
                                        "(got nan)"),
    ({"class_counts": [300, True]}, "traits: class_counts[1]: True is a boolean, not a number"),
    ({"class_counts": [300, -2, 5]}, "traits: class_counts[1]: Input should be greater than or "
                                     "equal to 0 (got -2)"),
    ({"class_counts": [60_000_000, 60_000_000]}, "traits: class_counts: n_instances: 120,000,000 "
                                                 "training images is beyond the hard limit"),
    ({"n_instances": 100, "n_classes": 4, "class_size_min": 30},
     "traits: class_size_min 30 exceeds n_instances / n_classes = 25"),
    ({"class_counts": [50, 50], "class_size_min": 80},
     "traits: class_counts: class_size_min 80 exceeds class_size_max 50"),
    ({"n_instances": 100, "n_classes": 2, "imbalance_ratio": 1000},
     "traits: imbalance_ratio 1,000 exceeds n_instances 100"),
])
def test_meta_from_traits_refuses_the_impossible(traits, message) -> None:
    with pytest.raises(DatasetError) as info:
        meta_from_traits(traits)
    assert message in str(info.value) and "\n" not in str(info.value)


def _beyond(index) -> dict:
    """Traits inside the hard limits but outside what `index` records."""
    from knowledge.recommend import recorded_ranges

    ranges = recorded_ranges(index)
    return {"n_instances": int(ranges["n_instances"][1]) * 50, "n_classes": 3,
            "height": int(ranges["height"][1]) * 10, "modality": "ct"}


def test_recorded_ranges_come_from_the_ok_runs(index) -> None:
    from knowledge.recommend import recorded_ranges

    ranges = recorded_ranges(index)
    ok = [r.meta_features for r in index.records if r.status == "ok"]
    assert ranges["n_instances"] == (min(m.n_instances for m in ok), max(m.n_instances for m in ok))
    assert ranges["height"] == (28, 224) and ranges["n_classes"] == (2, 8)
    assert recorded_ranges(index) is ranges  # made once per index
    assert recorded_ranges(object()) == {}  # something without records: no range, no note


def test_unusual_traits_get_a_note_with_value_and_recorded_range(learner, index, monkeypatch) -> None:
    from knowledge.recommend import algorithm as recommend_algorithm  # where recorded_ranges is used

    traits = _beyond(index)  # 400,000 images of 2,240 px: possible, never recorded
    meta = meta_from_traits(traits)
    rec = recommend(meta, learner=learner, index=index)
    lo_n, hi_n = recommend_algorithm.recorded_ranges(index)["n_instances"]
    assert rec.outside_range == {"n_instances": [lo_n, hi_n], "height": [28, 224],
                                 "width": [28, 224]}
    note = rec.notes[0]
    assert "outside the range the meta-dataset records" in note
    assert f"n_instances {traits['n_instances']:,} (training images; recorded {int(lo_n):,} to " \
           f"{int(hi_n):,})" in note
    assert "height and width 2,240 (image side, px; recorded 28 to 224)" in note
    assert "n_classes" not in note  # 3 classes lie inside the recorded 2..8
    assert note in rec.to_markdown().split("### Notes", 1)[1]
    # the agent's facts carry it (the LLM is shown the compact ones)
    from agent import prompts

    assert note in prompts.recommendation_facts(rec, compact=True)["notes"]
    # the note changes nothing else: the same ranking without any recorded range
    monkeypatch.setattr(recommend_algorithm, "recorded_ranges", lambda _index: {})
    plain = recommend(meta, learner=learner, index=index)
    assert plain.outside_range == {} and note not in plain.notes
    assert [r.config for r in plain.top] == [r.config for r in rec.top]
    assert plain.best == rec.best and plain.notes == rec.notes[1:]


def test_traits_inside_the_recorded_range_get_no_range_note(learner, index) -> None:
    rec = recommend(META, learner=learner, index=index)
    assert rec.outside_range == {}
    assert not any("outside the range" in n for n in rec.notes)
    # a non-square image outside the range is named side by side
    wide = recommend(from_traits(n_instances=1500, n_classes=3, height=128, width=4000),
                     learner=learner, index=index)
    assert set(wide.outside_range) == {"width"}
    assert "width 4,000 (image width, px; recorded 28 to 224)" in wide.notes[0]
    assert "height" not in wide.notes[0]


def test_the_card_with_a_range_note_passes_the_grounding_check(learner, index) -> None:
    from agent import prompts
    from agent.grounding import check_answer

    rec = recommend(meta_from_traits(_beyond(index)), top_k=5, learner=learner, index=index)
    assert rec.outside_range
    sources = [rec.to_markdown(), json.dumps(rec.model_dump(mode="json")),
               json.dumps(prompts.recommendation_facts(rec)),
               json.dumps(prompts.recommendation_facts(rec, "faster"))]
    assert check_answer(rec.to_markdown(), sources, pick=rec.best.config.model_dump(),
                        pick_sources=sources[1:3]) == []
