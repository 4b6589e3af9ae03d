"""`TrainingJob`: a training run in a background thread, with a stream of progress events.

    job = TrainingJob(dataset, config, seed=0).start()
    for event in job.events():      # ProgressEvent ... until the run ends
        print(event.kind, event.epoch, event.loss)
    record = job.result()           # the RunRecord (or the error that kept the run from starting)

`cancel()` stops the run between two batches; its record then has status 'cancelled'.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from knowledge.datasets.base import ImageDataset
from knowledge.runs.record import RunRecord
from knowledge.search_space import TrainConfig
from knowledge.training.events import ProgressEvent

_DONE = object()


class TrainingJob:
    """Runs `knowledge.training.train(dataset, config, **kwargs)` in a daemon thread."""

    def __init__(self, dataset: ImageDataset, config: TrainConfig | dict, **kwargs: Any) -> None:
        if "progress" in kwargs or "cancel" in kwargs:
            raise TypeError("TrainingJob supplies progress and cancel itself; use events() and cancel()")
        self.dataset = dataset
        self.config = config
        self.kwargs = kwargs
        self._cancel = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="metallmix-train", daemon=True)
        self._record: RunRecord | None = None
        self._error: BaseException | None = None

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def _run(self) -> None:
        from knowledge.training.launcher import train  # lazy: import cycle (via knowledge.training)

        try:
            self._record = train(self.dataset, self.config, progress=self._queue.put,
                                 cancel=self._cancel, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc
        finally:
            self._queue.put(_DONE)

    def events(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        """Progress events as they come, until the run ends. `timeout`: max seconds to wait for
        each event (`queue.Empty` when exceeded). Meant for one consumer."""
        while True:
            item = self._queue.get(timeout=timeout)
            if item is _DONE:
                self._queue.put(_DONE)  # later calls end at once too
                return
            yield item

    def cancel(self) -> None:
        """Ask the run to stop between two batches (status 'cancelled')."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        """Whether the run has ended (started and the thread finished)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def result(self, timeout: float | None = None) -> RunRecord:
        """Wait for the run's record. Re-raises the error that kept it from starting (ConfigError,
        TrainingError, ...); `TimeoutError` when `timeout` seconds pass first."""
        if self._thread.ident is None:
            raise RuntimeError("TrainingJob.result() before start()")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"training still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._record is not None
        return self._record
