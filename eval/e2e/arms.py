"""The three trained arms of an end-to-end task: the recommended config, the default config of the
same model, and Optuna TPE over `CPU_SPACE` given the recommended run's training time.

Every run goes through the backend's trainer (`knowledge.training.train` by default) into the run
store, tagged `provenance.study = 'e2e:<dataset id>:<arm>'` (TPE trials: `...:tpe#<trial>`), so e2e
runs are recognisable among the others. Times compared are the launcher's `train_seconds` (the
training loop's wall time: no model building, no evaluation); each arm's whole wall time is
reported beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from knowledge.datasets.base import ImageDataset
from knowledge.errors import TrainingError
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.budget import Budget
from knowledge.metalearner.model import MetaLearner
from knowledge.metalearner.ranking import RankedConfig, rank
from knowledge.runs.record import RunRecord
from knowledge.search_space import DEFAULT_MODEL, SearchSpace, TrainConfig
from knowledge.sweeps.backend import Backend
from knowledge.sweeps.objective import Objective, RunNotOk
from knowledge.sweeps.study import make_sampler, study_name
from knowledge.training.events import ProgressCallback

log = logging.getLogger(__name__)

STUDY_PREFIX = "e2e"
DEFAULT_CONFIG_TEXT = (
    "the search space's defaults (`TrainConfig`): the recommended model, pretrained when its "
    "weights are available here (else from scratch), end-to-end, 28 px, AdamW lr 1e-3, weight "
    "decay 1e-4, batch 64, 10 epochs, light augmentation, no label smoothing")
FINETUNE_CONFIG_TEXT = (
    "a practitioner's fine-tuning default (DeiT/timm recipe, short schedule): the recommended "
    "model, pretrained when its weights are available here (else from scratch), end-to-end, the "
    "dataset's native resolution clamped to the CPU space (28-64 px), AdamW lr 1e-3, weight decay "
    "0.05, batch 64, 10 epochs, light augmentation, label smoothing 0.1")
FINETUNE_SETTINGS: dict[str, Any] = {
    "scheme": "end_to_end", "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
    "batch_size": 64, "epochs": 10, "augmentation": "light", "label_smoothing": 0.1}
FINETUNE_RESOLUTIONS = (28, 32, 48, 64)  # CPU_SPACE's
SKIPPED_SHOWN = 5
MIN_TRIAL_FRACTION = 0.02  # TPE stops when less than this share of its time (or 1 s) is left


def study_tag(dataset_id: str, arm: str) -> str:
    """'e2e:<dataset id>:<arm>': the study name e2e runs are stored under."""
    return study_name(dataset_id, arm, prefix=STUDY_PREFIX)


def is_benchmark_run(study: str | None) -> bool:
    """Whether a run of this study was made by the benchmark itself (`study_tag`)."""
    return str(study or "").startswith(STUDY_PREFIX + ":")


@dataclass
class Trainer:
    """The backend's `train` with the task's device and progress callback; remembers every record
    it returned and the wall time of each call."""

    backend: Backend
    device: str | None = None
    on_event: ProgressCallback | None = None
    records: list[RunRecord] = field(default_factory=list)
    walls: dict[str, float] = field(default_factory=dict)

    def __call__(self, dataset: ImageDataset, config: TrainConfig, **kwargs: Any) -> RunRecord:
        if self.device is not None:
            kwargs.setdefault("device", self.device)
        if self.on_event is not None:
            kwargs.setdefault("progress", self.on_event)
        started = time.perf_counter()
        record = self.backend.train(dataset, config, **kwargs)
        self.walls[record.run_id] = time.perf_counter() - started
        self.records.append(record)
        return record

    def as_backend(self) -> Backend:
        """A `Backend` whose trainer is this one (for the sweep's `Objective`)."""
        return Backend(load_dataset=self.backend.load_dataset, train=self,
                       pretrained_available=self.backend.pretrained_available)


def run_summary(record: RunRecord, wall_s: float | None) -> dict[str, Any]:
    """What the report keeps of a run."""
    out = record.outcome
    return {
        "run_id": record.run_id, "status": record.status, "error": record.error,
        "config": record.config.model_dump(mode="json"), "label": label(record.config),
        "short": short_label(record.config),
        "val_acc": out.val_acc, "test_acc": out.test_acc, "test_auc": out.test_auc,
        "test_f1": out.test_f1, "train_seconds": out.train_seconds,
        "epochs_completed": out.epochs_completed,
        "wall_seconds": None if wall_s is None else round(wall_s, 3),
        "study": record.provenance.study, "device": record.provenance.device,
    }


def label(config: TrainConfig) -> str:
    """Every field of a config: 'ResNet-18, from scratch, end_to_end, 28 px, adamw lr 1e-03, ...'."""
    c = config
    return (f"{c.spec.label}, {'pretrained' if c.pretrained else 'from scratch'}, {c.scheme}, "
            f"{c.resolution} px, {c.optimizer} lr {c.lr:.0e}, wd {c.weight_decay:.1g}, "
            f"batch {c.batch_size}, {c.epochs} ep, aug {c.augmentation}, ls {c.label_smoothing:.2g}")


def short_label(config: TrainConfig) -> str:
    """The fields that matter most, for tables: 'ResNet-18 scratch 28 px lr 1e-03 10 ep'."""
    c = config
    probe = " probe" if c.scheme == "linear_probing" else ""
    return (f"{c.spec.label} {'pretrained' if c.pretrained else 'scratch'}{probe} {c.resolution} px "
            f"lr {c.lr:.0e} {c.epochs} ep")


def ranked_view(ranked: RankedConfig) -> dict[str, Any]:
    """A ranked config with its predictions, for the report."""
    return {"label": label(ranked.config), "config": ranked.config.model_dump(mode="json"),
            "predicted_acc": ranked.predicted_acc, "acc_lo": ranked.acc_lo, "acc_hi": ranked.acc_hi,
            "predicted_seconds": ranked.predicted_seconds,
            "time_is_estimate": ranked.time_is_estimate, "rank": ranked.rank}


# --- the recommended arm -------------------------------------------------------------------------

def pick_trainable(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
                   why_not: Callable[[TrainConfig], str | None]) -> tuple[RankedConfig, dict[str, Any]]:
    """The best-ranked config within the budget that can be trained here (`why_not(config)` is
    None), and what was skipped above it: {'count', 'shown': [{'rank', 'config', 'reason'}]}.
    The ranking is `knowledge.metalearner.rank`, whose first entry is the advisor's `best`.
    TrainingError when no config within the budget can be trained."""
    ranked = rank(meta, learner, top_k=None, budget=budget)
    skipped: list[dict[str, Any]] = []
    for r in ranked:
        reason = why_not(r.config)
        if reason is None:
            return r, {"count": len(skipped), "shown": skipped[:SKIPPED_SHOWN]}
        skipped.append({"rank": r.rank, "config": label(r.config), "reason": reason})
    raise TrainingError(f"none of the {len(ranked)} configs within the budget can be trained here "
                        f"(e.g. {skipped[0]['reason']}); allow downloads of pretrained weights")


def default_config(model: str, pretrained_ok: bool) -> TrainConfig:
    """The default-config arm (`DEFAULT_CONFIG_TEXT`)."""
    return TrainConfig(model=model, pretrained=pretrained_ok)


def finetune_config(model: str, pretrained_ok: bool, native_px: int | None) -> TrainConfig:
    """The fine-tune-default arm (`FINETUNE_CONFIG_TEXT`): what a practitioner would run without
    a search. AdamW with weight decay 0.05 and label smoothing 0.1 is the DeiT recipe that timm's
    fine-tuning scripts and the Hugging Face image-classification examples start from; lr 1e-3 is
    the usual AdamW rate for a small CNN at batch 64 (no warm-up or schedule search); 10 epochs
    and light augmentation match the search space's defaults, so the two default arms differ in
    regularisation and resolution only. The model is the recommended one, so the comparison
    isolates the hyperparameters. Resolution: the smallest CPU-space size at or above the
    dataset's native size (8 px digits -> 28 px; 28 px MedMNIST -> 28 px; at most 64 px)."""
    native = native_px or FINETUNE_RESOLUTIONS[0]
    resolution = next((r for r in FINETUNE_RESOLUTIONS if r >= native), FINETUNE_RESOLUTIONS[-1])
    return TrainConfig(model=model, pretrained=pretrained_ok, resolution=resolution,
                       **FINETUNE_SETTINGS)


PRACTITIONER_MODELS = (DEFAULT_MODEL, "efficientnet_lite0")  # ResNet-18 first: MedMNIST v2's baseline
PRACTITIONER_DEFAULT_TEXT = (
    "the search space's defaults (`TrainConfig`) on a practitioner's model: ResNet-18 (MedMNIST v2's "
    "baseline), pretrained when its weights are available here (else from scratch), end-to-end, 28 px, "
    "AdamW lr 1e-3, weight decay 1e-4, batch 64, 10 epochs, light augmentation, no label smoothing")
PRACTITIONER_FINETUNE_TEXT = (
    "a practitioner's fine-tuning default (DeiT/timm recipe, short schedule): the first of ResNet-18, "
    "EfficientNet-Lite0 whose ImageNet weights are available here (offline: EfficientNet-Lite0), at 64 px "
    "(the CPU space's largest: ImageNet features need more than 28 px), AdamW lr 1e-3, weight decay 0.05, "
    "batch 64, 10 epochs, light augmentation, label smoothing 0.1")


def practitioner_default(pretrained_ok: Callable[[str], bool]) -> TrainConfig:
    """The time-to-match's space-default arm (`PRACTITIONER_DEFAULT_TEXT`): independent of the
    recommendation, so a pick of a model that is poor at 28 px (MobileNetV3-Small from scratch:
    40 % on MNIST) does not make the default look worse than a practitioner's is."""
    model = PRACTITIONER_MODELS[0]
    return TrainConfig(model=model, pretrained=pretrained_ok(model))


def practitioner_finetune(pretrained_ok: Callable[[str], bool], native_px: int | None) -> TrainConfig:
    """The time-to-match's fine-tune arm (`PRACTITIONER_FINETUNE_TEXT`): a pretrained model where
    weights exist, at 64 px; with none, ResNet-18 from scratch at `finetune_config`'s resolution."""
    for model in PRACTITIONER_MODELS:
        if pretrained_ok(model):
            return TrainConfig(model=model, pretrained=True, resolution=FINETUNE_RESOLUTIONS[-1],
                               **FINETUNE_SETTINGS)
    return finetune_config(PRACTITIONER_MODELS[0], False, native_px)


def unit_matches(unit: dict[str, Any] | None, config: TrainConfig) -> bool:
    """Whether a finished unit of the state dir is a run of `config` (a unit of an arm whose
    config has since changed is not: it is run again)."""
    return unit is not None and TrainConfig(**unit["config"]) == config


def pick_recommended(rec: Any, why_not: Callable[[TrainConfig], str | None]) -> RankedConfig | None:
    """The production path: the advisor's `best`, or the first of its `top` that can be trained
    here; None when none of them can (the caller falls back to `pick_trainable`)."""
    for ranked in [rec.best, *rec.top]:
        if why_not(ranked.config) is None:
            return ranked
    return None


# --- the TPE arm ---------------------------------------------------------------------------------

def run_tpe(dataset: ImageDataset, trainer: Trainer, *, budget_s: float, space: SearchSpace,
            seed: int, warmup: int, max_trials: int, store: Any, num_threads: int | None) -> dict[str, Any]:
    """Optuna TPE (`make_sampler('tpe')`: multivariate, the first `warmup` trials random) over
    `space`, the trials run one after the other until their summed `train_seconds` reach
    `budget_s` (each trial may train at most the time left: the launcher stops it, status
    'timeout', and evaluates what it trained) or `max_trials` ran; at least one trial runs, even
    when the recommended run trained for less than the minimum trial time. The best trial is the one with
    the highest validation accuracy among those evaluated (ok or timeout; the earliest on ties);
    its test accuracy is the arm's result."""
    name = study_tag(dataset.id, "tpe")
    sampler = make_sampler("tpe", seed=seed, warmup=warmup)
    objective = Objective(dataset, space, trainer.as_backend(), store=store, seed=seed,
                          num_threads=num_threads)
    floor = max(1.0, MIN_TRIAL_FRACTION * budget_s)
    trials: list[dict[str, Any]] = []
    spent = 0.0
    stopped = "budget"
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines replace Optuna's
    try:
        study = optuna.create_study(study_name=name, direction="maximize", sampler=sampler)
        while not trials or budget_s - spent >= floor:  # at least one trial, however short
            if len(trials) >= max_trials:
                stopped = "max_trials"
                break
            objective.time_budget_s = max(budget_s - spent, 1.0)
            n_before = len(trainer.records)
            study.optimize(objective, n_trials=1, catch=(RunNotOk,))
            if len(trainer.records) == n_before:  # the trial failed before training
                stopped = "trial_error"
                break
            record = trainer.records[-1]
            spent += record.outcome.train_seconds or 0.0
            trials.append({"number": study.trials[-1].number,
                           **run_summary(record, trainer.walls.get(record.run_id))})
            log.info("tpe trial %d: %s %s val_acc=%s, %.1f of %.1f s spent", len(trials) - 1,
                     record.config.model, record.status, record.outcome.val_acc, spent, budget_s)
    finally:
        optuna.logging.set_verbosity(previous)
    evaluated = [t for t in trials if t["val_acc"] is not None and t["test_acc"] is not None]
    best = max(evaluated, key=lambda t: (t["val_acc"], -t["number"]), default=None)
    return {
        "budget_seconds": round(budget_s, 3),
        "train_seconds": round(spent, 3),
        "wall_seconds": round(sum(t["wall_seconds"] or 0.0 for t in trials), 3),
        "overshoot_seconds": round(max(0.0, spent - budget_s), 3),
        "n_trials": len(trials),
        "stopped": stopped,
        "best": best,
        "trials": trials,
        "sampler": {"name": "tpe", "multivariate": True, "warmup_random_trials": warmup,
                    "seed": seed, "space": space.name},
    }
