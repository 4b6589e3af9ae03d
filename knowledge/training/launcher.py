"""`train`: one training run of a `TrainConfig` on an `ImageDataset`, always ending in a `RunRecord`.

Checks that can fail before anything runs (config outside the search space, a time budget that is not
a positive number of seconds, a model or scheme the launcher cannot train, pretrained weights
unavailable, an unusable dataset, e.g. labels outside its classes, see `data.check_labels`) raise
`ConfigError` / `TrainingError` / `DatasetError`, and nothing is stored. Once the run has started,
every ending is a record:

- `ok`: all epochs trained, evaluated on val and test;
- `timeout`: `time_budget_s` ran out (checked between batches); what was trained is evaluated;
- `cancelled`: the `cancel` event was set (or Ctrl-C); not evaluated, last epoch's val_acc kept;
- `diverged`: a NaN/inf loss; not evaluated;
- `out-of-memory`: CUDA OOM, a RuntimeError 'out of memory', or MemoryError;
- `failed`: any other exception, its text in `error` (logged with its traceback).

A KeyboardInterrupt in the calling thread ends the run as `cancelled` (stored if a store is given) and
is then re-raised, so loops over runs stop too; use `TrainingJob` + `cancel()` for a clean stop.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from knowledge import paths
from knowledge.datasets.base import ImageDataset
from knowledge.errors import ConfigError, TrainingError
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import (
    MODELS,
    PROTOCOL_PATIENCE,
    TRAINABLE_SCHEMES,
    TrainConfig,
    is_published_protocol,
    validate_config,
)
from knowledge.training import data as D
from knowledge.training import models as M
from knowledge.training.device import MemoryMeter, cpu_threads, device_name, is_oom, resolve_device, thread_count
from knowledge.training.events import ProgressCallback, ProgressEvent
from knowledge.training.metrics import accuracy, scores

if TYPE_CHECKING:
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

EVAL_BATCH = 256
_GPU_RESIDENT_BYTES = 1 << 30  # datasets smaller than this live on the GPU for the whole run


def check_config(config: TrainConfig | dict) -> TrainConfig:
    """A config the launcher can run: inside the search space, a timm model, a trainable scheme."""
    cfg = validate_config(config)
    spec = MODELS[cfg.model]
    if not spec.trainable:
        raise TrainingError(f"{cfg.model} has no timm model; the launcher cannot train it ({spec.note})")
    if cfg.scheme not in TRAINABLE_SCHEMES:
        raise ConfigError(
            f"scheme {cfg.scheme!r} is not trained by the launcher; use one of {', '.join(TRAINABLE_SCHEMES)}"
        )
    return cfg


def check_time_budget(time_budget_s: float | None) -> float | None:
    """A time budget is None (no limit) or a finite number of seconds above 0; ConfigError otherwise
    (a budget of 0 or less would store a `timeout` run that never trained)."""
    if time_budget_s is None:
        return None
    try:
        value = float(time_budget_s)
    except (TypeError, ValueError):
        raise ConfigError(f"time budget {time_budget_s!r}: must be a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"time budget {value:g} s: must be a positive, finite number of seconds "
                          "(leave it out for no limit)")
    return value


class _Stop(Exception):
    """Ends the training loop early with a status."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _State:
    """What the loop has done so far (for the record, whatever the ending)."""

    started: float = field(default_factory=time.perf_counter)
    train_started: float | None = None
    train_seconds: float = 0.0
    epochs_done: int = 0
    steps_done: int = 0  # within the current epoch
    val_acc: float | None = None


def train(
    dataset: ImageDataset,
    config: TrainConfig | dict,
    *,
    seed: int = 0,
    time_budget_s: float | None = None,
    device: str | None = None,
    weights_path: str | Path | None = None,
    num_threads: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    store: RunStore | None = None,
    study: str | None = None,
) -> RunRecord:
    """Train `config` on `dataset` and return its `RunRecord` (added to `store` when given)."""
    cfg = check_config(config)
    time_budget_s = check_time_budget(time_budget_s)
    dev = resolve_device(device)
    source = M.resolve_weights(cfg, weights_path)
    prepared = D.prepare(dataset, resolution=cfg.resolution, seed=seed)
    about = dict(  # the record's fields known before the run (its timestamp: the start)
        dataset_id=dataset.id, base_dataset=dataset.base, variant=dataset.variant, medical=dataset.medical,
        meta_features=dataset.meta_features(),
        config=cfg,
        provenance=Provenance(source="own", code_version=paths.code_version(), seed=seed,
                              device=device_name(dev), study=study,  # threads: as `cpu_threads` sets
                              threads=thread_count(num_threads) if dev.type == "cpu" else None),
    )
    run = _Run(cfg, prepared, dev, source, seed=seed, time_budget_s=time_budget_s,
               progress=progress, cancel=cancel)
    interrupted = False
    with cpu_threads(num_threads) if dev.type == "cpu" else nullcontext():
        try:
            outcome, status, error = run.execute()
        except KeyboardInterrupt:
            interrupted = True
            outcome, status, error = run.outcome(), "cancelled", "interrupted (Ctrl-C or SIGTERM)"
    record = RunRecord(**about, outcome=outcome, status=status, error=error)
    run.emit("end", message=record.status + (f": {record.error}" if record.error else ""))
    if store is not None:
        try:
            store.add(record)
        except Exception:  # noqa: BLE001 - a store problem must not lose the caller's record
            log.exception("could not add run %s to the store", record.run_id)
    if interrupted:
        raise KeyboardInterrupt
    return record


