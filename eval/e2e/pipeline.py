"""`run_e2e`: the paper's claim measured end to end, for datasets held out of the meta-learner.

Per dataset (module doc of `eval.e2e`): fit without its base dataset, analyze it, take the
advisor's top recommendation within the budget, train it, train the same model with the default
config, run Optuna TPE for the same training time, and compare with the published MedMNIST v2
results.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from eval.e2e import arms
from eval.e2e.fold import base_datasets, fit_without
from eval.e2e.published import CITATION, published_results
from eval.e2e.report import compare
from knowledge.datasets.base import ImageDataset
from knowledge.errors import ConfigError, DatasetError
from knowledge.meta_dataset.shipped import open_store
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.recommend import budget_text, recommend
from knowledge.runs.store import RunStore
from knowledge.search_space import CPU_SPACE, SearchSpace, TrainConfig
from knowledge.sweeps import backend as sweep_backend
from knowledge.sweeps.backend import Backend
from knowledge.training.device import cpu_name, device_name, resolve_device
from knowledge.training.events import ProgressEvent

log = logging.getLogger(__name__)

DEFAULT_MINUTES = 5
DEFAULT_SEED = 0
TPE_WARMUP = 5
TPE_MAX_TRIALS = 100
LIMIT_FACTOR = 2.0


class Progress(Protocol):
    """Where `run_e2e` reports what it is doing (the CLI draws it; default: the log)."""

    def stage(self, dataset: str, text: str) -> None: ...

    def event(self, event: ProgressEvent) -> None: ...


class LogProgress:
    """Progress to `logging` (INFO)."""

    def stage(self, dataset: str, text: str) -> None:
        log.info("%s: %s", dataset, text)

    def event(self, event: ProgressEvent) -> None:
        if event.kind == "epoch":
            log.info("epoch %s/%s val_acc=%s", event.epoch, event.epochs, event.val_acc)


def default_budget_text(device: str | None = None) -> str:
    """'CPU only, 5 minutes', or '5 minutes on <GPU name>' where training runs on CUDA."""
    import torch

    on_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if on_cuda and torch.cuda.is_available():
        return f"{DEFAULT_MINUTES} minutes on {torch.cuda.get_device_name(0)}"
    return f"CPU only, {DEFAULT_MINUTES} minutes"


def machine(device: str | None) -> dict[str, Any]:
    """The machine the runs trained on."""
    try:
        dev = device_name(resolve_device(device))
    except Exception:  # noqa: BLE001 - only a description
        dev = device or "unknown"
    return {"platform": platform.platform(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "training_device": dev}


def majority_class_acc(dataset: ImageDataset) -> float | None:
    """Test accuracy of always predicting the training split's most frequent class (the floor a
    trained model must beat); None for multi-label data or without a test split."""
    import numpy as np

    train, test = dataset.train.labels, dataset.test
    if test is None or len(test) == 0 or train.ndim != 1:
        return None
    majority = int(np.bincount(train).argmax())
    return float(np.mean(test.labels == majority))


def run_e2e(
    specs: Sequence[str],
    *,
    exclude: Sequence[str] = (),
    budget: str | None = None,
    store: Any = None,
    seed: int = DEFAULT_SEED,
    tpe_warmup: int = TPE_WARMUP,
    tpe_max_trials: int = TPE_MAX_TRIALS,
    tpe_space: SearchSpace = CPU_SPACE,
    limit_factor: float | None = LIMIT_FACTOR,
    default_limit_s: float | None = None,
    device: str | None = None,
    num_threads: int | None = None,
    download_weights: bool = False,
    published_csv: str | Path | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The end-to-end benchmark on `specs` (dataset specs); a JSON-ready report.

    `exclude`: base datasets left out of every fit besides each dataset's own base (for a file
    whose name is not the base dataset's); each must name a base dataset of the store.
    `budget`: the advisor's compute budget (default `default_budget_text`). `store`: the run store
    (path or RunStore; default: the default store, seeded with the shipped meta-dataset); every
    run trained here is added to it. `limit_factor`: the recommended run is stopped after this
    many times the budget's time limit (status 'timeout', evaluated); `default_limit_s` likewise
    stops the default-config run. `download_weights`: let timm download pretrained weights (else
    only configs whose weights are available offline are trained). `checkpoint(report)` is
    called after each dataset with the report so far.
    Raises ConfigError / DatasetError / StoreError before any training for bad input.
    """
    started = time.perf_counter()
    progress = progress or LogProgress()
    backend = backend or sweep_backend.REAL
    if not specs:
        raise ConfigError("no dataset given: name at least one (e.g. medmnist:breastmnist)")
    if tpe_warmup < 0:
        raise ConfigError(f"the TPE warm-up must be 0 or more trials, got {tpe_warmup}")
    if tpe_max_trials < 1:
        raise ConfigError(f"the TPE trial limit must be at least 1, got {tpe_max_trials}")
    if limit_factor is not None and not limit_factor > 0:
        raise ConfigError(f"the limit factor must be positive, got {limit_factor:g}")
    if default_limit_s is not None and not default_limit_s > 0:
        raise ConfigError(f"the default run's time limit must be positive, got {default_limit_s:g} s")
    budget_spec = budget or default_budget_text(device)
    parsed = parse_budget(budget_spec)

    run_store = store if isinstance(store, RunStore) else open_store(store)
    records = run_store.query()
    known = base_datasets(records)
    extra = sorted({e.strip().lower() for e in exclude if e.strip()})
    for name in extra:
        if name not in known:
            raise DatasetError(f"--exclude {name!r} names no base dataset of the run store "
                               f"{run_store.path} (it holds: {', '.join(sorted(known)) or 'none'})")
    datasets = [backend.load_dataset(spec) for spec in specs]  # every dataset loads before any run

    report: dict[str, Any] = {
        "benchmark": "end-to-end",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "budget": budget_spec, "budget_parsed": parsed.model_dump(), "seed": seed,
            "seeds_note": "one seed for the meta-learner fit, every training run (init, "
                          "shuffling, augmentation) and the TPE sampler",
            "exclude": extra, "limit_factor": limit_factor, "default_limit_s": default_limit_s,
            "default_config": arms.DEFAULT_CONFIG_TEXT,
            "tpe": {"space": tpe_space.name, "warmup_random_trials": tpe_warmup,
                    "max_trials": tpe_max_trials,
                    "stop": "when the trials' summed train_seconds reach the recommended run's"},
            "time_measure": "train_seconds: the launcher's training-loop wall time (no model "
                            "building, no evaluation)",
            "download_weights": download_weights, "num_threads": num_threads,
            "published": CITATION,
        },
        "machine": machine(device),
        "store": str(run_store.path),
        "datasets": [],
    }
    for spec, dataset in zip(specs, datasets):
        entry = _one_dataset(
            spec, dataset, records, known=known, extra=extra, budget=parsed, seed=seed,
            run_store=run_store, backend=backend, device=device, num_threads=num_threads,
            limit_factor=limit_factor, default_limit_s=default_limit_s,
            download_weights=download_weights, tpe_space=tpe_space, tpe_warmup=tpe_warmup,
            tpe_max_trials=tpe_max_trials, published_csv=published_csv, progress=progress)
        report["datasets"].append(entry)
        report["total_s"] = round(time.perf_counter() - started, 2)
        if checkpoint is not None:
            checkpoint(report)
    report["total_s"] = round(time.perf_counter() - started, 2)
    return report


