"""`eval.lodo_production`: leave-one-dataset-out through `recommend()` itself.

The synthetic runs (tests/knowledge/synthetic_runs.py: pretrained and larger resolutions score
higher) get a portfolio: three configs recorded on every dataset, as the published MedMNIST+ configs
and our CPU portfolio are. The production path then picks among them, so every pick is evaluable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import eval.lodo_production as prod
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import TrainConfig
from tests.knowledge.synthetic_runs import DATASETS, synthetic_records, true_acc

PORTFOLIO = [
    TrainConfig(model="resnet18", pretrained=True, scheme="end_to_end", resolution=224, lr=1e-4,
                weight_decay=1e-2, batch_size=64, epochs=10, augmentation="none"),
    TrainConfig(model="resnet18", pretrained=False, scheme="end_to_end", resolution=28, lr=1e-3,
                weight_decay=0.0, batch_size=64, epochs=3, augmentation="none"),
    TrainConfig(model="resnet18", pretrained=True, scheme="linear_probing", resolution=64, lr=1e-3,
                weight_decay=0.0, batch_size=64, epochs=10, augmentation="none"),
]


def _records() -> list[RunRecord]:
    base = synthetic_records(per_dataset=12)
    extra = []
    for d, (name, *_rest) in enumerate(DATASETS):
        meta = next(r.meta_features for r in base if r.base_dataset == name)
        for i, cfg in enumerate(PORTFOLIO):
            acc = true_acc(cfg.pretrained, cfg.resolution, (d - 2.5) * 0.015) - 0.02 * i
            for source in ("own", "published"):
                extra.append(RunRecord(
                    run_id=RunRecord.stable_id("portfolio", name, i, source),
                    dataset_id=f"synthetic:{name}", base_dataset=name, meta_features=meta,
                    config=cfg, outcome=Outcome(test_acc=float(acc)),
                    provenance=Provenance(source=source, citation="synthetic (tests)"
                                          if source == "published" else None)))
    return base + extra


@pytest.fixture(scope="module")
def report() -> dict:
    return prod.evaluate_production(_records(), bases=["alpha", "beta"], progress=False)


def test_every_task_is_answered_by_recommend_and_scored(report) -> None:
    assert report["kind"] == "lodo-production" and report["candidates"] == "evidence"
    rows = report["tasks"]
    assert {r["base_dataset"] for r in rows} == {"alpha", "beta"}
    assert {r["source"] for r in rows} == {"own", "published"}
    for r in rows:
        assert r["budget"] == (prod.OWN_BUDGET if r["source"] == "own" else prod.PUBLISHED_BUDGET)
        assert r["evaluable"] and r["supported"] and r["tier"] in ("recorded", "shortened")
        assert 0.0 <= r["regret"] <= 1.0 and r["rank"] >= 1
        assert len(r["widths"]) == r["n_configs"] and 0 <= r["n_covered"] <= r["n_configs"]
    everything = report["summary"]["all"]
    assert everything["n_tasks"] == len(rows) and everything["unevaluable_rate"] == 0.0
    assert everything["regret_mean"] == pytest.approx(np.mean([r["regret"] for r in rows]))
    assert "| all |" in prod.to_markdown(report)


def test_the_free_sample_is_the_before_view() -> None:
    before = prod.evaluate_production(_records(), bases=["alpha"], candidates="free",
                                      progress=False)
    assert before["candidates"] == "free"
    assert all(r["tier"] == "extrapolated" for r in before["tasks"] if "tier" in r)
    with pytest.raises(ValueError, match="candidates"):
        prod.evaluate_production(_records(), candidates="magic", progress=False)


def test_coverage_and_unevaluable_rate_are_computed_from_the_rows() -> None:
    rows = [
        {"evaluable": True, "regret": 0.2, "regret_points": 2.0, "rank": 2.0, "supported": True,
         "pick_covered": True, "acc_lo": 0.5, "acc_hi": 0.9, "n_covered": 3, "widths": [0.4, 0.2, 0.3, 0.1]},
        {"evaluable": False, "supported": True, "n_covered": 1, "widths": [0.5]},
        {"evaluable": True, "regret": 0.0, "regret_points": 0.0, "rank": 1.0, "supported": False,
         "pick_covered": False, "acc_lo": 0.6, "acc_hi": 0.7, "n_covered": 0, "widths": [0.1]},
    ]
    s = prod.summarise(rows)
    assert s["n_tasks"] == 3 and s["n_evaluable"] == 2
    assert s["unevaluable_rate"] == pytest.approx(1 / 3)
    assert s["coverage"] == pytest.approx(4 / 6) and s["n_intervals"] == 6
    assert s["width_median_points"] == pytest.approx(25.0)
    assert s["pick_coverage"] == pytest.approx(0.5) and s["regret_mean"] == pytest.approx(0.1)
    assert s["n_supported"] == 2


def test_a_pick_outside_the_tasks_ok_configs_is_scored_by_its_other_recorded_outcome() -> None:
    """A timed-out run of the pick on the task itself, else an ok run of it on the same data in the
    other source, scores it (normalised by the task's own configs, regret clipped to [0, 1])."""
    from eval.baselines import config_key
    from eval.lodo import build_tasks

    records = _records()
    frame = prod.records_frame(records)
    task = next(t for t in build_tasks(frame) if t.base_dataset == "alpha" and t.source == "published")
    cfg = dict(PORTFOLIO[0].model_dump(), lr=3e-4)  # never run on alpha
    key = config_key(cfg)
    assert key not in task.keys

    def row(status: str, source: str, acc: float) -> dict:
        return {"dataset_id": task.dataset_id, "status": status, "prov.source": source,
                "out.test_acc": acc, **{f"cfg.{k}": v for k, v in cfg.items()}}

    assert prod.Outcomes(frame).find(task, key) is None
    other = prod.Outcomes(pd.DataFrame([row("ok", "own", 0.5)]))
    assert other.find(task, key) == (0.5, "same data, other setup")
    both = prod.Outcomes(pd.DataFrame(
        [row("ok", "own", 0.5), row("timeout", "published", 0.4), row("failed", "published", 0.9)]))
    assert both.find(task, key) == (0.4, "timed out")  # the task's own (timed-out) run first
    best, worst = task.values.max(), task.values.min()
    assert prod.score_outcome(task, best + 0.1)["regret"] == 0.0
    assert prod.score_outcome(task, worst - 0.1)["regret"] == 1.0
    mid = (best + worst) / 2
    assert prod.score_outcome(task, mid)["regret"] == pytest.approx(0.5)
