"""`knowledge.metalearner.memory`: will a config fit the GPU's memory (issue 14 item 4)."""

from __future__ import annotations

import json

import pytest

from knowledge.metalearner import memory
from knowledge.metalearner.memory import (
    TIMM_MEMORY_JSON,
    estimate_peak,
    fit_to_memory,
    fits,
    memory_line,
)
from knowledge.runs.calibration import (
    CalibrationRecord,
    append_calibration,
    load_calibration,
)
from knowledge.search_space import MODELS, TrainConfig

VIT = TrainConfig(model="vit_base_patch16_224", resolution=224, batch_size=256)
R18 = TrainConfig(model="resnet18", resolution=64, batch_size=128)


@pytest.fixture(autouse=True)
def _no_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("METALLMIX_CALIBRATION", str(tmp_path / "calibration.jsonl"))


def test_shipped_table_covers_the_search_space() -> None:
    table = json.loads(TIMM_MEMORY_JSON.read_text())["models"]
    trainable = [m for m, s in MODELS.items() if s.trainable]
    assert set(trainable) <= set(table)
    assert table["resnet50"]["params_m"] == pytest.approx(25.56)
    assert [224, 11.11] in table["resnet50"]["points"]


def test_estimates_are_of_the_known_order() -> None:
    gb = {m: estimate_peak(model=m, resolution=224, batch_size=64, amp=True).total_gb
          for m in ("resnet18", "resnet50", "vit_base_patch16_224", "vgg16")}
    assert 1 < gb["resnet18"] < gb["resnet50"] < gb["vgg16"] < gb["vit_base_patch16_224"] < 16
    assert 3 < gb["resnet50"] < 7  # NVIDIA: batch 256 with AMP fits a 16 GB V100
    fp32 = estimate_peak(model="resnet50", resolution=224, batch_size=64, amp=False).total_gb
    assert fp32 > 1.5 * gb["resnet50"]
    lp = estimate_peak(model="resnet50", resolution=224, batch_size=64, scheme="linear_probing")
    assert lp.total_gb < 0.3 * gb["resnet50"] and lp.gradients_mb < 5
    sgd = estimate_peak(model="vgg16", resolution=224, batch_size=64, optimizer="sgd")
    adam = estimate_peak(model="vgg16", resolution=224, batch_size=64, optimizer="adamw")
    assert adam.optimizer_mb == pytest.approx(2 * sgd.optimizer_mb)


def test_vit_b16_batch_256_does_not_fit_a_gtx_1070_as_is() -> None:
    ok, batch, note = fits(VIT, "gtx1070")  # 8 GB
    assert not ok or batch < 256
    if ok:
        assert batch >= memory.MIN_BATCH and "256 → " in note and "lr" in note
        assert estimate_peak(VIT, batch_size=batch).total_gb <= 8 * memory.USABLE_FRACTION
    # the learning rate is left alone: the candidate only gets the smaller batch
    kept, shrunk_from = fit_to_memory([VIT], "gtx1070")
    assert all(c.batch_size < 256 and c.lr == VIT.lr for c in kept)
    assert shrunk_from == {kept[0].key(): 256}
    assert memory_line(kept[0], "gtx1070", 256).startswith(f"batch 256 → {kept[0].batch_size} to fit 8 GB")
    assert memory_line(kept[0], "gtx1070").startswith("estimated peak memory")  # not told: no claim


def test_a_model_too_big_even_at_the_smallest_batch_is_dropped() -> None:
    huge = TrainConfig(model="vit_base_patch16_224", resolution=1024, batch_size=64)
    ok, batch, note = fits(huge, 8.0)
    assert (ok, batch) == (False, 0) and "does not fit" in note
    assert fit_to_memory([huge, R18], 8.0) == ([R18], {})


def test_resnet18_at_64_px_fits_anything() -> None:
    for device in ("gtx1070", "t4", "mps", "h100", 4.0):
        assert fits(R18, device) == (True, 128, None)
    assert fits(R18, "cpu") == (True, 128, None)  # no memory check on a CPU
    line = memory_line(R18, "t4")
    assert line.startswith("estimated peak memory") and line.endswith("of 16 GB")
    assert memory_line(R18, "cpu") is None


def test_measured_calibration_replaces_the_estimate(tmp_path) -> None:
    rec = {"device": "NVIDIA H100", "device_type": "cuda", "model": "resnet50", "resolution": 224,
           "amp": True}
    append_calibration([CalibrationRecord(batch_size=32, peak_memory_mb=2000.0, **rec),
                        CalibrationRecord(batch_size=64, peak_memory_mb=3500.0, **rec)])
    assert len(load_calibration()) == 2
    e = estimate_peak(model="resnet50", resolution=224, batch_size=64, amp=True)
    assert e.measured and e.total_mb == pytest.approx(3500 + memory.CUDA_OVERHEAD_MB)
    e128 = estimate_peak(model="resnet50", resolution=224, batch_size=128, amp=True)
    assert e128.total_mb == pytest.approx(3500 + 64 * 1500 / 32 + memory.CUDA_OVERHEAD_MB)
    assert "measured" in memory_line(TrainConfig(model="resnet50", resolution=224), "t4")
    assert not estimate_peak(model="resnet50", resolution=224, batch_size=64, amp=False).measured


def test_cpu_calibration_reports_its_error() -> None:
    out = memory.calibrate_cpu()
    assert out["n"] > 100
    assert {"median_abs_mb", "median_rel", "rmse_mb"} <= set(out["fit_error"])
    assert out["fit"]["act_factor"] > 0


def test_ranking_shrinks_or_drops_on_a_small_gpu_and_the_card_says_so() -> None:
    from knowledge.metalearner.budget import Budget
    from knowledge.metalearner.ranking import RankedConfig, _constrained
    from knowledge.recommend import _memory_line

    t4 = Budget(device="t4")
    big = TrainConfig(model="vit_base_patch16_224", resolution=224, batch_size=512)
    chosen, shrunk_from = _constrained([big, R18], t4, False, None, learner=None)  # type: ignore[arg-type]
    assert R18 in chosen and big not in chosen
    shrunk = next(c for c in chosen if c.model == big.model)
    assert shrunk.batch_size < 512
    assert shrunk_from == {shrunk.key(): 512}
    ranked = RankedConfig(config=shrunk, predicted_acc=0.9, acc_lo=0.8, acc_hi=0.95, rank=1,
                          device="t4", batch_shrunk_from=shrunk_from[shrunk.key()])
    assert _memory_line(ranked, t4).startswith(f"batch 512 → {shrunk.batch_size} to fit 16 GB")
    assert _memory_line(ranked, Budget(device="cpu")) is None  # the CPU budget is not checked
