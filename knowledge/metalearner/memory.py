"""Will it fit? A peak-memory estimate for training one config on one device.

    estimate_peak(TrainConfig(model="resnet50", resolution=224, batch_size=64))   # MemoryEstimate
    fits(config, "t4")            # (True, 64, None) | (True, 32, "batch 64 -> 32 ...") | (False, 0, "...")
    fit_to_memory(configs, "t4")  # the candidate filter `constraints._constrained` uses on GPU budgets

The model (all in MB, 1 MB = 2**20 bytes):

    peak = weights + gradients + optimizer state + activations + overhead

* weights: params x 4 bytes (fp32 master weights; AMP autocasts per op and keeps them fp32).
* gradients: the trainable params x 4 bytes (end-to-end: all; linear probing: the head only).
* optimizer state: trainable params x 4 bytes x copies (AdamW/Adam 2 moments, SGD 1 momentum).
* activations: batch x A(model, resolution) x bytes (4 fp32, 2 AMP) x ACT_FACTOR. A is timm's
  activation count (`infer_macts`, millions per image, from its inference benchmark, shipped in
  `knowledge/data/timm_memory.json`) scaled with the pixel count from the nearest benchmarked
  resolution. Training keeps roughly every activation for the backward pass, plus the saved
  inputs of norms/activations/dropout that timm's count leaves out: ACT_FACTOR (default 3.0)
  is that multiplier. It is set from public figures (NVIDIA's ResNet-50 recipe trains batch 256
  with AMP / 112 in fp32 per 16 GB V100, i.e. about 55 / 130 MB per 224 px image vs 11.1 M
  activations in timm = 22 / 44 MB: a factor of 2.5-3) and checked against our own CPU peaks
  (`calibrate_cpu`, see below). Linear probing runs the frozen backbone without autograd, so only
  the largest transient layer outputs are alive: LP_ACT_FRACTION (0.1) of the training figure.
* overhead: the CUDA context, cuDNN/cuBLAS workspaces and allocator fragmentation: CUDA_OVERHEAD_MB
  (400 MB; the context alone is about 300-500 MB depending on the driver and GPU).

A config fits a device when the estimate is at most USABLE_FRACTION (90 %) of its memory. Where
`eval/calibrate_gpu.py` has measured the same model/resolution/AMP on a CUDA GPU
(`knowledge.runs.calibration`), the measured `max_memory_allocated` replaces weights + optimizer +
activations (linear in the batch size between/beyond the measured batches).

Calibration on our CPU runs (`calibrate_cpu`): CPU peak RSS = process baseline (Python, torch,
timm) + the dataset (uint8, all splits in memory) + model states + activations. A least-squares fit
of those four terms on the 664 recorded CPU peaks (`knowledge/data/meta_dataset.parquet`) is
reported by `calibrate_cpu()`; the runs are small models at 28-64 px, where the activation term is
10-300 MB against a 1-5 GB RSS dominated by allocator caching, so it checks the order of magnitude
of ACT_FACTOR rather than pinning it down (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from knowledge.paths import PACKAGE_DATA
from knowledge.runs.calibration import measured
from knowledge.search_space import MODELS, TrainConfig

TIMM_MEMORY_JSON = PACKAGE_DATA / "timm_memory.json"
SHARED_TIMM = Path(__file__).resolve().parents[3] / "shared" / "data" / "timm"
# the inference benchmark the figures come from (all hold infer_macts; this one first)
BENCHMARK_FILES = ("benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
                   "benchmark-infer-amp-nchw-pt291-cu128-4090.csv")
# models timed by eval/calibrate_gpu.py, shipped too so its records can be compared
EXTRA_MODELS = ("resnet18", "resnet50", "efficientnet_b0", "densenet121", "vgg16",
                "vit_base_patch16_224", "mobilenetv3_small_100")

MB = 2.0 ** 20
ACT_FACTOR = 3.0
LP_ACT_FRACTION = 0.1
CUDA_OVERHEAD_MB = 400.0
USABLE_FRACTION = 0.9
MIN_BATCH = 8
FALLBACK_MACTS_224 = 10.0  # a model timm never benchmarked: about a ResNet-50 (11 M at 224 px)
OPTIMIZER_COPIES = {"adamw": 2, "adam": 2, "sgd": 1}


# -- the shipped per-model figures ------------------------------------------------------------
def build_timm_memory(timm_dir: str | Path = SHARED_TIMM, out: str | Path | None = TIMM_MEMORY_JSON,
                      models: Iterable[str] | None = None) -> dict[str, Any]:
    """Build (and write to `out`, unless None) the compact per-model table the estimate reads:
    {model: {"params_m": P, "points": [[img_size, activations_m], ...]}} for every model of the
    search space (and `EXTRA_MODELS`), from timm's inference benchmark CSVs in `timm_dir`.
    A tagged name (`vit_base_patch16_224.dino`) uses its architecture's row."""
    import pandas as pd

    timm_dir = Path(timm_dir)
    frames = [pd.read_csv(timm_dir / f) for f in BENCHMARK_FILES if (timm_dir / f).is_file()]
    if not frames:
        raise FileNotFoundError(f"no timm inference benchmark CSV in {timm_dir}")
    wanted = list(dict.fromkeys([*(models if models is not None else MODELS), *EXTRA_MODELS]))
    table: dict[str, Any] = {}
    for name in wanted:
        arch = name.split(".")[0]
        for frame in frames:
            rows = frame[frame["model"] == arch]
            if len(rows):
                points = sorted({(int(r.infer_img_size), round(float(r.infer_macts), 3))
                                 for r in rows.itertuples()})
                table[name] = {"params_m": round(float(rows["param_count"].iloc[0]), 3),
                               "points": [list(p) for p in points]}
                break
    data = {
        "source": "timm results/ (github.com/huggingface/pytorch-image-models), "
                  f"{', '.join(BENCHMARK_FILES)}: infer_macts (millions of activations per image) "
                  "and param_count (millions) at infer_img_size",
        "models": table,
    }
    if out is not None:
        Path(out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        load_timm_memory.cache_clear()
    return data


@lru_cache(maxsize=1)
def load_timm_memory() -> dict[str, Any]:
    """The shipped table (`build_timm_memory`); {} when the file is missing."""
    try:
        return json.loads(TIMM_MEMORY_JSON.read_text(encoding="utf-8")).get("models", {})
    except (OSError, ValueError):
        return {}


def params_m(model: str) -> float:
    entry = load_timm_memory().get(model)
    if entry:
        return float(entry["params_m"])
    spec = MODELS.get(model)
    return spec.params_m if spec is not None else 25.0


def activations_m(model: str, resolution: int) -> tuple[float, bool]:
    """(millions of activations per image at `resolution`, whether timm benchmarked the model):
    the nearest benchmarked resolution, scaled with the pixel count."""
    entry = load_timm_memory().get(model)
    if not entry:
        return FALLBACK_MACTS_224 * (resolution / 224) ** 2, False
    size, macts = min(entry["points"], key=lambda p: (abs(math.log(p[0] / resolution)), p[0]))
    return float(macts) * (resolution / size) ** 2, True


# -- the estimate -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak training memory (MB) and its parts."""

    weights_mb: float
    gradients_mb: float
    optimizer_mb: float
    activations_mb: float
    overhead_mb: float
    measured: bool = False  # the states + activations come from a calibration record
    known_model: bool = True  # False: timm never benchmarked it (a generic activation count)

    @property
    def total_mb(self) -> float:
        return (self.weights_mb + self.gradients_mb + self.optimizer_mb + self.activations_mb
                + self.overhead_mb)

    @property
    def total_gb(self) -> float:
        return self.total_mb / 1024


def estimate_peak(config: TrainConfig | None = None, *, model: str | None = None,
                  resolution: int | None = None, batch_size: int | None = None,
                  amp: bool = True, scheme: str | None = None, optimizer: str | None = None,
                  overhead_mb: float = CUDA_OVERHEAD_MB, act_factor: float = ACT_FACTOR,
                  use_calibration: bool = True) -> MemoryEstimate:
    """Peak memory of training `config` (or the given fields) on a GPU, in MB (module doc)."""
    model = model or (config.model if config else None)
    if model is None:
        raise ValueError("estimate_peak needs a config or a model name")
    resolution = int(resolution or (config.resolution if config else 224))
    batch = int(batch_size or (config.batch_size if config else 64))
    scheme = scheme or (config.scheme if config else "end_to_end")
    optimizer = (optimizer or (config.optimizer if config else "adamw")).lower()
    n_params = params_m(model) * 1e6
    weights = n_params * 4 / MB
    if scheme == "linear_probing":
        trainable = min(n_params, 1e6)  # the head: features x classes, well under a million
    else:
        trainable = n_params
    grads = trainable * 4 / MB
    opt = trainable * 4 * OPTIMIZER_COPIES.get(optimizer, 2) / MB
    acts_m, known = activations_m(model, resolution)
    act = batch * acts_m * 1e6 * (2 if amp else 4) * act_factor / MB
    if scheme == "linear_probing":
        act *= LP_ACT_FRACTION
    if use_calibration and scheme == "end_to_end":
        m = _measured_mb(model, resolution, batch, amp)
        if m is not None:
            return MemoryEstimate(0.0, 0.0, 0.0, m, overhead_mb, measured=True, known_model=known)
    return MemoryEstimate(weights, grads, opt, act, overhead_mb, known_model=known)


def _measured_mb(model: str, resolution: int, batch: int, amp: bool) -> float | None:
    """Measured CUDA max_memory_allocated for this model/resolution/AMP (`eval/calibrate_gpu.py`),
    linear in the batch size through the measured batches (the largest allocation when several
    GPUs measured the same batch); None when nothing was measured."""
    try:
        records = measured(model=model, resolution=resolution, amp=amp)
    except Exception:  # noqa: BLE001 - a broken calibration file must not break ranking
        return None
    by_batch: dict[int, float] = {}
    for r in records:
        if r.peak_memory_mb is not None:
            by_batch[r.batch_size] = max(by_batch.get(r.batch_size, 0.0), r.peak_memory_mb)
    if not by_batch:
        return None
    if batch in by_batch:
        return by_batch[batch]
    if len(by_batch) == 1:
        (b0, m0), = by_batch.items()
        return m0 * batch / b0  # no slope known: proportional (errs high when shrinking a batch)
    bs = sorted(by_batch)
    lo, hi = (bs[0], bs[1]) if batch < bs[0] else (bs[-2], bs[-1]) if batch > bs[-1] else next(
        (a, b) for a, b in pairwise(bs) if a < batch < b)
    slope = (by_batch[hi] - by_batch[lo]) / (hi - lo)
    return max(0.0, by_batch[lo] + slope * (batch - lo))

# Whether a config fits a device (`memory_fit`) and the calibration on our CPU runs
# (`memory_calibration`) import this module; their names are re-exported here on first use.
_MOVED = {
    "_FITS": "memory_fit",
    "_amp_for": "memory_fit", "_fits_cached": "memory_fit", "_gb": "memory_fit",
    "device_memory_gb": "memory_fit", "fit_to_memory": "memory_fit", "fits": "memory_fit",
    "memory_line": "memory_fit", "calibrate_cpu": "memory_calibration",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"knowledge.metalearner.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # python -m knowledge.metalearner.memory [build|calibrate]
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "build":
        built = build_timm_memory(*(sys.argv[2:3] or []))
        print(f"wrote {TIMM_MEMORY_JSON} ({len(built['models'])} models)")
    else:
        from knowledge.metalearner.memory_calibration import calibrate_cpu

        print(json.dumps(calibrate_cpu(), indent=1))
