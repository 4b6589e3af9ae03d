"""Training time on a GPU from timm's published throughput benchmark (issue 14).

    est = gpu_estimate(config, n_instances=10_000, device="t4")
    est.seconds, est.images_per_sec, est.source
    # 'timm RTX 3090 train benchmark (vgg16 @224) x NVIDIA T4 ratio 0.28 (public figure, not
    #  measured here)'

Why: the CPU time model (`model.py`, learned from our own CPU-timed runs) divided by a rough
per-device speed-up (`budget.DEVICE_SPEEDUP`) was off by an order of magnitude on GPUs (VGG16, 224
px, 10 epochs on 10,000 images on a T4: 21.1 h predicted, where timm's benchmark trains VGG16 at
465 img/s on an RTX 3090, i.e. minutes on a T4; now 7.6 min, `eval/cost.py`). CPU times still
come from the learned model.

Model (all constants below, documented where defined):

    seconds = images_seen / throughput + STARTUP_S + PER_EPOCH_S x epochs
    images_seen = n x epochs x step                         (training; step = 1, or 1/3 for a
                                                             frozen backbone: a forward only)
                + n x (VAL_FRACTION x epochs + TEST_FRACTION) x EVAL_STEP_FRACTION
                                                            (val after every epoch, test once;
                                                             inference ~ 1/3 of a training step)
    throughput  = min(MAX_IMG_PER_S, train_img_per_s_3090(model, size) x device ratio x GPUs)
    train_img_per_s_3090(model, size) = timm train row x (GMACs(row size) / GMACs(size)) ** alpha

`size` is max(resolution, the model's `min_input`: smaller images are padded onto that canvas).
GMACs(size) scales with pixels for CNNs and with tokens (linear layers) plus tokens^2 (attention)
for ViTs; alpha is fitted on timm's own figures (the same architecture at several image sizes,
see `scaling_fit`; it and the comparison with plain pixel scaling are stored in the JSON).

Data: `knowledge/data/timm_throughput.json`, built by `python -m knowledge.metalearner.cost
--build` from ../shared/data/timm (timm's `results/` CSVs, Apache-2.0, Ross Wightman, "PyTorch
Image Models", doi:10.5281/zenodo.4414861). Runtime never reads ../shared.

Device ratios (throughput relative to an RTX 3090): measured from timm's inference benchmark for
the RTX 3090/4090/5090/Pro 6000 Max-Q (median over the models common to the files, chained through
same-software pairs, see `device_ratios`); others from `knowledge.metalearner.devices` (the device
catalogue). Inference ratios stand in for
training ratios (same kernels, both compute-bound at these batch sizes; an assumption).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from knowledge.errors import ConfigError
from knowledge.metalearner.device_text import parallel_factor
from knowledge.metalearner.devices import get_device
from knowledge.paths import PACKAGE_DATA
from knowledge.search_space import MODELS, TrainConfig

DATA_FILE = PACKAGE_DATA / "timm_throughput.json"
SHARED_TIMM = Path(__file__).resolve().parents[3] / "shared" / "data" / "timm"
TRAIN_CSV = "benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv"
INFER_3090 = "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"
INFER_4090 = "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv"
INFER_4090_NEW = "benchmark-infer-amp-nchw-pt291-cu128-4090.csv"
INFER_5090 = "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
INFER_PRO6000 = "benchmark-infer-amp-nchw-pt291-cu130-pro6000maxq.csv"

# Evaluation: val after every epoch and test once at the end (`training.launcher`); their sizes
# relative to the training split follow MedMNIST's 7:1:2 split (val = n/7, test = 2n/7); an
# inference image costs about a third of a training step (forward only, no backward/optimizer).
VAL_FRACTION = 1.0 / 7.0
TEST_FRACTION = 2.0 / 7.0
EVAL_STEP_FRACTION = 1.0 / 3.0
# Frozen backbone (linear probing): a forward pass only, about a third of a training step (the
# same factor as the CPU prior, `model.LINEAR_PROBE_FACTOR`).
FROZEN_STEP_FRACTION = 1.0 / 3.0
# Fixed overhead: process + CUDA start, model build and pretrained-weight load, cuDNN autotune
# (~30 s), and per epoch the data-loader workers' start and the val pass's setup (~2 s). Rough
# figures for a single-GPU PyTorch job with weights already cached; not measured here (no GPU).
STARTUP_S = 30.0
PER_EPOCH_S = 2.0
# Saturation for tiny images (28-64 px): kernel launches, the Python loop and data loading
# dominate, so throughput stops growing as the image shrinks. Cap: 10,000 img/s, the fastest
# training row in timm's RTX 3090 benchmark (tinynet_e, 10,001 img/s at 106 px, synthetic data on
# the GPU: a real loader is no faster). Applies on every device (the loader is CPU-bound).
MAX_IMG_PER_S = 10_000.0

# Recommendable models without their own train row: the benchmark row that stands in, and why.
TRAIN_PROXY: dict[str, tuple[str, str]] = {
    "legacy_xception": ("xception", "timm <0.6 named legacy_xception 'xception' (same network)"),
    "vit_base_patch16_clip_224": ("vit_base_patch16_224", "same ViT-B/16 network (CLIP weights)"),
    "eva02_base_patch16_clip_224": ("vit_base_patch16_224",
                                    "ViT-B/16 row x EVA-02/ViT-B inference ratio at 224 px"),
    "samvit_base_patch16": ("vit_base_patch16_224",
                            "ViT-B/16 row (same width and depth; SAM's windowed attention at "
                            "224 px costs about the same)"),
}
# ViT shapes (patch, depth, width) for the attention term of GMACs(size).
VIT_SHAPES: dict[str, tuple[int, int, int]] = {
    "vit_tiny_patch16_224": (16, 12, 192),
    "vit_base_patch16_224": (16, 12, 768),
    "vit_base_patch16_clip_224": (16, 12, 768),
    "eva02_base_patch16_clip_224": (16, 12, 768),
    "samvit_base_patch16": (16, 12, 768),
}

# Device spellings that name a GPU measured in timm's inference files.
MEASURED_ALIASES: dict[str, str] = {
    "rtx3090": "rtx3090", "3090": "rtx3090",
    "rtx4090": "rtx4090", "4090": "rtx4090",
    "rtx5090": "rtx5090", "5090": "rtx5090",
    # timm measured the 300 W Max-Q card; the full 600 W RTX Pro 6000 stays the catalogue's
    "rtxpro6000maxq": "rtx_pro6000_maxq", "pro6000maxq": "rtx_pro6000_maxq",
}


def base_name(model: str) -> str:
    """The timm architecture of a model key: the pretrained tag ('.dino', '.sa1b') stripped."""
    return model.split(".", 1)[0]


def effective_size(config: TrainConfig) -> int:
    """The image size the network sees: smaller inputs are padded onto `min_input`."""
    spec = MODELS.get(config.model)
    return max(int(config.resolution), spec.min_input if spec else 0)


# --- runtime -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_table(path: str | None = None) -> dict[str, Any]:
    """The shipped throughput table (`DATA_FILE`)."""
    return json.loads(Path(path or DATA_FILE).read_text(encoding="utf-8"))


def gmacs_at(entry: dict[str, Any], size: int) -> float:
    """GMACs of one forward pass at `size` px: pixels for CNNs; tokens + tokens^2 for ViTs."""
    g, ref = float(entry["gmacs"]), int(entry["gmacs_size"])
    if entry.get("vit"):
        patch = int(entry["vit"]["patch"])
        t, t_ref = (size // patch) ** 2 + 1, (ref // patch) ** 2 + 1
        f = float(entry["vit"]["attn_share"])
        r = t / t_ref
        return g * ((1 - f) * r + f * r * r)
    return g * (size / ref) ** 2


def train_ips_3090(model: str, size: int, table: dict[str, Any] | None = None
                   ) -> tuple[float, str] | None:
    """Training img/s on an RTX 3090 (AMP) at `size` px, uncapped, and where it came from; None
    when the model has no benchmark row."""
    table = table or load_table()
    entry = table["models"].get(model)
    if entry is None:
        return None
    alpha = float(table["scaling"]["alpha"])
    ips = float(entry["train_ips"]) * (gmacs_at(entry, entry["train_size"])
                                       / gmacs_at(entry, size)) ** alpha
    row = f"{entry['row']} @{entry['train_size']}"
    if entry.get("proxy"):
        row += f", proxy for {base_name(model)}"
    return ips, row


def device_ratio(device: str, table: dict[str, Any] | None = None) -> tuple[float, str, str]:
    """(throughput relative to an RTX 3090, label, source) of a device key."""
    table = table or load_table()
    key = re.sub(r"[^a-z0-9]", "", device.lower())
    measured = table["devices"].get(MEASURED_ALIASES.get(key, ""))
    if measured:
        return float(measured["rel_3090"]), measured["label"], measured["rel_source"]
    try:
        d = get_device(device)
    except ConfigError:
        d = None
    if d is not None and d.rel_3090 is not None and d.kind != "cpu":
        return float(d.rel_3090), d.label, d.rel_source
    raise KeyError(f"no throughput ratio for device {device!r}")


def multi_gpu_factor(n_devices: int) -> float:
    """Throughput of `n_devices` GPUs relative to one (data parallel, the budget's documented rule:
    `device_text.parallel_factor`, 0.9 per doubling of the cards)."""
    return float(parallel_factor(max(int(n_devices or 1), 1)))


@dataclass(frozen=True)
class GpuEstimate:
    seconds: float  # NaN when n_instances is unknown
    images_per_sec: float  # training throughput used (after ratio, GPUs and cap)
    source: str


def gpu_throughput(model: str, size: int, device: str, n_devices: int = 1,
                   table: dict[str, Any] | None = None) -> tuple[float, str] | None:
    """Training img/s of `model` at `size` px on `device` (x `n_devices`), and its source."""
    table = table or load_table()
    base = train_ips_3090(model, size, table)
    if base is None:
        return None
    ips, row = base
    ratio, label, rel_source = device_ratio(device, table)
    gpus = multi_gpu_factor(n_devices)
    ips = ips * ratio * gpus
    source = f"timm RTX 3090 train benchmark ({row})"
    if abs(ratio - 1.0) > 1e-9:
        source += f" x {label} ratio {ratio:.2f} ({rel_source.split(':')[0]})"
    if gpus != 1.0:
        source += f" x {n_devices} GPUs ({gpus:.1f}x)"
    if ips > MAX_IMG_PER_S:
        ips, source = MAX_IMG_PER_S, source + f", capped at {MAX_IMG_PER_S:,.0f} img/s"
    return ips, source


def gpu_estimate(config: TrainConfig, n_instances: float | None, device: str,
                 n_devices: int = 1, table: dict[str, Any] | None = None) -> GpuEstimate | None:
    """Predicted training seconds of `config` on `device` (module doc); None when the model has
    no benchmark row (the caller falls back to CPU time / speed-up)."""
    found = gpu_throughput(config.model, effective_size(config), device, n_devices, table)
    if found is None:
        return None
    ips, source = found
    n = float(n_instances) if n_instances is not None else math.nan
    epochs = float(config.epochs)
    if config.scheme == "knn":  # one forward pass over the training images, no epochs
        step, epochs = FROZEN_STEP_FRACTION, 1.0
    else:
        step = FROZEN_STEP_FRACTION if config.scheme == "linear_probing" else 1.0
    images = n * epochs * step + n * (VAL_FRACTION * epochs + TEST_FRACTION) * EVAL_STEP_FRACTION
    seconds = images / ips + STARTUP_S + PER_EPOCH_S * epochs
    return GpuEstimate(seconds=seconds, images_per_sec=ips, source=source)


def cpu_source(device: str, speedup: float, model: str | None = None) -> str:
    """Where a time that comes from the CPU time model came from."""
    if device == "cpu":
        return "CPU time model (our own CPU-timed runs)"
    why = f"; no timm benchmark row for {model}" if model else ""
    return f"CPU time model / {device} speed-up {speedup:g} (rough public ratio{why})"


def device_seconds(configs: list[TrainConfig], n_instances: float | None, device: str,
                   cpu_seconds: Any, speedup: float, n_devices: int = 1
                   ) -> tuple[Any, list[str]]:
    """Per config: predicted seconds on `device` and their source. A CPU keeps `cpu_seconds`
    (the learned CPU time model, already divided by `speedup`); a GPU / Apple device uses
    `gpu_estimate`, falling back to `cpu_seconds` for models without a benchmark row."""
    import numpy as np

    seconds = np.array(cpu_seconds, dtype="float64", copy=True)
    if device == "cpu":
        return seconds, [cpu_source(device, speedup)] * len(configs)
    sources: list[str] = []
    memo: dict[tuple[str, int, str, int], GpuEstimate | None] = {}
    for i, c in enumerate(configs):
        key = (c.model, effective_size(c), c.scheme, c.epochs)
        if key not in memo:
            try:
                memo[key] = gpu_estimate(c, n_instances, device, n_devices)
            except KeyError:  # a device without a throughput ratio: the old path
                memo[key] = None
        est = memo[key]
        if est is None:
            sources.append(cpu_source(device, speedup, c.model if key[0] not in
                                      load_table()["models"] else None))
        else:
            seconds[i] = est.seconds
            sources.append(est.source)
    return seconds, sources


# The table's build (`throughput_build`) is imported only for `--build` or when one of its names is
# asked for here, so the runtime never loads it.
_BUILD_NAMES = frozenset({"build", "device_ratios", "main", "scaling_fit"})


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from knowledge.metalearner import throughput_build  # lazy: import cycle (it imports cost)

        return getattr(throughput_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # python -m knowledge.metalearner.cost --build
    from knowledge.metalearner.throughput_build import main

    main()
