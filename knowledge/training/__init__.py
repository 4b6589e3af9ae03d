"""The training launcher: trains a `TrainConfig` on an `ImageDataset` and records the run.

    from knowledge.training import train, TrainingJob, pretrained_available
    record = train(dataset, config, seed=0, time_budget_s=300)

Modules: `launcher` (train), `jobs` (TrainingJob, a run in a thread), `events` (ProgressEvent),
`models` (timm model building, linear probing), `weights` (offline pretrained weights), `data`
(tensors, splits, batch transforms), `metrics`, `device`.
"""

from knowledge.training.events import ProgressEvent
from knowledge.training.jobs import TrainingJob
from knowledge.training.launcher import check_config, train
from knowledge.training.weights import LOCAL_WEIGHTS, pretrained_available

__all__ = ["LOCAL_WEIGHTS", "ProgressEvent", "TrainingJob", "check_config", "pretrained_available", "train"]
