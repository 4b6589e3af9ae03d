"""`knowledge.metalearner.cost`: GPU training time from timm's throughput benchmark (issue 14)."""

from __future__ import annotations

import json

import pytest

from knowledge.metafeatures import from_traits
from knowledge.metalearner import cost
from knowledge.metalearner.budget import Budget
from knowledge.metalearner.cost import (
    DATA_FILE,
    MAX_IMG_PER_S,
    device_ratio,
    device_seconds,
    gpu_estimate,
    gpu_throughput,
    load_table,
    train_ips_3090,
)
from knowledge.metalearner.devices import DEVICES
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner
from knowledge.metalearner.ranking import rank
from knowledge.search_space import MODELS, TrainConfig
from tests.knowledge.synthetic_runs import synthetic_frame

META = from_traits(n_instances=3000, n_classes=3, imbalance_ratio=2.5, height=128, modality="x-ray")


@pytest.fixture(scope="module")
def learner() -> MetaLearner:
    return MetaLearner(acc_params=dict(ACC_PARAMS, n_estimators=40, n_jobs=1)).fit(synthetic_frame())


# --- the shipped table ---------------------------------------------------------------------
def test_the_json_is_package_data_and_loads_without_shared(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(cost, "SHARED_TIMM", tmp_path / "no-such-folder")
    load_table.cache_clear()
    table = load_table()
    assert DATA_FILE.parent.name == "data" and DATA_FILE.parent.parent.name == "knowledge"
    assert "Apache-2.0" in table["license"]
    assert {k for k, s in MODELS.items() if s.trainable} <= set(table["models"])
    assert gpu_estimate(TrainConfig(model="resnet50", resolution=224), 1000, "a100") is not None


@pytest.mark.skipif(not (cost.SHARED_TIMM / cost.TRAIN_CSV).exists(), reason="needs ../shared")
def test_build_reproduces_the_shipped_json(tmp_path) -> None:
    built = cost.build(cost.SHARED_TIMM, tmp_path / "t.json")
    assert built == json.loads(DATA_FILE.read_text(encoding="utf-8"))


# --- throughput ----------------------------------------------------------------------------
def test_throughput_lookup_is_the_benchmark_row() -> None:
    assert train_ips_3090("vgg16", 224)[0] == pytest.approx(465.36)
    assert train_ips_3090("resnet18", 224)[0] == pytest.approx(2764.22)
    ips, row = train_ips_3090("vit_base_patch16_224.dino", 224)  # the pretrained tag stripped
    assert ips == pytest.approx(390.86) and row == "vit_base_patch16_224 @224"
    ips, row = train_ips_3090("legacy_xception", 299)  # a proxy row is said so
    assert ips == pytest.approx(385.56) and "proxy for legacy_xception" in row
    eva, _ = train_ips_3090("eva02_base_patch16_clip_224", 224)
    assert 0.5 * 390.86 < eva < 390.86  # ViT-B row x EVA-02 / ViT-B inference speed
    assert train_ips_3090("alexnet", 224) is None


def test_resolution_scaling() -> None:
    table = load_table()
    alpha = table["scaling"]["alpha"]
    assert 0.9 < alpha < 1.1
    cnn = train_ips_3090("resnet50", 112)[0] / train_ips_3090("resnet50", 224)[0]
    assert cnn == pytest.approx(4 ** alpha, rel=1e-6)  # CNN GMACs ~ pixels
    # ViT GMACs: tokens (linear layers) + tokens^2 (attention): faster than pixels at 448
    vit = train_ips_3090("vit_base_patch16_224", 224)[0] / train_ips_3090("vit_base_patch16_224", 448)[0]
    assert vit > 4 ** alpha
    # GMACs fit timm's own figures at least as well as pixels (stored with the table)
    fit = table["scaling"]["all"]
    assert fit["median_abs_log_err_gmacs_alpha"] <= fit["median_abs_log_err_pixels"]
    # tiny images saturate: capped, and said so
    ips, source = gpu_throughput("resnet18", 28, "rtx3090")
    assert ips == MAX_IMG_PER_S and "capped" in source


def test_device_ratio_measured_and_catalogue() -> None:
    assert device_ratio("rtx3090")[0] == 1.0
    ratio, _, source = device_ratio("rtx4090")
    assert 1.1 < ratio < 2.0 and source.startswith("timm inference benchmark median over")
    assert device_ratio("rtx5090")[0] > ratio
    t4 = device_ratio("t4")[0]
    assert t4 < 1.0 < device_ratio("a100")[0] < device_ratio("h100")[0]
    # the catalogue's figure, with its source; a device it does not know has no ratio
    assert device_ratio("t4") == (DEVICES["t4"].rel_3090, DEVICES["t4"].label, DEVICES["t4"].rel_source)
    with pytest.raises(KeyError, match="quadro"):
        device_ratio("quadro k2200")
    # the source names the ratio
    _, src = gpu_throughput("vgg16", 224, "t4")
    assert f"T4 ratio {DEVICES['t4'].rel_3090:.2f} (public figure" in src


def test_multi_gpu_scales_throughput() -> None:
    one = gpu_throughput("vgg16", 224, "a100")[0]
    two, source = gpu_throughput("vgg16", 224, "a100", n_devices=2)
    assert one < two < 2 * one and "2 GPUs" in source


def test_vgg16_on_a_t4_within_2x_of_timm() -> None:
    """Issue 14: VGG16, 224 px, 10 epochs, 10,000 images on a T4 (was predicted 21.1 h)."""
    config = TrainConfig(model="vgg16", resolution=224, epochs=10)
    est = gpu_estimate(config, 10_000, "t4")
    timm_derived = 10_000 * 10 / (465.36 * device_ratio("t4")[0])
    assert timm_derived / 2 <= est.seconds <= 2 * timm_derived
    assert est.seconds < 3600  # not 21 h
    assert est.source.startswith("timm RTX 3090 train benchmark (vgg16 @224) x NVIDIA T4 ratio")


def test_estimate_adds_evaluation_and_overhead() -> None:
    config = TrainConfig(model="resnet50", resolution=224, epochs=5)
    est = gpu_estimate(config, 7000, "rtx3090")
    train_only = 7000 * 5 / 826.06
    assert est.seconds > train_only + cost.STARTUP_S
    probe = gpu_estimate(config.model_copy(update={"scheme": "linear_probing"}), 7000, "rtx3090")
    assert probe.seconds < est.seconds
    assert gpu_estimate(config, None, "t4").seconds != gpu_estimate(config, None, "t4").seconds


# --- ranking and the card ------------------------------------------------------------------
def test_ranking_uses_the_cost_model_on_a_gpu_and_cpu_time_on_a_cpu(learner) -> None:
    config = TrainConfig(model="resnet18", resolution=64, epochs=10)
    gpu = rank(META, learner, candidates=[config], budget=Budget(device="a100"))[0]
    assert gpu.predicted_seconds == pytest.approx(gpu_estimate(config, 3000, "a100").seconds)
    assert gpu.time_source.startswith("timm RTX 3090 train benchmark (resnet18")
    cpu = rank(META, learner, candidates=[config], budget=Budget(device="cpu"))[0]
    assert cpu.time_source.startswith("CPU time model")
    assert cpu.predicted_seconds > gpu.predicted_seconds


def test_a_model_without_a_row_falls_back_to_cpu_time(monkeypatch) -> None:
    table = dict(load_table())
    table["models"] = {k: v for k, v in table["models"].items() if k != "resnet18"}
    monkeypatch.setattr(cost, "load_table", lambda path=None: table)
    configs = [TrainConfig(model="resnet18"), TrainConfig(model="vgg16")]
    seconds, sources = device_seconds(configs, 1000, "t4", [100.0, 200.0], 15.0)
    assert seconds[0] == 100.0 and "no timm benchmark row for resnet18" in sources[0]
    assert seconds[1] != 200.0 and sources[1].startswith("timm")


def test_the_card_shows_the_time_source(learner) -> None:
    from knowledge.recommend import recommend
    from knowledge.retrieval import HashingEmbedder, RunIndex
    from tests.knowledge.synthetic_runs import synthetic_records

    index = RunIndex.build(synthetic_records(per_dataset=4), HashingEmbedder(64), embed_text=False)
    rec = recommend(META, budget="one hour on an A100", learner=learner, index=index)
    assert rec.best.time_source
    assert f"Time estimate: {rec.best.time_source}." in rec.to_markdown()
