"""Time training steps of a fixed model x resolution x batch grid on this machine's GPU (or CPU):
throughput (img/s) and peak memory, for the cost and memory models (issue 14 items 2 and 4).

On a GPU machine (one command; the default grid is 7 models x 3 resolutions x 3 batch sizes = 63
cells, 10 warm-up + up to 200 timed steps each, capped at 4 s of timing per cell: about 4-6 minutes
on an H100, under 8 including model builds and cuDNN autotuning):

    python -m eval.calibrate_gpu                 # or: metallmix eval calibrate-gpu

Quick check on a CPU (what the test runs):

    python -m eval.calibrate_gpu --device cpu --models resnet18 --resolutions 32 --batches 4 \
        --steps 2 --warmup 1 --out /tmp/cal.json --calibration /tmp/cal.jsonl

Every cell is a fresh timm model (pretrained=False: no downloads), 10 classes, channels_last, AdamW,
cross-entropy on synthetic random tensors (no dataset, no data loading: a lower bound on step time).
On CUDA it autocasts (bf16 where supported, else fp16 with a GradScaler) like the launcher, with
cudnn.benchmark on; peak memory is `torch.cuda.max_memory_allocated` (reset per cell; no CUDA
context, no allocator cache). On a CPU it is the peak process RSS (includes the Python/torch
baseline). A cell that runs out of memory is recorded with status 'oom'.

Results go to `eval/results/gpu_calibration_<device>.json` and into the calibration store
(`knowledge.runs.calibration`, `<home>/calibration.jsonl`), where `knowledge.metalearner.memory`
uses the measured peaks in place of its estimate for the same model/resolution/AMP.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from knowledge.paths import code_version
from knowledge.runs.calibration import CalibrationRecord, append_calibration

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = ("resnet18", "resnet50", "efficientnet_b0", "densenet121", "vgg16",
                  "vit_base_patch16_224", "mobilenetv3_small_100")
DEFAULT_RESOLUTIONS = (64, 128, 224)
DEFAULT_BATCHES = (32, 64, 128)
DEFAULT_STEPS = 200
DEFAULT_WARMUP = 10
DEFAULT_MAX_SECONDS = 4.0  # timing per cell stops after this (at least 2 timed steps)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "device"


def _build(model_name: str, resolution: int, num_classes: int):
    import timm

    kwargs = {}
    if "vit" in model_name or "deit" in model_name:
        kwargs["img_size"] = resolution  # ViTs take their input size at build time
    return timm.create_model(model_name.split(".")[0], pretrained=False, num_classes=num_classes,
                             **kwargs)


def time_cell(model_name: str, resolution: int, batch_size: int, *, device: str, steps: int,
              warmup: int, max_seconds: float = DEFAULT_MAX_SECONDS, num_classes: int = 10,
              amp: bool | None = None):
    """Time one (model, resolution, batch) cell; a CalibrationRecord (status 'oom' when it did not
    fit)."""
    import timm
    import torch

    from knowledge.training.device import MemoryMeter, device_name, is_oom  # lazy: pulls in torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    amp = cuda if amp is None else (amp and cuda)
    amp_dtype = None
    if amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    base = {"device": device_name(dev), "device_type": dev.type, "model": model_name,
            "resolution": resolution, "batch_size": batch_size, "amp": bool(amp),
            "amp_dtype": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
            "num_classes": num_classes, "warmup": warmup, "torch_version": torch.__version__,
            "timm_version": timm.__version__, "code_version": code_version()}
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.backends.cudnn.benchmark = True
    meter = MemoryMeter(dev)  # resets CUDA's peak statistics
    model = opt = x = y = None
    try:
        model = _build(model_name, resolution, num_classes).to(dev, memory_format=torch.channels_last)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        x = torch.randn(batch_size, 3, resolution, resolution, device=dev).contiguous(
            memory_format=torch.channels_last)
        y = torch.randint(0, num_classes, (batch_size,), device=dev)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            if amp_dtype is not None:
                with torch.autocast(device_type="cuda", dtype=amp_dtype):
                    loss = loss_fn(model(x), y)
            else:
                loss = loss_fn(model(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            meter.sample()

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(dev)

        for _ in range(warmup):
            step()
        sync()
        done, started = 0, time.perf_counter()
        while done < steps:
            step()
            done += 1
            if done >= 2 and done % 5 == 0:
                sync()
                if time.perf_counter() - started > max_seconds:
                    break
        sync()
        elapsed = time.perf_counter() - started
        return CalibrationRecord(**base, steps=done, throughput=round(done * batch_size / elapsed, 2),
                                 step_ms=round(1000 * elapsed / done, 3),
                                 peak_memory_mb=round(meter.peak(), 1))
    except Exception as exc:
        if not is_oom(exc):
            raise
        return CalibrationRecord(**base, status="oom")
    finally:
        model = opt = x = y = None  # free the cell before the next one
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


def calibrate(models: Sequence[str] = DEFAULT_MODELS, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS,
              batches: Sequence[int] = DEFAULT_BATCHES, *, device: str | None = None,
              steps: int = DEFAULT_STEPS, warmup: int = DEFAULT_WARMUP,
              max_seconds: float = DEFAULT_MAX_SECONDS, out: str | Path | None = None,
              calibration: str | Path | None = None, store: bool = True,
              progress: Callable[[str], None] | None = print) -> dict:
    """Time every cell, write the JSON report (`out`, default
    eval/results/gpu_calibration_<device>.json) and (`store`) add the records to the calibration
    store (`calibration`, default `<home>/calibration.jsonl`). Returns the report."""
    import torch

    from knowledge.training.device import device_name  # lazy: pulls in torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = device_name(torch.device(device))
    started = time.perf_counter()
    records = []
    for model in models:
        for res in resolutions:
            for batch in batches:
                rec = time_cell(model, res, batch, device=device, steps=steps, warmup=warmup,
                                max_seconds=max_seconds)
                records.append(rec)
                if progress is not None:
                    what = (f"{rec.throughput:,.0f} img/s, peak {rec.peak_memory_mb:,.0f} MB"
                            if rec.status == "ok" else rec.status)
                    progress(f"{model} {res}px batch {batch}: {what}")
    report = {
        "device": name,
        "device_type": torch.device(device).type,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {"steps": steps, "warmup": warmup, "max_seconds": max_seconds,
                     "models": list(models), "resolutions": list(resolutions),
                     "batches": list(batches)},
        "records": [r.model_dump(mode="json") for r in records],
    }
    path = Path(out) if out is not None else RESULTS / f"gpu_calibration_{_slug(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    report["out"] = str(path)
    if store:
        report["calibration"] = str(append_calibration(records, calibration))
    return report


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate_gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA if present)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--resolutions", default=",".join(map(str, DEFAULT_RESOLUTIONS)))
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                        help="stop timing a cell after this many seconds")
    parser.add_argument("--out", default=None, help="JSON report (default: "
                        "eval/results/gpu_calibration_<device>.json)")
    parser.add_argument("--calibration", default=None, help="calibration store (default: "
                        "<home>/calibration.jsonl)")
    parser.add_argument("--no-store", action="store_true", help="do not add to the calibration store")
    a = parser.parse_args(argv)
    report = calibrate([m for m in a.models.split(",") if m], _ints(a.resolutions), _ints(a.batches),
                       device=a.device, steps=a.steps, warmup=a.warmup, max_seconds=a.max_seconds,
                       out=a.out, calibration=a.calibration, store=not a.no_store)
    print(f"{len(report['records'])} cells on {report['device']} in {report['seconds']} s -> "
          f"{report['out']}" + (f" and {report['calibration']}" if "calibration" in report else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
