"""The leave-one-dataset-out benchmark on small synthetic runs with a known structure.

Synthetic accuracy = 0.55 + 0.25 x pretrained + 0.02 x log2(resolution / 28) + a per-dataset offset
(tests/knowledge/synthetic_runs.py), so a pretrained 224 px config is best on every dataset.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import eval.lodo as lodo
from eval.baselines import config_distance, expected_best_of, nearest_config, tpe_search
from knowledge.errors import StoreError
from knowledge.runs.store import RunStore
from tests.knowledge.synthetic_runs import synthetic_records

FAST = {"n_estimators": 30}
NON_MEDICAL = {"eps", "zeta"}


def _records(per_dataset: int = 24):
    return [r.model_copy(update={"medical": r.base_dataset not in NON_MEDICAL})
            for r in synthetic_records(per_dataset=per_dataset)]


@pytest.fixture(scope="module")
def report() -> dict:
    fitted: list[set[str]] = []
    original = lodo.MetaLearner.fit

    def spy(self, frame, **kwargs):
        fitted.append(set(frame["base_dataset"]))
        return original(self, frame, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lodo.MetaLearner, "fit", spy)
        out = lodo.evaluate_lodo(_records(), seeds=2, tpe_trials=(5, 10), acc_params=FAST,
                                 cost_params=FAST)
    out["_fitted"] = fitted
    return out


def _task(values: list[float]) -> lodo.Task:
    return lodo.Task(dataset_id="d", source="own", base_dataset="d", medical=True,
                     metric="test_acc", n_records=len(values), meta=None,  # type: ignore[arg-type]
                     rows=pd.DataFrame(), keys=[str(i) for i in range(len(values))],
                     values=np.array(values))


def test_score_normalises_regret_and_counts_strictly_better_configs() -> None:
    task = _task([0.5, 0.7, 0.7, 0.9])
    assert task.score([3]) == {"regret": 0.0, "regret_points": 0.0, "rank": 1.0}
    assert task.score([0]) == pytest.approx({"regret": 1.0, "regret_points": 40.0, "rank": 4.0})
    # ties share a rank: only the 0.9 config is strictly better than either 0.7
    assert task.score([1])["rank"] == task.score([2])["rank"] == 2.0
    assert task.score([1])["regret"] == pytest.approx(0.5)
    assert task.score([0, 2])["regret"] == pytest.approx(0.5)  # best of the picks counts


def test_expected_best_of_matches_enumeration() -> None:
    values = np.array([0.3, 0.9, 0.5, 0.5, 0.7, 0.1, 0.8])
    for k in (1, 3, 5, 7):
        brute = np.mean([max(c) for c in itertools.combinations(values, k)])
        assert expected_best_of(values, k) == pytest.approx(brute)
    ranks = np.array([1 + np.sum(values > v) for v in values], dtype=float)
    brute_rank = np.mean([min(ranks[list(c)]) for c in itertools.combinations(range(7), 5)])
    assert expected_best_of(values, 5, ranks) == pytest.approx(brute_rank)


def test_config_distance_prefers_the_same_model_scheme_and_resolution() -> None:
    configs = pd.DataFrame([
        dict(model="resnet18", pretrained=True, scheme="end_to_end", resolution=64, optimizer="adamw",
             lr=1e-2, weight_decay=0.0, batch_size=32, epochs=3, augmentation="none",
             label_smoothing=0.0),
        dict(model="resnet50", pretrained=True, scheme="end_to_end", resolution=224,
             optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=64, epochs=10,
             augmentation="light", label_smoothing=0.0),
        dict(model="resnet18", pretrained=True, scheme="end_to_end", resolution=224,
             optimizer="adamw", lr=1e-2, weight_decay=0.0, batch_size=32, epochs=3,
             augmentation="none", label_smoothing=0.0),
    ])
    target = dict(configs.iloc[1], model="resnet18")
    assert config_distance(configs.iloc[0].to_dict(), configs)[0] == 0.0
    assert nearest_config(target, configs) == 2  # same model and resolution beat closer HPs
    assert nearest_config(configs.iloc[1].to_dict(), configs) == 1  # exact match when recorded


def test_tpe_search_stays_on_recorded_configs() -> None:
    task = lodo.build_tasks(lodo.records_frame(_records()))[0]
    visited = tpe_search(task.configs, task.values, n_trials=8, seed=0)
    assert len(visited) == 8 and all(0 <= p < len(task.keys) for p in visited)
    assert visited == tpe_search(task.configs, task.values, n_trials=8, seed=0)  # seeded


def test_held_out_base_never_reaches_the_fit(report: dict) -> None:
    held = [f["held_out"] for f in report["folds"]]
    assert len(report["_fitted"]) == len(held) == 6
    for bases, base in zip(report["_fitted"], held):
        assert base not in bases and len(bases) == 5


def test_regrets_are_normalised_and_oracle_is_zero(report: dict) -> None:
    assert report["methods"] == ["meta-learner", "random", "single-best", "nearest-dataset",
                                 "tpe@5", "tpe@10", "oracle"]
    assert len(report["tasks"]) == 12  # 6 datasets x (own, published)
    for task in report["tasks"]:
        res = task["results"]
        assert set(res) == set(report["methods"])
        for name, scores in res.items():
            assert 0.0 <= scores["regret"] <= 1.0
            assert 1.0 <= scores["rank"] <= task["n_configs"]
            if "regret_top5" in scores:
                assert scores["regret_top5"] <= scores["regret"] + 1e-12
        assert res["oracle"]["regret"] == 0.0 and res["oracle"]["rank"] == 1.0
        assert task["time"]["predict_s"] > 0 and task["time"]["rank_s"] > 0
    assert "neighbour" in report["tasks"][0]["results"]["nearest-dataset"]


def test_the_learner_finds_the_known_structure(report: dict) -> None:
    methods = report["summary"]["all"]["methods"]
    assert methods["meta-learner"]["regret"]["mean"] < methods["random"]["regret"]["mean"] / 2
    assert methods["tpe@10"]["regret"]["mean"] <= methods["tpe@5"]["regret"]["mean"] + 1e-9


def test_summary_splits_medical_non_medical_and_source(report: dict) -> None:
    summary = report["summary"]
    assert summary["all"]["n_tasks"] == 12
    assert summary["non-medical"]["n_tasks"] == 4 and summary["medical"]["n_tasks"] == 8
    assert summary["source=own"]["n_tasks"] == summary["source=published"]["n_tasks"] == 6
    text = lodo.to_markdown(report)
    assert "**non-medical** (4 tasks)" in text and "| meta-learner |" in text


def test_tasks_keep_sources_apart_and_report_the_metric() -> None:
    tasks = lodo.build_tasks(lodo.records_frame(_records()), min_records=5)
    assert {(t.dataset_id, t.source) for t in tasks} == {
        (f"synthetic:{d}", s) for d in ("alpha", "beta", "gamma", "delta", "eps", "zeta")
        for s in ("own", "published")}
    assert {t.metric for t in tasks} <= {"test_acc", "val_acc", "mixed"}
    assert "mixed" in {t.metric for t in tasks}  # some synthetic runs only have val_acc


def test_too_few_records_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="at least 50 successful runs"):
        lodo.evaluate_lodo(_records(8), min_records=50)


def test_cli_writes_json_and_markdown(tmp_path) -> None:
    from ui.cli.eval import app

    store = RunStore(tmp_path / "runs.sqlite")
    store.add_many(_records(12))
    out, md = tmp_path / "lodo.json", tmp_path / "lodo.md"
    result = CliRunner().invoke(app, [
        "lodo", "--store", str(store.path), "--no-published", "--seeds", "1", "--tpe-trials", "5",
        "--json", "--out", str(out), "--markdown", str(md), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert json.loads(out.read_text())["summary"] == printed["summary"]
    assert printed["methods"][-2:] == ["tpe@5", "oracle"]
    assert printed["settings"]["published"] is False
    assert printed["records"]["by_source"] == {"own": 36}  # 6 ok own runs x 6 datasets
    assert {t["source"] for t in printed["tasks"]} == {"own"}
    assert md.read_text().startswith("Records:")


# --- medical vs non-medical ---------------------------------------------------------------------

def _mixed_meta_dataset(non_medical_runs: int) -> list:
    """Four medical bases (own + published runs) and one non-medical base ("eps", e.g. digits)
    with exactly `non_medical_runs` successful own runs."""
    records = [r for r in synthetic_records(per_dataset=12) if r.base_dataset != "zeta"]
    medical = [r for r in records if r.base_dataset != "eps"]
    eps_ok = [r.model_copy(update={"medical": False}) for r in records
              if r.base_dataset == "eps" and r.status == "ok" and r.provenance.source == "own"]
    assert len(eps_ok) >= non_medical_runs
    return medical + eps_ok[:non_medical_runs]


@pytest.mark.parametrize("runs, appears", [(5, True), (4, False)])
def test_non_medical_task_appears_once_it_has_min_records(runs: int, appears: bool) -> None:
    report = lodo.evaluate_lodo(_mixed_meta_dataset(runs), seeds=1, tpe_trials=(5,),
                                acc_params=FAST, cost_params=FAST, min_records=5, time_rank=False)
    summary = report["summary"]
    non_medical = [t for t in report["tasks"] if not t["medical"]]
    assert summary["non-medical"]["n_tasks"] == len(non_medical) == (1 if appears else 0)
    assert summary["medical"]["n_tasks"] + summary["non-medical"]["n_tasks"] == summary["all"]["n_tasks"]
    assert all(t["medical"] for t in report["tasks"] if t["base_dataset"] != "eps")
    text = lodo.to_markdown(report)
    if appears:
        task = non_medical[0]
        assert task["task"] == "synthetic:eps [own]" and task["n_records"] == 5
        assert "**non-medical** (1 tasks)" in text
        assert "eps" not in {t["base_dataset"] for t in report["tasks"] if t["medical"]}
        stats = summary["non-medical"]["methods"]["meta-learner"]["regret"]
        assert stats["n"] == 1 and stats["mean"] == task["results"]["meta-learner"]["regret"]
    else:
        assert "**non-medical**" not in text
        # the base still trains the other folds' learners even without a task of its own
        assert any(f["held_out"] != "eps" and f["n_train_records"] > 0 for f in report["folds"])


def test_folds_record_the_chosen_ranking_blend(report: dict) -> None:
    from knowledge.metalearner.blend import BLEND_GRID

    assert all(f["blend"] in BLEND_GRID for f in report["folds"])
    assert "ranking blend" in lodo.to_markdown(report)


def test_published_records_come_with_their_class_balance(tmp_path) -> None:
    from ui.cli.eval import load_records

    records = load_records(tmp_path / "empty.sqlite", published=True, published_only=True)
    assert len(records) == 1440 and {r.provenance.source for r in records} == {"published"}
    # the class-counts table is read too: the same meta-features as the shipped meta-dataset's
    from knowledge.meta_dataset.shipped import SHIPPED

    shipped = pd.read_parquet(SHIPPED)
    shipped = shipped[shipped["prov.source"] == "published"].groupby("dataset_id")[
        "mf.imbalance_ratio"].first()
    loaded = {r.dataset_id: r.meta_features.imbalance_ratio for r in records}
    assert sum(v is not None for v in loaded.values()) >= 8
    for dataset_id, ratio in loaded.items():
        expected = shipped[dataset_id]
        assert (ratio is None and pd.isna(expected)) or ratio == pytest.approx(expected)


def test_single_best_is_chosen_among_tasks_of_the_same_source() -> None:
    frame = lodo.records_frame(_records())
    train = frame[frame["base_dataset"] != "alpha"]
    fold = lodo.prepare_fold(train, "alpha", lodo.build_index(_records()), acc_params=FAST,
                             cost_params=FAST, seed=0)
    assert set(fold.single_best) == {"*", "own", "published"}
    for source in ("own", "published"):
        recorded = {lodo.config_key(c) for c in lodo._config_dicts(
            train[train["prov.source"] == source])}
        assert {lodo.config_key(c) for c in fold.single_best[source]} <= recorded