def _one_dataset(spec: str, dataset: ImageDataset, records: list, *, known: set[str],
                 extra: list[str], budget: Budget, seed: int, run_store: Any, backend: Backend,
                 device: str | None, num_threads: int | None, limit_factor: float | None,
                 default_limit_s: float | None, download_weights: bool, tpe_space: SearchSpace,
                 tpe_warmup: int, tpe_max_trials: int, published_csv: str | Path | None,
                 progress: Progress) -> dict[str, Any]:
    started = time.perf_counter()
    base = dataset.base.lower()
    notes: list[str] = []
    if base not in known:
        notes.append(f"the run store holds no record of base dataset {base!r}: nothing of it to "
                     "leave out (if this data is a stored dataset under another name, name it "
                     "with --exclude)")

    progress.stage(spec, f"fitting the meta-learner without {', '.join(sorted({base, *extra}))}")
    fit = fit_without(records, {base, *extra}, seed=seed)

    progress.stage(spec, "analyzing and recommending")
    meta = dataset.meta_features()
    rec = recommend(meta, learner=fit.learner, index=fit.index, budget=budget,
                    exclude_base=fit.held_out, dataset=spec)

    def why_not(config: TrainConfig) -> str | None:
        if config.pretrained and not download_weights and not backend.pretrained_available(config.model):
            return f"no pretrained {config.model} weights available offline"
        return None

    chosen, skipped = arms.pick_trainable(meta, fit.learner, budget, why_not)
    if skipped["count"]:
        notes.append(f"the advisor's top {skipped['count']} config(s) need pretrained weights that "
                     f"are not available here; the best trainable one (rank {chosen.rank}) was "
                     "trained")

    trainer = arms.Trainer(backend, device=device, on_event=progress.event)
    common = dict(seed=seed, num_threads=num_threads, store=run_store)
    limit = (budget.max_seconds * limit_factor
             if budget.max_seconds is not None and limit_factor is not None else None)
    progress.stage(spec, f"training the recommendation: {arms.label(chosen.config)}")
    rec_record = trainer(dataset, chosen.config, time_budget_s=limit,
                         study=arms.study_tag(dataset.id, "recommended"), **common)
    recommended = {**arms.run_summary(rec_record, trainer.walls[rec_record.run_id]),
                   "predicted_acc": chosen.predicted_acc, "predicted_acc_lo": chosen.acc_lo,
                   "predicted_acc_hi": chosen.acc_hi, "predicted_seconds": chosen.predicted_seconds,
                   "time_is_estimate": chosen.time_is_estimate, "rank": chosen.rank,
                   "time_limit_s": limit}

    model = chosen.config.model
    default_cfg = arms.default_config(
        model, download_weights or bool(backend.pretrained_available(model)))
    progress.stage(spec, f"training the default config: {arms.label(default_cfg)}")
    default_record = trainer(dataset, default_cfg, time_budget_s=default_limit_s,
                             study=arms.study_tag(dataset.id, "default"), **common)
    default = {**arms.run_summary(default_record, trainer.walls[default_record.run_id]),
               "time_limit_s": default_limit_s}

    tpe_budget = rec_record.outcome.train_seconds or 0.0
    if tpe_budget <= 0:
        tpe_budget = budget.max_seconds or 60.0
        notes.append(f"the recommended run has no training time ({rec_record.status}); TPE got "
                     f"{tpe_budget:g} s instead")
    progress.stage(spec, f"Optuna TPE over {tpe_space.name} for {tpe_budget:.0f} s of training")
    tpe = arms.run_tpe(dataset, trainer, budget_s=tpe_budget, space=tpe_space, seed=seed,
                       warmup=tpe_warmup, max_trials=tpe_max_trials, store=run_store,
                       num_threads=num_threads)

    published = [p.model_dump() for p in published_results(base, published_csv)]
    if not published:
        notes.append(f"no published MedMNIST v2 result for {base!r}")
    entry = {
        "dataset": spec,
        "dataset_id": dataset.id,
        "base_dataset": base,
        "splits": {name: (len(s) if s is not None else 0)
                   for name, s in (("train", dataset.train), ("val", dataset.val),
                                   ("test", dataset.test))},
        "meta_features": meta.model_dump(),
        "majority_class_acc": majority_class_acc(dataset),
        "fit": fit.summary(),
        "recommendation": {
            "budget": budget_text(rec),
            "best": arms.ranked_view(rec.best),
            "top": [r.summary() for r in rec.top],
            "trained_rank": chosen.rank,
            "skipped": skipped,
            "explanation": [f.text for f in rec.explanation.factors],
            "similar_runs": [h.card for h in rec.similar_runs],
            "notes": rec.notes,
            "seconds": rec.seconds,
        },
        "runs": {"recommended": recommended, "default": default, "tpe": tpe},
        "published": published,
        "notes": notes,
    }
    entry["comparison"] = compare(entry)
    entry["seconds"] = round(time.perf_counter() - started, 2)
    progress.stage(spec, f"done in {entry['seconds']:.0f} s")
    return entry
