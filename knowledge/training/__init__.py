"""The training launcher: trains a `TrainConfig` on an `ImageDataset` and records the run.

    from knowledge.training import train, TrainingJob, pretrained_available
    record = train(dataset, config, seed=0, time_budget_s=300)

Modules: `launcher` (train), `jobs` (TrainingJob, a run in a thread), `events` (ProgressEvent),
`models` (timm model building, linear probing), `weights` (offline pretrained weights), `data`
(tensors, splits, batch transforms), `metrics`, `device`.
"""

import os

# Idle OpenMP threads sleep instead of spinning. On a shared or oversubscribed CPU (parallel sweep
# workers, other jobs) spinning threads made a 2-thread training step 3-7x slower in our
# measurements; sleeping costs little otherwise. libgomp reads this when torch loads, so it only
# takes effect when this package is imported before torch; an explicit setting always wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from knowledge.training.events import ProgressEvent
from knowledge.training.jobs import TrainingJob
from knowledge.training.launcher import check_config, train
from knowledge.training.weights import LOCAL_WEIGHTS, pretrained_available

__all__ = ["LOCAL_WEIGHTS", "ProgressEvent", "TrainingJob", "check_config", "pretrained_available", "train"]
