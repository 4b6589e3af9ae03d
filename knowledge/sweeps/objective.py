"""The objective of a sweep trial: draw a config, train it, return its validation accuracy.

Every run lands in the run store (the trainer stores it), tagged `provenance.study =
'<study name>#<trial number>'`. A run whose status is not `ok` (failed, diverged, out-of-memory,
timeout) raises `RunNotOk`, which the sweep passes to Optuna's `catch`: the trial is marked FAIL
rather than given a made-up low accuracy, so the sampler never learns from a number that was not
measured. Trial user attributes keep `run_id`, `status`, `model`, `config`, `val_acc`, `seconds`
and `error`.

A retried trial (its process died: `retry_history` names the trials it retries) first looks in the
run store for a run one of those trials finished and stored before its process died; it adopts that
run (`adopted` user attribute) instead of training the same config again, so a worker killed between
storing its run and reporting the trial leaves one record, not two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from knowledge.datasets.base import ImageDataset
from knowledge.search_space import Categorical, SearchSpace, TrainConfig
from knowledge.sweeps.backend import Backend
from knowledge.sweeps.study import FINISHED_STATUSES

MAX_ERROR_CHARS = 500


class RunNotOk(Exception):
    """A trial's run ended without a usable validation accuracy (status is not `ok`)."""


def suggest_config(
    trial: optuna.Trial, space: SearchSpace, pretrained_available: Callable[[str], bool]
) -> TrainConfig:
    """Draw a config. Conditional: `pretrained` is a trial parameter only for models with
    pretrained weights available (`pretrained_available(model)`); for the others it is fixed False
    and not part of the trial's parameters. Everything else comes from `space.suggest`."""
    base: dict[str, Any] = dict(space.fixed)
    if "model" not in base:
        base["model"] = trial.suggest_categorical("model", list(_choices(space, "model")))
    if "pretrained" not in base:
        choices = _choices(space, "pretrained", default=(True, False))
        if True in choices and pretrained_available(base["model"]):
            base["pretrained"] = (
                trial.suggest_categorical("pretrained", list(choices)) if len(choices) > 1 else True
            )
        else:
            base["pretrained"] = False
    return space.suggest(trial, base=base)


def _choices(space: SearchSpace, key: str, default: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    param = space.params.get(key)
    return param.choices if isinstance(param, Categorical) else default


@dataclass
class Objective:
    """`objective(trial) -> val_acc` for one dataset (the dataset is loaded once, by the caller)."""

    dataset: ImageDataset
    space: SearchSpace
    backend: Backend
    store: Any = None  # a RunStore, handed to the trainer
    seed: int = 0
    time_budget_s: float | None = None
    num_threads: int | None = None

    def _stored_run(self, trial: optuna.Trial, config: TrainConfig) -> Any:
        """The finished run of a trial this one retries, if its dead process stored one."""
        history = trial.storage.get_trial_system_attrs(trial._trial_id).get("retry_history")
        if self.store is None or not isinstance(history, list) or not history:
            return None
        tags = {f"{trial.study.study_name}#{n}" for n in history}
        for record in self.store.query(dataset_id=self.dataset.id):
            if (record.provenance.study in tags and record.status in FINISHED_STATUSES
                    and record.config == config):
                return record
        return None

    def __call__(self, trial: optuna.Trial) -> float:
        config = suggest_config(trial, self.space, self.backend.pretrained_available)
        start = time.perf_counter()
        record = self._stored_run(trial, config)
        if record is not None:
            trial.set_user_attr("adopted", record.provenance.study)
        else:
            record = self.backend.train(
                self.dataset,
                config,
                seed=self.seed,
                time_budget_s=self.time_budget_s,
                num_threads=self.num_threads,
                store=self.store,
                study=f"{trial.study.study_name}#{trial.number}",
            )
        val_acc = record.outcome.val_acc
        attrs = {
            "run_id": record.run_id,
            "status": record.status,
            "model": config.model,
            "config": config.model_dump(mode="json"),
            "val_acc": val_acc,
            "seconds": round(time.perf_counter() - start, 3),
            "error": (record.error or "")[:MAX_ERROR_CHARS] or None,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if record.status == "cancelled":  # the trainer caught a Ctrl-C: stop the sweep
            raise KeyboardInterrupt
        if record.status != "ok" or val_acc is None:
            raise RunNotOk(f"run {record.run_id}: {record.status}: {record.error or 'no val_acc'}")
        return float(val_acc)
