"""Progress events a training run reports while it runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Literal

EventKind = Literal["start", "epoch", "batch", "end"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    `start` once before the first batch (`steps` = batches per epoch), `batch` after each optimizer
    step (`step` counts within the epoch, `loss` is that batch's loss), `epoch` after each epoch
    (`loss` = mean training loss, `val_acc` = validation accuracy), `end` once with the final status in
    `message` (also for failed, diverged, timed-out and cancelled runs).
    """

    kind: EventKind
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    val_acc: float | None = None
    elapsed_s: float = 0.0
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


ProgressCallback = Callable[[ProgressEvent], None]
