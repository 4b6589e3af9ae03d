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
catalogue) or, without it, `FALLBACK_RATIOS` (public figures). Inference ratios stand in for
training ratios (same kernels, both compute-bound at these batch sizes; an assumption).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from knowledge.errors import ConfigError
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

# Throughput relative to an RTX 3090 (AMP training) when the device catalogue is absent: public
# figures (NVIDIA Deep Learning Examples / Lambda ResNet-50 mixed-precision training throughputs,
# rounded), NOT measured here.
FALLBACK_RATIOS: dict[str, tuple[str, float]] = {
    "mps": ("Apple GPU (MPS)", 0.12),
    "t4": ("NVIDIA T4", 0.30),
    "l4": ("NVIDIA L4", 0.50),
    "a10": ("NVIDIA A10", 0.70),
    "v100": ("NVIDIA V100", 0.90),
    "a100": ("NVIDIA A100", 1.9),
    "h100": ("NVIDIA H100", 3.2),
}
# Device spellings that name a GPU measured in timm's inference files.
MEASURED_ALIASES: dict[str, str] = {
    "rtx3090": "rtx3090", "3090": "rtx3090",
    "rtx4090": "rtx4090", "4090": "rtx4090",
    "rtx5090": "rtx5090", "5090": "rtx5090",
    # timm measured the 300 W Max-Q card; the full 600 W RTX Pro 6000 stays the catalogue's
    "rtxpro6000maxq": "rtx_pro6000_maxq", "pro6000maxq": "rtx_pro6000_maxq",
}
# Multi-GPU data parallel: `budget.parallel_factor` (the budget's documented rule: 0.9 per
# doubling of the cards); without it, each GPU beyond the first adds 90 % of one (an assumption).
MULTI_GPU_EFFICIENCY = 0.9


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
        from knowledge.metalearner.devices import get_device  # the device catalogue

        d = get_device(device)
        if d.rel_3090 is not None and d.kind != "cpu":
            return float(d.rel_3090), d.label, d.rel_source
    except (ImportError, ConfigError, KeyError, ValueError, AttributeError):
        pass
    if device in FALLBACK_RATIOS:
        label, ratio = FALLBACK_RATIOS[device]
        return ratio, label, "public figure"
    raise KeyError(f"no throughput ratio for device {device!r}")


def multi_gpu_factor(n_devices: int) -> float:
    """Throughput of `n_devices` GPUs relative to one (data parallel: `budget.parallel_factor`,
    else `MULTI_GPU_EFFICIENCY` per extra GPU)."""
    n = max(int(n_devices or 1), 1)
    try:
        from knowledge.metalearner.budget import parallel_factor
    except ImportError:
        return 1.0 + MULTI_GPU_EFFICIENCY * (n - 1)
    return float(parallel_factor(n))


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


# --- build ---------------------------------------------------------------------------------------
def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _family(name: str) -> str:
    return "vit" if re.search(r"vit|deit|eva|beit|swin|xcit|cait", name) else "cnn"


