"""Sweep workers as spawned processes (`_run_processes`): each runs `run_worker` and ends with a
`_WorkerDone` on the event queue; a worker dies with the sweep process, even one killed with SIGKILL
(`_die_with_parent`)."""

from __future__ import annotations

import _thread
import ctypes
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.errors import MetaLLMiXError, TrainingError
from knowledge.sweeps.worker import SweepJob, run_worker

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 15.0  # a worker whose parent died exits at the latest this long after


@dataclass(frozen=True)
class _WorkerDone:
    worker: int
    error: str | None = None
    interrupted: bool = False


def _die_with_parent() -> None:
    """In a spawned worker: end when the process that started it ends, even if it was killed.

    SIGTERM raises KeyboardInterrupt once (later ones are ignored), so the worker stops like Ctrl-C:
    the trainer stores its run as `cancelled` and the trial fails. Linux sends SIGTERM when the
    parent dies (`prctl(PR_SET_PDEATHSIG)`); on every platform a thread also waits for the parent's
    end and raises the same SIGTERM in the main thread, then exits hard `ORPHAN_GRACE_S` seconds
    later if the worker is still there (a long computation that does not return to Python)."""
    parent = mp.parent_process()
    if parent is None:
        return
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGTERM, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl(PR_SET_PDEATHSIG) is not available: %s", exc)

    def watch() -> None:
        parent.join()  # returns when the parent has ended
        if not stopping.is_set():
            log.warning("sweep worker %d: the sweep process ended; stopping", os.getpid())
            _thread.interrupt_main(signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    # also covers a parent that died before prctl was set (prctl only covers later deaths)
    threading.Thread(target=watch, name="metallmix-parent-watch", daemon=True).start()


def _worker_main(job: SweepJob, worker: int, events: Any) -> None:
    """Entry point of a spawned worker: every outcome ends with a `_WorkerDone` on the queue."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _die_with_parent()
        run_worker(job, worker, events.put)
    except KeyboardInterrupt:
        events.put(_WorkerDone(worker, interrupted=True))
    except MetaLLMiXError as exc:
        events.put(_WorkerDone(worker, error=str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        log.exception("sweep worker %d failed", worker)
        events.put(_WorkerDone(worker, error=f"{type(exc).__name__}: {exc}".splitlines()[0]))
    else:
        events.put(_WorkerDone(worker))


def _run_processes(job: SweepJob, workers: Sequence[int], on_event: Callable[[Any], None]) -> None:
    """Run `workers` as spawned processes; relay their events; raise the first worker error."""
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    procs = {w: ctx.Process(target=_worker_main, args=(job, w, events), name=f"metallmix-sweep-{w}")
             for w in workers}
    for proc in procs.values():
        proc.start()
    done: dict[int, _WorkerDone] = {}

    def handle(msg: Any) -> None:
        if isinstance(msg, _WorkerDone):
            done[msg.worker] = msg
        else:
            on_event(msg)

    try:
        while len(done) < len(procs):
            try:
                handle(events.get(timeout=0.5))
                continue
            except queue_mod.Empty:
                pass
            dead = [w for w, p in procs.items() if w not in done and p.exitcode is not None]
            if dead:  # drain what they sent before exiting, then call the silent ones crashed
                try:
                    while True:
                        handle(events.get(timeout=1.0))
                except queue_mod.Empty:
                    pass
                for w in dead:
                    if w not in done:
                        done[w] = _WorkerDone(w, error=f"worker {w} died (exit code {procs[w].exitcode})")
    finally:
        for proc in procs.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    if any(d.interrupted for d in done.values()):
        raise KeyboardInterrupt
    errors = [d.error for d in sorted(done.values(), key=lambda d: d.worker) if d.error]
    if errors:
        raise TrainingError(f"sweep worker failed: {errors[0]}")
