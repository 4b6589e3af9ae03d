"""Will a config fit a device's memory? `fits` (as is, with a smaller batch, or not at all),
`fit_to_memory` (the candidate filter of GPU budgets, `constraints._constrained`) and
`memory_line` (the card's line), from the peak estimate of `knowledge.metalearner.memory`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from knowledge.errors import ConfigError
from knowledge.metalearner.devices import get_device
from knowledge.metalearner.memory import MIN_BATCH, USABLE_FRACTION, estimate_peak
from knowledge.search_space import MODELS, TrainConfig


# -- devices ----------------------------------------------------------------------------------
def device_memory_gb(device: Any) -> tuple[float | None, str]:
    """(memory in GB, label) of a device: a key of the device catalogue
    (`knowledge.metalearner.devices.get_device`), an object with
    `memory_gb`, or a number of GB. (None, label) when unknown (CPU: system RAM, not checked)."""
    if isinstance(device, (int, float)):
        return float(device), f"{device:g} GB"
    if hasattr(device, "memory_gb"):
        return (float(device.memory_gb) if device.memory_gb else None,
                str(getattr(device, "label", getattr(device, "key", "device"))))
    key = str(device).strip().lower()
    try:
        found = get_device(key)
    except ConfigError:  # not in the catalogue
        return None, key
    return (float(found.memory_gb) if found.memory_gb else None), str(found.label)


def _amp_for(device: Any) -> bool:
    """The launcher autocasts on CUDA only (not on Apple MPS)."""
    kind = getattr(device, "kind", None)
    key = str(getattr(device, "key", device)).lower()
    if kind is None and not isinstance(device, (int, float)):
        try:
            kind = get_device(key).kind
        except ConfigError:  # not in the catalogue
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