def scaling_fit(infer: list[dict[str, str]], train: list[dict[str, str]]) -> dict[str, Any]:
    """Compare throughput ~ 1/pixels with ~ 1/GMACs (and a fitted exponent of GMACs) on timm's own
    figures: every pair of sizes of the same architecture (same name with the size suffix
    stripped, same parameter count in M rounded) in the RTX 3090 inference file. Median
    |log(predicted / actual)| per rule and family, and the exponent alpha of GMACs (least squares
    through the origin on log ratios)."""
    groups: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}
    for r in infer:
        key = (re.sub(r"_\d{2,4}$", "", r["model"]), round(float(r["param_count"] or 0)))
        size, ips, g = int(r["infer_img_size"]), float(r["infer_samples_per_sec"]), float(
            r["infer_gmacs"] or 0)
        if g > 0 and ips > 0:
            groups.setdefault(key, {}).setdefault(size, (ips, g))
    pairs = []  # (family, log actual ratio, log pixel ratio, log gmacs ratio)
    for (name, _), sizes in groups.items():
        items = sorted(sizes.items())
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (s1, (i1, g1)), (s2, (i2, g2)) = items[i], items[j]
                pairs.append((_family(name), math.log(i2 / i1), math.log((s1 / s2) ** 2),
                              math.log(g1 / g2)))
    xs, ys = [p[3] for p in pairs], [p[1] for p in pairs]
    alpha = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)

    def err(rows: list[tuple[str, float, float, float]], k: int, a: float = 1.0) -> float:
        return round(statistics.median(abs(p[1] - a * p[k]) for p in rows), 4) if rows else math.nan

    out: dict[str, Any] = {"alpha": round(alpha, 4), "n_pairs": len(pairs),
                           "source": f"{INFER_3090}: same architecture at several sizes"}
    for fam in ("all", "cnn", "vit"):
        rows = pairs if fam == "all" else [p for p in pairs if p[0] == fam]
        out[fam] = {"n_pairs": len(rows), "median_abs_log_err_pixels": err(rows, 2),
                    "median_abs_log_err_gmacs": err(rows, 3),
                    "median_abs_log_err_gmacs_alpha": err(rows, 3, alpha)}
    # the training file: one row per model; same architecture at several sizes (name suffix)
    tgroups: dict[tuple[str, int], dict[int, float]] = {}
    gm = {(r["model"], int(r["infer_img_size"])): float(r["infer_gmacs"] or 0) for r in infer}
    for r in train:
        key = (re.sub(r"_\d{2,4}$", "", r["model"]), round(float(r["param_count"] or 0)))
        tgroups.setdefault(key, {})[int(r["train_img_size"])] = (r["model"],
                                                                  float(r["train_samples_per_sec"]))
    tp = []
    for sizes in tgroups.values():
        items = sorted(sizes.items())
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (s1, (m1, i1)), (s2, (m2, i2)) = items[i], items[j]
                g1, g2 = gm.get((m1, s1), 0.0), gm.get((m2, s2), 0.0)
                tp.append((math.log(i2 / i1), math.log((s1 / s2) ** 2),
                           math.log(g1 / g2) if g1 > 0 and g2 > 0 else None))
    with_g = [p for p in tp if p[2] is not None]
    out["train_file"] = {
        "n_pairs": len(tp),
        "median_abs_log_err_pixels": round(statistics.median(abs(p[0] - p[1]) for p in tp), 4)
        if tp else None,
        "n_pairs_with_gmacs": len(with_g),
        "median_abs_log_err_pixels_same_pairs": round(statistics.median(
            abs(p[0] - p[1]) for p in with_g), 4) if with_g else None,
        "median_abs_log_err_gmacs": round(statistics.median(
            abs(p[0] - p[2]) for p in with_g), 4) if with_g else None,
        "median_abs_log_err_gmacs_alpha": round(statistics.median(
            abs(p[0] - alpha * p[2]) for p in with_g), 4) if with_g else None,
    }
    return out


def _by_key(rows: list[dict[str, str]]) -> dict[tuple[str, int], float]:
    return {(r["model"], int(r["infer_img_size"])): float(r["infer_samples_per_sec"])
            for r in rows if float(r["infer_samples_per_sec"] or 0) > 0}


def _median_ratio(chain: list[tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]]
                  ) -> tuple[float, int]:
    """Median over the models common to every file of the product of per-model ratios."""
    common = set.intersection(*(set(a) & set(b) for a, b in chain))
    ratios = [math.prod(b[k] / a[k] for a, b in chain) for k in common]
    return statistics.median(ratios), len(ratios)


def device_ratios(folder: Path) -> dict[str, dict[str, Any]]:
    """Measured inference-throughput ratios to the RTX 3090, from same-software file pairs:
    4090/3090 from the PyTorch 2.4 pair; 5090 and Pro 6000 via the PyTorch 2.9.1 4090 file
    (per model: X_pt291 / 4090_pt291 x 4090_pt240 / 3090_pt240)."""
    f = {name: _by_key(_read(folder / name)) for name in
         (INFER_3090, INFER_4090, INFER_4090_NEW, INFER_5090, INFER_PRO6000)}
    out: dict[str, dict[str, Any]] = {"rtx3090": {"label": "NVIDIA RTX 3090", "rel_3090": 1.0,
                                                  "rel_source": "reference"}}
    r, n = _median_ratio([(f[INFER_3090], f[INFER_4090])])
    out["rtx4090"] = {"label": "NVIDIA RTX 4090", "rel_3090": round(r, 3), "n_models": n,
                      "rel_source": f"timm inference benchmark median over {n} models",
                      "files": [INFER_3090, INFER_4090]}
    for key, label, name in (("rtx5090", "NVIDIA RTX 5090", INFER_5090),
                             ("rtx_pro6000_maxq", "NVIDIA RTX Pro 6000 Max-Q", INFER_PRO6000)):
        r, n = _median_ratio([(f[INFER_3090], f[INFER_4090]), (f[INFER_4090_NEW], f[name])])
        out[key] = {"label": label, "rel_3090": round(r, 3), "n_models": n,
                    "rel_source": f"timm inference benchmark median over {n} models",
                    "files": [INFER_3090, INFER_4090, INFER_4090_NEW, name]}
    r, n = _median_ratio([(f[INFER_4090], f[INFER_4090_NEW])])
    out["_software_pt240_to_pt291_on_4090"] = {"ratio": round(r, 3), "n_models": n,
                                               "note": "same GPU, newer PyTorch/CUDA: why the "
                                                       "ratios chain through same-software pairs"}
    return out


