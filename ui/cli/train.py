"""`metallmix train DATASET --model M ...`: one training run, shown with a progress bar and stored.

The run trains in a background `TrainingJob`; the main thread draws the progress bar, so Ctrl-C
cancels the run between two batches and its record is still stored, with status 'cancelled' (exit
code 130). SIGTERM (`kill`, a job scheduler, a container stop) does the same (exit code 143); the
previous SIGTERM handler is restored when the command ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from knowledge.search_space import MODELS, TrainConfig

_DEFAULTS = TrainConfig(model="resnet18")


class Scheme(str, Enum):
    end_to_end = "end_to_end"
    linear_probing = "linear_probing"


class Optimizer(str, Enum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"


class Augmentation(str, Enum):
    none = "none"
    light = "light"
    strong = "strong"


def train(
    dataset: str = typer.Argument(..., help="A .npz file, an image folder or a named source "
                                            "(medmnist:pneumoniamnist), optionally with ?n=500&seed=0."),
    model: str = typer.Option(..., "--model", "-m", help="timm model: " + ", ".join(
        m.name for m in MODELS.values() if m.trainable)),
    pretrained: bool = typer.Option(_DEFAULTS.pretrained, "--pretrained/--no-pretrained",
                                    help="Start from ImageNet weights (offline: local weights only)."),
    scheme: Scheme = typer.Option(_DEFAULTS.scheme, "--scheme", help="Fine-tune everything or only the head."),
    resolution: int = typer.Option(_DEFAULTS.resolution, "--resolution", "-r", help="Input size in pixels."),
    optimizer: Optimizer = typer.Option(_DEFAULTS.optimizer, "--optimizer"),
    lr: float = typer.Option(_DEFAULTS.lr, "--lr", help="Peak learning rate (cosine schedule)."),
    weight_decay: float = typer.Option(_DEFAULTS.weight_decay, "--weight-decay"),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, "--batch-size", "-b"),
    epochs: int = typer.Option(_DEFAULTS.epochs, "--epochs", "-e"),
    augmentation: Augmentation = typer.Option(_DEFAULTS.augmentation, "--augmentation"),
    label_smoothing: float = typer.Option(_DEFAULTS.label_smoothing, "--label-smoothing"),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, shuffling and augmentation."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop after SECONDS and "
                                                "evaluate what was trained (status 'timeout')."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local pretrained state dict to start from."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA if present)."),
    modality: Optional[str] = typer.Option(None, "--modality", help="Imaging modality, e.g. x-ray."),
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not store the run."),
    as_json: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
) -> None:
    """Train one model on a dataset, store the run and print its results."""
    from knowledge.datasets import load_dataset  # lazy: CLI start-up (--help imports every command module)
    from knowledge.meta_dataset.shipped import open_store  # lazy: CLI start-up (--help imports every command module)
    from knowledge.training import TrainingJob, check_config  # lazy: pulls in torch
    from knowledge.training.data import check_labels  # lazy: pulls in torch
    from knowledge.training.launcher import check_time_budget  # lazy: pulls in torch

    config = check_config({
        "model": model, "pretrained": pretrained, "scheme": scheme.value, "resolution": resolution,
        "optimizer": optimizer.value, "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
        "epochs": epochs, "augmentation": augmentation.value, "label_smoothing": label_smoothing,
    })
    check_time_budget(time_budget)  # before loading the dataset
    run_store = None if no_store else open_store(store)
    console = Console(stderr=True)
    with console.status(f"loading {dataset} ..."):
        data = load_dataset(dataset, modality=modality)
    check_labels(data)  # before the progress bar (the launcher checks them again)
    job = TrainingJob(data, config, seed=seed, time_budget_s=time_budget, device=device,
                      weights_path=weights, num_threads=threads)
    terminated = threading.Event()

    def on_sigterm() -> None:
        if terminated.is_set():  # a second SIGTERM stops waiting, like a second Ctrl-C
            raise KeyboardInterrupt
        terminated.set()
        job.cancel()

    with _on_sigterm(on_sigterm):
        job.start()
        _follow(job, console)
        record = job.result()
    if terminated.is_set():
        console.log("cancelled (SIGTERM)")
    if run_store is not None:
        run_store.add(record)
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
    else:
        _print_record(record, Console(), stored_in=run_store)
    if record.status != "ok":
        cancelled = 128 + signal.SIGTERM if terminated.is_set() else 130
        raise typer.Exit(cancelled if record.status == "cancelled" else 1)


@contextmanager
def _on_sigterm(action: Callable[[], None]) -> Iterator[None]:
    """Call `action()` (in the main thread) on SIGTERM while inside; the previous handler is restored
    afterwards. Outside the main thread (no handler can be installed there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: action())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _follow(job: Any, console: Console) -> None:
    """Draw the job's progress (on stderr, so `--json` output stays clean) until it ends; Ctrl-C
    cancels the run (a second Ctrl-C stops waiting)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting", total=None, info="")
        last_val = ""
        try:
            for event in job.events():
                if event.kind == "start":
                    bar.update(task, description=f"epoch 1/{event.epochs}", total=event.steps, completed=0)
                    console.log(event.message)
                elif event.kind == "batch":
                    bar.update(task, description=f"epoch {event.epoch}/{event.epochs}", completed=event.step,
                               info=f"loss {event.loss:.4f}{last_val}")
                elif event.kind == "epoch":
                    last_val = f"  val acc {event.val_acc:.3f}" if event.val_acc is not None else ""
                    console.log(f"epoch {event.epoch}/{event.epochs}: loss {event.loss:.4f}{last_val}")
                    if event.epoch < event.epochs:
                        bar.update(task, description=f"epoch {event.epoch + 1}/{event.epochs}", completed=0)
        except KeyboardInterrupt:
            console.log("cancelling (Ctrl-C) ...")
            job.cancel()


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _print_record(record: Any, console: Console, *, stored_in: Any = None) -> None:
    out, cfg = record.outcome, record.config
    table = Table(title=f"{cfg.model} on {record.dataset_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    status = record.status if record.status == "ok" else f"[red]{record.status}[/red]"
    table.add_row("status", status + (f" ({record.error})" if record.error else ""))
    table.add_row("config", ", ".join(f"{k}={v}" for k, v in cfg.model_dump().items() if k != "model"))
    table.add_row("val accuracy", _fmt(out.val_acc))
    table.add_row("test accuracy", _fmt(out.test_acc))
    table.add_row("test AUC", _fmt(out.test_auc))
    table.add_row("test macro-F1", _fmt(out.test_f1))
    table.add_row("epochs", f"{_fmt(out.epochs_completed, 'd')} of {cfg.epochs}")
    table.add_row("train time", f"{_fmt(out.train_seconds, '.1f')} s ({_fmt(out.seconds_per_epoch, '.2f')} s/epoch)")
    table.add_row("peak memory", f"{_fmt(out.peak_memory_mb, '.0f')} MB")
    table.add_row("device", str(record.provenance.device))
    table.add_row("run id", record.run_id + (f" (stored in {stored_in.path})" if stored_in is not None else ""))
    console.print(table)
