"""Device calibration records: measured training throughput and peak memory per (device, model,
resolution, batch size, AMP), written by `eval/calibrate_gpu.py`.

They are not `RunRecord`s (no dataset, no accuracy: synthetic tensors, a few hundred steps), so
they live in their own small JSON-lines file, `<home>/calibration.jsonl`
(`METALLMIX_CALIBRATION` overrides it). Every write rewrites the whole file through a temporary
file and `os.replace` (atomic: a killed process leaves the old file or the new one, never half a
line); a record measured again (same device, model, resolution, batch, AMP, scheme) replaces the
old one.

    append_calibration(records)                 # after a calibration run
    load_calibration()                          # every record, [] when there is no file
    measured(model="resnet50", resolution=224)  # the matching CUDA records, for the cost/memory models
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from knowledge import paths


def calibration_path() -> Path:
    """`METALLMIX_CALIBRATION`, else `<home>/calibration.jsonl`."""
    env = os.environ.get("METALLMIX_CALIBRATION")
    return Path(env).expanduser() if env else paths.home() / "calibration.jsonl"


class CalibrationRecord(BaseModel):
    """One timed (model, resolution, batch) on one device: synthetic data, `steps` timed steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(description="torch.cuda.get_device_name, or the CPU model")
    device_type: str = Field(description="'cuda', 'cpu' or 'mps'")
    model: str = Field(description="timm model name (created with pretrained=False)")
    resolution: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    amp: bool = Field(description="autocast (bf16 where supported, else fp16) on CUDA")
    amp_dtype: str | None = None
    scheme: str = "end_to_end"
    optimizer: str = "adamw"
    num_classes: int = 10
    status: str = Field("ok", description="'ok', or 'oom' (out of memory: no figures)")
    steps: int = Field(0, ge=0, description="timed steps (warm-up excluded)")
    warmup: int = Field(0, ge=0)
    throughput: float | None = Field(None, description="training images per second")
    step_ms: float | None = None
    peak_memory_mb: float | None = Field(
        None, description="CUDA: torch.cuda.max_memory_allocated (no CUDA context, no allocator "
                          "cache); CPU: peak process RSS (includes the Python/torch baseline)")
    torch_version: str = ""
    timm_version: str = ""
    code_version: str = ""
    timestamp: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def key(self) -> tuple:
        return (self.device, self.model, self.resolution, self.batch_size, self.amp, self.scheme)


def load_calibration(path: str | Path | None = None) -> list[CalibrationRecord]:
    """Every record of the file (skipping lines that do not parse); [] when there is no file."""
    p = Path(path) if path is not None else calibration_path()
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(CalibrationRecord.model_validate(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def append_calibration(records: Iterable[CalibrationRecord], path: str | Path | None = None) -> Path:
    """Add `records` (a re-measured key replaces the old record), rewriting the file atomically."""
    p = Path(path) if path is not None else calibration_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    merged = {r.key(): r for r in load_calibration(p)}
    for r in records:
        merged[r.key()] = r
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r in merged.values():
                fh.write(r.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _cache.clear()
    return p


_cache: dict[tuple[str, float], list[CalibrationRecord]] = {}


def measured(*, model: str | None = None, resolution: int | None = None, amp: bool | None = None,
             device_type: str | None = "cuda", scheme: str = "end_to_end",
             path: str | Path | None = None) -> list[CalibrationRecord]:
    """The successful records matching the given fields (cached per file modification time)."""
    p = Path(path) if path is not None else calibration_path()
    try:
        stamp = (str(p), p.stat().st_mtime)
    except OSError:
        return []
    if stamp not in _cache:
        _cache.clear()
        _cache[stamp] = load_calibration(p)
    return [r for r in _cache[stamp]
            if r.status == "ok" and r.scheme == scheme
            and (model is None or r.model == model)
            and (resolution is None or r.resolution == resolution)
            and (amp is None or r.amp == amp)
            and (device_type is None or r.device_type == device_type)]