def build(folder: Path = SHARED_TIMM, out: Path = DATA_FILE) -> dict[str, Any]:
    """Derive `timm_throughput.json` from timm's CSVs in `folder` and write it to `out`."""
    train = _read(folder / TRAIN_CSV)
    infer = _read(folder / INFER_3090)
    train_by = {r["model"]: r for r in train}
    infer_by: dict[str, list[dict[str, str]]] = {}
    for r in infer:
        infer_by.setdefault(r["model"], []).append(r)
    scaling = scaling_fit(infer, train)
    models: dict[str, Any] = {}
    for key, spec in MODELS.items():
        if not spec.trainable:
            continue
        arch = base_name(key)
        row_name, why = (arch, None) if arch in train_by else TRAIN_PROXY.get(arch, (None, None))
        if row_name is None or row_name not in train_by:
            continue
        row = train_by[row_name]
        ips, size = float(row["train_samples_per_sec"]), int(row["train_img_size"])
        # GMACs from the model's own inference rows; SAM is listed only at 1024 px (global +
        # windowed attention), so it takes its proxy's
        own = [] if arch == "samvit_base_patch16" else infer_by.get(arch, [])
        proxy_rows = infer_by.get(row_name, [])
        gm_rows = own or proxy_rows
        if why and "inference ratio" in why and own and proxy_rows:  # scale by inference speed
            mine = {int(r["infer_img_size"]): float(r["infer_samples_per_sec"]) for r in own}
            theirs = {int(r["infer_img_size"]): float(r["infer_samples_per_sec"])
                      for r in proxy_rows}
            shared = sorted(set(mine) & set(theirs), key=lambda s: abs(s - size))
            if shared:
                ips *= mine[shared[0]] / theirs[shared[0]]
        ref = min(gm_rows, key=lambda r: abs(int(r["infer_img_size"]) - size))
        entry: dict[str, Any] = {
            "row": row_name, "train_ips": round(ips, 2), "train_size": size,
            "train_batch": int(row["train_batch_size"]),
            "train_step_ms": float(row["train_step_time"]),
            "param_count_m": float(row["param_count"]),
            "gmacs": float(ref["infer_gmacs"]), "gmacs_size": int(ref["infer_img_size"]),
            "gmacs_rows": {r["infer_img_size"]: float(r["infer_gmacs"]) for r in gm_rows},
            "source_rows": [f"{TRAIN_CSV}: {row_name}"]
                           + [f"{INFER_3090}: {r['model']} @{r['infer_img_size']}" for r in gm_rows],
        }
        if why:
            entry["proxy"] = why
        if arch in VIT_SHAPES:
            patch, depth, width = VIT_SHAPES[arch]
            t = (entry["gmacs_size"] // patch) ** 2 + 1
            entry["vit"] = {"patch": patch, "depth": depth, "width": width,
                            "attn_share": round(depth * 2 * t * t * width / (entry["gmacs"] * 1e9),
                                                4)}
        models[key] = entry
        entry["gmacs_at"] = {str(s): round(gmacs_at(entry, s), 4) for s in (28, 64, 128, 224)}
    table = {
        "about": "Training throughput (img/s, RTX 3090, AMP) per recommendable model, GMACs per "
                 "size, and GPU ratios to the RTX 3090; derived by `python -m "
                 "knowledge.metalearner.cost --build` from timm's results/ CSVs.",
        "license": "timm benchmark results: Apache-2.0. Ross Wightman, 'PyTorch Image Models' "
                   "(timm), doi:10.5281/zenodo.4414861; github.com/huggingface/pytorch-image-models "
                   "results/ at commit aa4b5850c1543fa488abf260f18390eda46cf85d (see "
                   "../shared/data/timm/SOURCE.md).",
        "scaling": scaling,
        "cap_img_per_s": MAX_IMG_PER_S,
        "models": models,
        "devices": device_ratios(folder),
    }
    out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    load_table.cache_clear()
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="derive the JSON from timm's CSVs")
    parser.add_argument("--timm", type=Path, default=SHARED_TIMM)
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    if args.build:
        table = build(args.timm, args.out)
        print(f"wrote {args.out}: {len(table['models'])} models; scaling {table['scaling']}")
        print({k: v.get("rel_3090", v.get("ratio")) for k, v in table["devices"].items()})


if __name__ == "__main__":
    main()


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
