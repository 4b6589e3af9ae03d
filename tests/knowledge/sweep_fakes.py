"""Fake loader and trainer for sweep tests: importable top-level functions, so that spawned sweep
workers can use them too. The fake run's validation accuracy is a smooth function of the config;
`resnet18` runs end out-of-memory. Environment switches (read in the process that trains):
`FAKE_CRASH_AT=N` kills the process in trial N (`FAKE_CRASH_AFTER_STORE_AT=N`: once its run is
stored), `FAKE_INTERRUPT_AT=N` raises KeyboardInterrupt,
`FAKE_SLEEP_S=S` makes every run take S seconds."""

from __future__ import annotations

import math
import os
import time

import numpy as np

from knowledge.datasets.base import ImageDataset, Split
from knowledge.errors import DatasetError
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import CPU_SPACE
from knowledge.sweeps.backend import Backend

LOADS: list[str] = []  # specs loaded in this process
WITH_WEIGHTS = {"resnet18", "efficientnet_lite0"}
OOM_MODEL = "resnet18"
OK_SPACE = CPU_SPACE.restrict("ok", model=["mobilenetv3_small_100", "efficientnet_lite0"])


def fake_load(spec: str) -> ImageDataset:
    """`fake:<name>` is a tiny random dataset; anything else is a DatasetError."""
    if not spec.startswith("fake:"):
        raise DatasetError(f"dataset not found: {spec}")
    LOADS.append(spec)
    rng = np.random.default_rng(len(spec))
    x = rng.integers(0, 255, size=(40, 8, 8, 1), dtype=np.uint8)
    y = np.arange(40) % 2
    return ImageDataset(id=spec.strip(), base=spec.split(":", 1)[1], train=Split(x, y),
                        val=Split(x[:10], y[:10]), medical=False, modality="other")


def fake_pretrained(model: str) -> bool:
    return model in WITH_WEIGHTS


def _trial_number(study: str | None) -> int:
    return int(study.rsplit("#", 1)[1]) if study and "#" in study else -1


def fake_train(dataset: ImageDataset, config, *, seed=0, time_budget_s=None, num_threads=None,
               progress=None, cancel=None, store=None, study=None) -> RunRecord:
    number = _trial_number(study)
    if os.environ.get("FAKE_CRASH_AT") == str(number):
        time.sleep(0.5)  # let the heartbeat thread beat once
        os._exit(3)
    if os.environ.get("FAKE_INTERRUPT_AT") == str(number):
        raise KeyboardInterrupt
    time.sleep(float(os.environ.get("FAKE_SLEEP_S", "0")))
    oom = config.model == OOM_MODEL
    val_acc = None if oom else 0.5 + 0.4 * math.exp(-(math.log10(config.lr) + 2.5) ** 2)
    record = RunRecord(
        dataset_id=dataset.id, base_dataset=dataset.base, medical=dataset.medical,
        meta_features=dataset.meta_features(), config=config,
        outcome=Outcome(val_acc=val_acc, train_seconds=0.01),
        status="out-of-memory" if oom else "ok", error="fake OOM" if oom else None,
        provenance=Provenance(source="own", seed=seed, study=study,
                              device=f"fake pid={os.getpid()} threads={num_threads}"),
    )
    if store is not None:
        store.add(record)
    if os.environ.get("FAKE_CRASH_AFTER_STORE_AT") == str(number):  # dies before reporting the trial
        os._exit(3)
    return record


FAKE = Backend(load_dataset=fake_load, train=fake_train, pretrained_available=fake_pretrained)


def crashing_sweep(storage: str, store: str, trials: int, crash_at: int) -> None:
    """Run a sweep in a fresh process that dies (os._exit) in trial `crash_at`."""
    os.environ["FAKE_CRASH_AT"] = str(crash_at)
    from knowledge.sweeps import run_sweep

    run_sweep(["fake:a"], trials=trials, sampler="random", space=OK_SPACE, storage=storage, store_path=store,
              progress=False, heartbeat_interval=1, grace_period=1, backend=FAKE)


def slow_sweep(storage: str, store: str, trials: int, workers: int, sleep_s: float) -> None:
    """Run a sweep in a fresh process whose every run takes `sleep_s` seconds (another session on
    the same storage, or a parent whose workers are busy when it is killed)."""
    os.environ["FAKE_SLEEP_S"] = str(sleep_s)
    from knowledge.sweeps import run_sweep

    run_sweep(["fake:a"], trials=trials, sampler="random", space=OK_SPACE, storage=storage,
              store_path=store, progress=False, workers=workers, backend=FAKE)
