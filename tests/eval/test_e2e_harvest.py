"""Harvesting the end-to-end benchmark's runs as evidence (`eval.e2e.harvest`) and the threads
benchmark of the CPU time model (`eval.cost_threads`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval import cost_threads
from eval.e2e.harvest import HARVEST_PREFIX, harvest, harvested, main
from knowledge.metafeatures import from_traits
from knowledge.runs.record import Outcome, Provenance, RunRecord, record_to_row
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig
from tests.knowledge.synthetic_runs import synthetic_frame


def _run(study: str | None, threads: int | None = None, seconds: float | None = 12.0) -> RunRecord:
    return RunRecord(
        dataset_id="digits", base_dataset="digits", meta_features=from_traits(n_instances=1000, n_classes=10),
        config=TrainConfig(model="resnet18", resolution=28), status="ok",
        outcome=Outcome(test_acc=0.9, train_seconds=seconds, epochs_completed=10),
        provenance=Provenance(source="own", device="AMD EPYC", study=study, threads=threads))


def test_benchmark_runs_are_copied_as_evidence_with_their_threads(tmp_path) -> None:
    source, target = RunStore(tmp_path / "e2e.sqlite"), RunStore(tmp_path / "runs.sqlite")
    old, new = _run("e2e:digits:tpe-s0"), _run("e2e:digits:recommended-s1", threads=4)
    source.add_many([old, new, _run("metallmix:digits:tpe#0")])  # a campaign run: not copied
    counts = harvest(source, target, threads_if_missing=2)
    assert counts == {("digits", "ok"): 2}
    copies = {r.provenance.study: r for r in target.query()}
    assert set(copies) == {f"{HARVEST_PREFIX}:digits:tpe-s0", f"{HARVEST_PREFIX}:digits:recommended-s1"}
    assert copies[f"{HARVEST_PREFIX}:digits:tpe-s0"].provenance.threads == 2  # filled
    assert copies[f"{HARVEST_PREFIX}:digits:recommended-s1"].provenance.threads == 4  # kept
    assert all(r.run_id not in (old.run_id, new.run_id) for r in copies.values())
    assert copies[f"{HARVEST_PREFIX}:digits:tpe-s0"].outcome == old.outcome
    harvest(source, target, threads_if_missing=2)
    assert len(target) == 2  # copying again adds nothing


def test_a_timed_run_without_threads_needs_the_fill_value(tmp_path) -> None:
    with pytest.raises(ValueError, match="records no threads: give --threads-if-missing"):
        harvested(_run("e2e:digits:tpe-s0"), None)
    assert harvested(_run("e2e:digits:tpe-s0", seconds=None), None).provenance.threads is None
    with pytest.raises(ValueError, match="is not a benchmark run"):
        harvested(_run("metallmix:digits:tpe#0"), 2)


def test_the_cli_dry_run_writes_nothing(tmp_path, capsys) -> None:
    RunStore(tmp_path / "e2e.sqlite").add(_run("e2e:digits:default-s0"))
    assert main(["--from", str(tmp_path / "e2e.sqlite"), "--to", str(tmp_path / "runs.sqlite"),
                 "--threads-if-missing", "2", "--dry-run"]) == 0
    assert "1 run(s) would be copied" in capsys.readouterr().out
    assert len(RunStore(tmp_path / "runs.sqlite")) == 0


def test_the_threads_benchmark_shows_the_thread_aware_model_closer() -> None:
    frame = synthetic_frame()
    timed = frame[frame["out.train_seconds"].notna()].copy()
    timed["prov.threads"] = 2.0  # ResNet-18 1.6x faster on two threads, the others not
    timed["out.train_seconds"] /= np.where(timed["cfg.model"].eq("resnet18"), 1.6, 1.0)
    timed["run_id"] += "-2t"
    report = cost_threads.evaluate(pd.concat([frame, timed], ignore_index=True))
    assert report["n_multi_thread_runs"] == len(timed)
    resnet = report["per_model"]["resnet18"]
    assert resnet["before"]["signed_median_log_err"] > 0.3  # 1-thread times: over-predicted
    assert abs(resnet["after"]["signed_median_log_err"]) < 0.15
    assert "| **pooled** |" in cost_threads.to_markdown({**report, "created_at": "t", "machine": "m",
                                                          "frame": "f"})
    with pytest.raises(SystemExit, match="no timed run with more than one thread"):
        cost_threads.evaluate(frame)


def test_record_rows_carry_the_threads() -> None:
    assert record_to_row(_run("x", threads=3))["prov.threads"] == 3