class _Run:
    """One execution of the training loop (internal to `train`)."""

    def __init__(self, cfg: TrainConfig, data: D.PreparedData, dev: torch.device, source: M.WeightsSource,
                 *, seed: int, time_budget_s: float | None, progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> None:
        self.cfg, self.data, self.dev, self.source, self.seed = cfg, data, dev, source, seed
        self.time_budget_s = time_budget_s
        self.progress = progress
        self.cancel = cancel
        self.state = _State()
        self.meter = MemoryMeter(dev)
        self.steps = D.steps_per_epoch(len(data.train), cfg.batch_size)
        self.model: nn.Module | None = None
        # the published MedMNIST+ protocol trains up to 100 epochs with early stopping
        self.patience: int | None = PROTOCOL_PATIENCE if is_published_protocol(cfg) else None
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.best_epoch = 0

    # -- reporting ---------------------------------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> None:
        if self.progress is None:
            return
        event = ProgressEvent(kind=kind, epochs=self.cfg.epochs, steps=self.steps,  # type: ignore[arg-type]
                              elapsed_s=time.perf_counter() - self.state.started, **fields)
        self.progress(event)

    def outcome(self, test: D.TensorSplit | None = None, *, val: bool = False) -> Outcome:
        """The outcome so far; evaluated on val/test when asked."""
        s = self.state
        if s.train_started is not None and not s.train_seconds:
            s.train_seconds = time.perf_counter() - s.train_started
        done = s.epochs_done + s.steps_done / max(self.steps, 1)
        out = Outcome(
            val_acc=s.val_acc,
            train_seconds=round(s.train_seconds, 3),
            seconds_per_epoch=round(s.train_seconds / done, 3) if done > 0 else None,
            epochs_completed=s.epochs_done,
            val_images=len(self.data.val) if self.data is not None else None,
            peak_memory_mb=round(self.meter.peak(), 1),
        )
        if val:
            out.val_acc = self.evaluate_acc(self.data.val)
        if test is not None:
            probs, labels = self.predict(test)
            sc = scores(probs, labels, multilabel=self.data.multilabel)
            out.test_acc, out.test_auc, out.test_f1 = sc.acc, sc.auc, sc.f1
        return out

    # -- the run -------------------------------------------------------------------------------------
    def execute(self) -> tuple[Outcome, str, str | None]:
        """Train and evaluate; returns (outcome, status, error)."""
        try:
            self._setup()
            self.emit("start", message=f"{self.cfg.model} on {self.dev.type}: {len(self.data.train)} train, "
                                       f"{len(self.data.val)} val, {len(self.data.test)} test images")
            self._train()
            return self.outcome(self.data.test, val=True), "ok", None
        except _Stop as stop:
            if self.state.train_started is not None:
                self.state.train_seconds = time.perf_counter() - self.state.train_started
            if stop.status == "timeout":
                try:
                    return self.outcome(self.data.test, val=True), "timeout", str(stop)
                except _Stop as late:  # the partly trained model predicts NaN
                    return self.outcome(), late.status, str(late)
                except Exception as exc:  # noqa: BLE001 - evaluation failed after the budget ran out
                    return self._failure(exc)
            return self.outcome(), stop.status, str(stop)
        except TrainingError:
            raise
        except Exception as exc:  # noqa: BLE001 - every other ending is recorded
            return self._failure(exc)

    def _failure(self, exc: BaseException) -> tuple[Outcome, str, str | None]:
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()
        status = "out-of-memory" if is_oom(exc) else "failed"
        text = f"{type(exc).__name__}: {str(exc).strip()}"
        if status == "out-of-memory":
            log.warning("run ran out of memory: %s", text)
        else:
            log.exception("training run failed: %s", text)
        try:
            outcome = self.outcome()
        except Exception:  # noqa: BLE001
            outcome = Outcome()
        return outcome, status, text[:2000]

    def _setup(self) -> None:
        cfg, dev = self.cfg, self.dev
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)
        self.gen = torch.Generator().manual_seed(self.seed)
        model = M.create_model(cfg, self.data.n_classes, self.source)
        if cfg.scheme == "linear_probing":
            params = M.freeze_backbone(model)
        else:
            params = [p for p in model.parameters() if p.requires_grad]
        cuda = dev.type == "cuda"
        # channels_last: faster on GPUs, and 3-5x faster for depthwise convolutions (MobileNet,
        # EfficientNet) on CPUs; neutral for ResNets
        model = model.to(dev, memory_format=torch.channels_last)
        self.model = model
        mean, std = M.norm_stats(model)
        self.transform = D.BatchTransform(cfg.resolution, cfg.augmentation, mean, std, channels_last=True,
                                          canvas=MODELS[cfg.model].min_input)
        self.optimizer = _optimizer(cfg, params)
        total = max(1, cfg.epochs * self.steps)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total)
        if self.data.multilabel:
            self.loss_fn: nn.Module = nn.BCEWithLogitsLoss()
        else:
            self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.amp_dtype = None
        self.scaler = None
        if cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")
            for split in (self.data.train, self.data.val, self.data.test):
                if split.images.numel() < _GPU_RESIDENT_BYTES:
                    split.images = split.images.to(dev)
                else:
                    split.images = split.images.pin_memory()
            torch.backends.cudnn.benchmark = True

    def _autocast(self):  # noqa: ANN202
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.dev.type, dtype=self.amp_dtype)

    def _check_limits(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise _Stop("cancelled", f"cancelled after {self._done_text()}")
        if self.time_budget_s is not None and time.perf_counter() - self.state.started > self.time_budget_s:
            raise _Stop("timeout", f"time budget of {self.time_budget_s:g} s reached after {self._done_text()}")

    def _done_text(self) -> str:
        return f"{self.state.epochs_done} epoch(s) and {self.state.steps_done} step(s)"

    def _train(self) -> None:
        assert self.model is not None
        cfg, s = self.cfg, self.state
        train = self.data.train
        s.train_started = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            if cfg.scheme == "linear_probing":
                self.model.eval()  # frozen backbone: BatchNorm statistics and dropout stay fixed
            else:
                self.model.train()
            total, count = 0.0, 0
            s.steps_done = 0
            for idx in D.batch_indices(len(train), cfg.batch_size, shuffle=True, generator=self.gen):
                self._check_limits()
                loss = self._step(train.images[idx.to(train.images.device)], train.labels[idx])
                if not math.isfinite(loss):
                    raise _Stop("diverged", f"loss became {loss} at epoch {epoch}, step {s.steps_done + 1}")
                s.steps_done += 1
                total, count = total + loss, count + 1
                self.meter.sample()
                self.emit("batch", epoch=epoch, step=s.steps_done, loss=loss)
            s.val_acc = self.evaluate_acc(self.data.val)
            s.epochs_done, s.steps_done = epoch, 0
            self.emit("epoch", epoch=epoch, step=self.steps, loss=total / max(count, 1), val_acc=s.val_acc)
            if self.patience is not None and self._early_stop(epoch):
                break
        s.train_seconds = time.perf_counter() - s.train_started
        if self.best is not None:  # keep the checkpoint with the best validation accuracy
            self.model.load_state_dict(self.best[1])
            s.val_acc = self.best[0]

    def _early_stop(self, epoch: int) -> bool:
        """Remember the best validation checkpoint; True after `patience` epochs without a gain."""
        assert self.model is not None and self.patience is not None
        val = self.state.val_acc if self.state.val_acc is not None else -1.0
        if self.best is None or val > self.best[0]:
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best, self.best_epoch = (val, state), epoch
            return False
        if epoch - self.best_epoch >= self.patience:
            log.info("early stop at epoch %d: no validation gain for %d epochs (best %.1f %% at "
                     "epoch %d)", epoch, self.patience, 100 * self.best[0], self.best_epoch)
            return True
        return False

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        assert self.model is not None
        x = self.transform(images.to(self.dev, non_blocking=True), train=True, generator=self.gen)
        y = labels.to(self.dev, non_blocking=True)
        if self.data.multilabel and self.cfg.label_smoothing:
            y = y * (1 - self.cfg.label_smoothing) + 0.5 * self.cfg.label_smoothing
        with self._autocast():
            loss = self.loss_fn(self.model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return value

    @torch.inference_mode()
    def predict(self, split: D.TensorSplit) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (softmax, or sigmoid when multi-label) and labels of a split."""
        assert self.model is not None
        self.model.eval()
        out = []
        for start in range(0, len(split), EVAL_BATCH):
            x = self.transform(split.images[start:start + EVAL_BATCH].to(self.dev, non_blocking=True), train=False)
            with self._autocast():
                logits = self.model(x).float()
            out.append((torch.sigmoid(logits) if self.data.multilabel else logits.softmax(1)).cpu())
        probs = torch.cat(out).numpy() if out else np.zeros((0, self.data.n_classes), np.float32)
        if not np.isfinite(probs).all():
            raise _Stop("diverged", "the model predicts NaN/inf")
        return probs, split.labels.numpy()

    def evaluate_acc(self, split: D.TensorSplit) -> float | None:
        if len(split) == 0:
            return None
        probs, labels = self.predict(split)
        return accuracy(probs, labels, multilabel=self.data.multilabel)


def _optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optimizer {cfg.optimizer!r} is not supported; use adamw, adam or sgd")
