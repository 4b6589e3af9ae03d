"""Will it fit? A peak-memory estimate for training one config on one device.

    estimate_peak(TrainConfig(model="resnet50", resolution=224, batch_size=64))   # MemoryEstimate
    fits(config, "t4")            # (True, 64, None) | (True, 32, "batch 64 -> 32 ...") | (False, 0, "...")
    fit_to_memory(configs, "t4")  # the candidate filter `ranking._constrained` uses on GPU budgets

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from knowledge.paths import PACKAGE_DATA
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

# memory (GB) of the devices a budget can name, until knowledge.metalearner.devices provides them
_FALLBACK_MEMORY_GB: dict[str, float] = {
    "t4": 16, "l4": 24, "a10": 24, "v100": 16, "a100": 40, "h100": 80, "mps": 16,
    "gtx1070": 8, "gtx1080": 8, "gtx1080ti": 11, "rtx2080ti": 11, "rtx3060": 12, "rtx3080": 10,
    "rtx3090": 24, "rtx4090": 24, "h200": 141,
}
_FALLBACK_LABELS: dict[str, str] = {"gtx1070": "GTX 1070", "mps": "Apple GPU"}


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
        from knowledge.runs.calibration import measured
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


# -- devices ----------------------------------------------------------------------------------
def device_memory_gb(device: Any) -> tuple[float | None, str]:
    """(memory in GB, label) of a device: a key of the device catalogue
    (`knowledge.metalearner.devices.get_device`, else a small local table), an object with
    `memory_gb`, or a number of GB. (None, label) when unknown (CPU: system RAM, not checked)."""
    if isinstance(device, (int, float)):
        return float(device), f"{device:g} GB"
    if hasattr(device, "memory_gb"):
        return (float(device.memory_gb) if device.memory_gb else None,
                str(getattr(device, "label", getattr(device, "key", "device"))))
    key = str(device).strip().lower()
    try:
        from knowledge.metalearner.devices import get_device  # type: ignore[import-not-found]
        found = get_device(key)
        return (float(found.memory_gb) if found.memory_gb else None), str(found.label)
    except Exception:  # noqa: BLE001, S110 - not there yet, or not in the catalogue
        pass
    if key in _FALLBACK_MEMORY_GB:
        return float(_FALLBACK_MEMORY_GB[key]), _FALLBACK_LABELS.get(key, key.upper())
    return None, key


def _amp_for(device: Any) -> bool:
    """The launcher autocasts on CUDA only (not on Apple MPS)."""
    kind = getattr(device, "kind", None)
    key = str(getattr(device, "key", device)).lower()
    if kind is None and not isinstance(device, (int, float)):
        try:
            from knowledge.metalearner.devices import get_device  # type: ignore[import-not-found]
            kind = get_device(key).kind
        except Exception:  # noqa: BLE001, S110 - not there yet, or not in the catalogue
            pass
    return not (key == "mps" or kind in ("mps", "apple", "cpu"))


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB"


def fits(config: TrainConfig, device: Any, *, amp: bool | None = None,
         min_batch: int = MIN_BATCH) -> tuple[bool, int, str | None]:
    """Whether `config` trains within the device's memory: (ok, batch size, note).

    Fits as is: (True, batch, None). Too big: the batch size is halved down to `min_batch`; the
    first that fits is returned with a note (the learning rate was tuned for the original batch:
    the note says so, the config's lr is left alone). Nothing fits: (False, 0, note). A device
    without a known memory size (the CPU) always fits."""
    memory_gb, label = device_memory_gb(device)
    if memory_gb is None:
        return True, config.batch_size, None
    amp = _amp_for(device) if amp is None else amp
    limit = memory_gb * 1024 * USABLE_FRACTION
    batch = config.batch_size
    est = estimate_peak(config, amp=amp)
    if est.total_mb <= limit:
        return True, batch, None
    b = batch // 2
    while b >= min_batch:
        small = estimate_peak(config, batch_size=b, amp=amp)
        if small.total_mb <= limit:
            return True, b, (f"batch {batch} → {b} to fit {memory_gb:g} GB (estimated peak "
                             f"{_gb(small.total_mb)}; at batch {batch} {_gb(est.total_mb)}); lr "
                             f"{config.lr:g} was chosen for batch {batch}: consider scaling it "
                             f"(x{b / batch:g} linear rule)")
        b //= 2
    at_min = estimate_peak(config, batch_size=min_batch, amp=amp)
    return False, 0, (f"{config.spec.label if config.model in MODELS else config.model} at "
                      f"{config.resolution} px does not fit {label} ({memory_gb:g} GB) even at batch "
                      f"{min_batch} (estimated peak {_gb(at_min.total_mb)})")


def fit_to_memory(configs: Sequence[TrainConfig],
                  device: Any) -> tuple[list[TrainConfig], dict[str, int]]:
    """The candidates that fit `device` (`fits`): unchanged, with a smaller batch, or dropped;
    order kept, duplicates (a shrunk config equal to another candidate) removed. Also returns, per
    shrunk candidate's key, the batch size it had (for the card's "batch 64 → 32")."""
    out: dict[str, TrainConfig] = {}
    shrunk_from: dict[str, int] = {}
    for c in configs:
        ok, batch, _ = _fits_cached(c, device)
        if not ok:
            continue
        if batch != c.batch_size:
            shrunk = c.model_copy(update={"batch_size": batch})
            if shrunk.key() not in out:
                shrunk_from[shrunk.key()] = c.batch_size
            c = shrunk
        out.setdefault(c.key(), c)
    return list(out.values()), shrunk_from


_FITS: dict[tuple[str, str], tuple[bool, int, str | None]] = {}


def _fits_cached(config: TrainConfig, device: Any) -> tuple[bool, int, str | None]:
    k = (config.key(), str(getattr(device, "key", device)).lower())
    if k not in _FITS:
        if len(_FITS) > 100_000:
            _FITS.clear()
        _FITS[k] = fits(config, device)
    return _FITS[k]


def memory_line(config: TrainConfig, device: Any, shrunk_from: int | None = None) -> str | None:
    """The card's line: 'batch 64 → 32 to fit 16 GB (estimated peak 14.1 GB)' when the ranking
    shrank the pick's batch (from `shrunk_from`, `fit_to_memory`), else 'estimated peak memory
    5.2 GB of 16 GB'; None without a known device memory (the CPU)."""
    memory_gb, _ = device_memory_gb(device)
    if memory_gb is None:
        return None
    est = estimate_peak(config, amp=_amp_for(device))
    how = " (measured on a GPU)" if est.measured else ""
    original = shrunk_from
    if original is not None and original != config.batch_size:
        return (f"batch {original} → {config.batch_size} to fit {memory_gb:g} GB (estimated peak "
                f"{_gb(est.total_mb)}{how}); the learning rate was tuned for batch {original}")
    return f"estimated peak memory {_gb(est.total_mb)} of {memory_gb:g} GB{how}"


# -- calibration on our own CPU runs ----------------------------------------------------------
def calibrate_cpu(frame: Any = None) -> dict[str, Any]:
    """Least-squares fit of the CPU peak RSS of our own runs:

        peak_mb = baseline + d * dataset_mb + s * states_mb + k * activation_mb(fp32, factor 1)

    (`states`: weights + gradients + optimizer state). Returns the coefficients, the implied
    activation factor `k`, and the fit error (median absolute / relative, RMSE) of this fit and
    of the fixed-constant model (baseline + dataset + states + ACT_FACTOR x activations)."""
    import numpy as np
    import pandas as pd

    if frame is None:
        frame = pd.read_parquet(PACKAGE_DATA / "meta_dataset.parquet")
    cols = ["cfg.model", "cfg.resolution", "cfg.batch_size", "cfg.scheme", "cfg.optimizer",
            "out.peak_memory_mb", "mf.n_instances", "mf.height", "mf.width"]
    d = frame[[c for c in cols if c in frame.columns]].dropna(subset=["out.peak_memory_mb"])
    d = d[d["cfg.scheme"].isin(["end_to_end", "linear_probing"])]
    states, acts, data = [], [], []
    for r in d.itertuples(index=False):
        model, res, batch, scheme, opt = r[0], int(r[1]), int(r[2]), r[3], r[4]
        e = estimate_peak(model=model, resolution=res, batch_size=batch, amp=False, scheme=scheme,
                          optimizer=opt, overhead_mb=0.0, act_factor=1.0, use_calibration=False)
        states.append(e.weights_mb + e.gradients_mb + e.optimizer_mb)
        acts.append(e.activations_mb)
        # every split in memory as uint8 (N, 3, H, W) at the stored size: ~ n_instances / 0.7
        n = float(r[6]) / 0.7 if r[6] == r[6] else 0.0
        side = float(r[7]) if r[7] == r[7] else 64.0
        data.append(n * 3 * side * side / MB)
    y = d["out.peak_memory_mb"].to_numpy(dtype=float)
    X = np.column_stack([np.ones_like(y), data, states, acts])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    fixed_resid = y - (np.column_stack([data, states, acts]) @ np.array([1.0, 1.0, ACT_FACTOR]))
    base = float(np.median(fixed_resid))
    fixed = base + np.column_stack([data, states, acts]) @ np.array([1.0, 1.0, ACT_FACTOR])

    def err(pred: np.ndarray) -> dict[str, float]:
        return {"median_abs_mb": round(float(np.median(np.abs(y - pred))), 1),
                "median_rel": round(float(np.median(np.abs(y - pred) / y)), 3),
                "rmse_mb": round(float(np.sqrt(np.mean((y - pred) ** 2))), 1)}

    return {
        "n": len(y),
        "peak_mb_range": [round(float(y.min()), 1), round(float(y.max()), 1)],
        "activation_mb_range": [round(float(min(acts)), 1), round(float(max(acts)), 1)],
        "fit": {"baseline_mb": round(float(coef[0]), 1), "dataset": round(float(coef[1]), 3),
                "states": round(float(coef[2]), 3), "act_factor": round(float(coef[3]), 2)},
        "fit_error": err(fitted),
        "fixed_model": {"baseline_mb": round(base, 1), "act_factor": ACT_FACTOR},
        "fixed_model_error": err(fixed),
        "baseline_only_error": err(np.full_like(y, np.median(y))),
    }


if __name__ == "__main__":  # python -m knowledge.metalearner.memory [build|calibrate]
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "build":
        built = build_timm_memory(*(sys.argv[2:3] or []))
        print(f"wrote {TIMM_MEMORY_JSON} ({len(built['models'])} models)")
    else:
        print(json.dumps(calibrate_cpu(), indent=1))
