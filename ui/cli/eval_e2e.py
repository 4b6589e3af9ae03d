"""`metallmix eval e2e DATASET... [--exclude NAME...] [--json]`: the end-to-end benchmark (`eval.e2e`).

    metallmix eval e2e medmnist:breastmnist --budget "CPU only, 2 minutes"
    metallmix eval e2e medmnist:breastmnist medmnist:pneumoniamnist --markdown e2e.md
    metallmix eval e2e ~/data/breast.npz --exclude breastmnist --json

The report is always written (atomically) to `--out` (default eval/results/e2e.json), after each
dataset, and the figure next to it; `--json` prints it, otherwise tables are printed.

Time to match (issue 17, `eval.e2e.timematch`): `--time-to-match` adds seeds (`--seeds 0,1,2` for
the recommended, space-default and fine-tune-default runs; `--search-seeds 0,1`), TPE and random
searches of up to `--max-multiple` (10) x the recommended run's training time, and per-dataset
figures (`--figures`, default docs/figures/e2e_match_*.png). It takes hours: run it in the
background; it is resumable (the state dir keeps every finished unit and each search's trials; run
the same command again to continue) and can run in parts (one dataset per command: the report
covers every dataset in the state dir):

    export METALLMIX_DATA=../shared/data/medmnist
    nohup metallmix eval e2e --all-offline --time-to-match --budget "CPU only, 1 minute" \
        --no-progress > e2e_match.log 2>&1 &
    tail -f e2e_match.log          # one line per unit and per search trial
    metallmix eval e2e --all-offline --time-to-match --budget "CPU only, 1 minute" \
        --report-only --markdown e2e_match.md    # the report so far (trains nothing)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "eval" / "results" / "e2e.json"
DEFAULT_MATCH_OUT = ROOT / "eval" / "results" / "e2e_match.json"
DEFAULT_FIGURES = ROOT / "docs" / "figures"


class _RichProgress:
    """Stages as log lines and the current training run as a bar, on stderr."""

    def __init__(self, console: Console, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                            console=console, transient=True, disable=not enabled)
        self.task = self.bar.add_task("", total=None, info="", visible=False)

    def __enter__(self) -> _RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def stage(self, dataset: str, text: str) -> None:
        self.console.log(f"[bold]{dataset}[/bold]: {text}")

    def event(self, event: Any) -> None:
        if event.kind == "start":
            self.bar.update(self.task, description=f"epoch 1/{event.epochs}", total=event.steps,
                            completed=0, info="", visible=True)
        elif event.kind == "batch":
            self.bar.update(self.task, description=f"epoch {event.epoch}/{event.epochs}",
                            completed=event.step, info=f"loss {event.loss:.3f}")
        elif event.kind == "epoch" and event.val_acc is not None:
            self.bar.update(self.task, info=f"val acc {event.val_acc:.3f}")
        elif event.kind == "end":
            self.bar.update(self.task, visible=False)
            self.console.log(f"  run ended: {event.message} ({event.elapsed_s:.0f} s)")


def _fmt(value: Optional[float], spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _print_report(report: dict, console: Console) -> None:
    for d in report["datasets"]:
        c = d["comparison"]
        table = Table(title=f"{d['dataset']} (held out: {', '.join(d['fit']['held_out'])}, "
                            f"{sum(d['fit']['n_excluded'].values())} records left out)")
        for i, header in enumerate(["method", "config", "acc %", "AUC", "Δ pts", "train s",
                                    "× rec."]):
            table.add_column(header, justify="left" if i < 2 else "right")
        runs = d["runs"]
        rows = [("recommended", runs["recommended"]), ("default", runs["default"]),
                (f"TPE ({runs['tpe']['n_trials']} trials)", runs["tpe"]["best"])]
        ratio = {"default": c["time_ratio"]["default/recommended"],
                 "tpe": c["time_ratio"]["tpe/recommended"]}
        for (name, run), arm in zip(rows, ("recommended", "default", "tpe")):
            seconds = runs["tpe"]["train_seconds"] if arm == "tpe" else (run or {}).get("train_seconds")
            table.add_row(name, (run or {}).get("short", "–"),
                          _pct(c["test_acc"][arm]),
                          _fmt(c["test_auc"][arm], ".3f"),
                          "" if arm == "recommended" else _fmt(c["gap_points"][arm], "+.1f"),
                          _fmt(seconds, ".0f"), "1.00" if arm == "recommended" else _fmt(ratio[arm], ".2f"))
        table.add_row("majority class", "most frequent training class",
                      _pct(c["test_acc"]["majority class"]), "",
                      _fmt(c["gap_points"]["majority class"], "+.1f"), "", "")
        for row in d["published"]:
            key = f"published: {row['method']}"
            kind = "100 ep, GPU" if row["method"].lower().startswith("resnet") else "AutoML"
            table.add_row(row["method"], f"published ({kind})", _pct(row["acc"]),
                          _fmt(row["auc"], ".3f"), _fmt(c["gap_points"][key], "+.1f"), "", "")
        console.print(table)
        for name, run in rows:
            if run:
                console.print(f"{name}: {run['label']} ({run['status']})", highlight=False)
        for note in d["notes"]:
            console.print(f"note: {note}")
    console.print(f"total {report.get('total_s', 0):.0f} s; budget \"{report['settings']['budget']}\", "
                  f"seed {report['settings']['seed']}, {report['machine']['training_device']}")


def _seeds(text: str, flag: str) -> list[int]:
    from knowledge.errors import ConfigError

    try:
        return [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected whole numbers, e.g. 0,1,2") from None


def e2e(
    datasets: list[str] = typer.Argument(None, help="Dataset specs: medmnist:breastmnist, a .npz "
                                         "file, an image folder, ... (each is held out in turn)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Also leave this base dataset out of "
                                      "every fit (when a file's name is not its base dataset's; "
                                      "repeatable). Must name a base dataset of the store."),
    budget: Optional[str] = typer.Option(None, "--budget", help="The advisor's compute budget "
                                         "(default: 'CPU only, 5 minutes', or '5 minutes on <GPU>' "
                                         "on CUDA)."),
    store: Optional[str] = typer.Option(None, "--store", help="Run store (a file path or a database URL) to fit on and to store "
                                         "the runs in (default: the default store, seeded with "
                                         "the shipped meta-dataset)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit, every training run and TPE."),
    tpe_warmup: int = typer.Option(5, "--tpe-warmup", min=0, help="TPE's first random trials."),
    tpe_max_trials: int = typer.Option(100, "--tpe-max-trials", min=1, help="At most this many "
                                       "TPE trials, whatever time is left."),
    limit_factor: float = typer.Option(2.0, "--limit-factor", help="Stop the recommended run "
                                       "after this many times the budget's time limit."),
    default_limit: Optional[float] = typer.Option(None, "--default-limit", help="Stop the "
                                                  "default-config run after SECONDS (default: "
                                                  "no limit)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: "
                                         "CUDA if present)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads per run "
                                          "(default: all cores)."),
    download_weights: bool = typer.Option(False, "--download-weights", help="Let timm download "
                                          "pretrained weights (default: only weights available "
                                          "offline; configs needing others are skipped)."),
    published_csv: Optional[Path] = typer.Option(None, "--published-csv", help="MedMNIST v2 "
                                                 "results table (default: the packaged copy)."),
    time_to_match: bool = typer.Option(False, "--time-to-match", help="Seeds, TPE and random "
                                       "searches up to --max-multiple x the recommended run's "
                                       "training time, speed-ups, figures; resumable (hours)."),
    all_offline: bool = typer.Option(False, "--all-offline", help="Every dataset readable offline "
                                     "(4 MedMNIST sets, Fashion-MNIST 5k, MNIST-5k, digits); "
                                     "unavailable ones are skipped."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Time to match: seeds of the recommended "
                              "and default runs."),
    search_seeds: str = typer.Option("0,1", "--search-seeds", help="Time to match: seeds of the "
                                     "searches (each among --seeds: paired with its run)."),
    max_multiple: float = typer.Option(10.0, "--max-multiple", help="Time to match: a search "
                                       "trains up to this many times the recommended run's time."),
    search_max_trials: int = typer.Option(300, "--search-max-trials", min=1, help="Time to match: "
                                          "at most this many trials per search."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="Time to match: finished "
                                             "units and search trials (default "
                                             "<METALLMIX_HOME>/e2e-state); rerun to resume."),
    figures_dir: Path = typer.Option(DEFAULT_FIGURES, "--figures", help="Time to match: folder "
                                     "of the per-dataset figures."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the JSON report "
                                       "(default eval/results/e2e.json; e2e_match.json with "
                                       "--time-to-match)."),
    figure_path: Optional[Path] = typer.Option(None, "--figure", help="The figure (default: "
                                               "--out with .png)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the tables as "
                                            "a Markdown fragment."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of tables."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress on stderr."),
    report_only: bool = typer.Option(False, "--report-only", help="Time to match: write the "
                                     "report, tables and figures of what the state dir holds, "
                                     "training nothing (e.g. while a run goes on in the "
                                     "background)."),
    same_time: bool = typer.Option(True, "--same-time/--no-same-time", help="Time to match: also "
                                   "the advisor's pick for a budget equal to the space default's "
                                   "training time, trained on the same seeds."),
) -> None:
    """End to end on held-out datasets: train the advisor's pick vs default config, TPE, published.

    With --time-to-match: how much TPE / random search it takes to reach the advisor's pick, over
    seeds; hours, resumable - see `metallmix eval e2e --help` and eval/e2e/timematch.py."""
    from eval.e2e import figure, run_e2e, write_json, write_markdown  # lazy: pulls in torch

    console = Console(stderr=True, log_path=False)
    if time_to_match:
        _time_to_match(**locals())
        return
    if report_only or not same_time:
        flag = "--report-only" if report_only else "--no-same-time"
        raise typer.BadParameter(f"{flag} goes with --time-to-match", param_hint=flag)
    if all_offline:
        from eval.e2e.offline import ALL_OFFLINE

        datasets = [*ALL_OFFLINE, *(datasets or [])]
    out = out or DEFAULT_OUT
    with _RichProgress(console, progress) as bar:
        report = run_e2e(
            datasets or [], exclude=exclude, budget=budget, store=store, seed=seed,
            tpe_warmup=tpe_warmup, tpe_max_trials=tpe_max_trials, limit_factor=limit_factor,
            default_limit_s=default_limit, device=device, num_threads=threads,
            download_weights=download_weights, published_csv=published_csv,
            progress=bar, checkpoint=lambda partial: write_json(partial, out))
    write_json(report, out)
    picture = figure(report, figure_path or out.with_suffix(".png"))
    if markdown is not None:
        write_markdown(report, markdown)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _print_report(report, Console())
    console.print(f"report written to {out}, figure to {picture}"
                  + (f", tables to {markdown}" if markdown else ""))


def _time_to_match(*, console: Console, datasets: Optional[list[str]], all_offline: bool,
                   out: Optional[Path], seeds: str, search_seeds: str, markdown: Optional[Path],
                   figures_dir: Path, as_json: bool, progress: bool, **kw: Any) -> None:
    from eval.e2e import write_json
    from eval.e2e.match_report import match_figures, match_markdown, write_match_markdown
    from eval.e2e.timematch import run_time_to_match

    out = out or DEFAULT_MATCH_OUT
    with _RichProgress(console, progress) as bar:
        report = run_time_to_match(
            datasets or [], all_offline=all_offline, exclude=kw["exclude"], budget=kw["budget"],
            store=kw["store"], fit_seed=kw["seed"], seeds=_seeds(seeds, "--seeds"),
            search_seeds=_seeds(search_seeds, "--search-seeds"), max_multiple=kw["max_multiple"],
            tpe_warmup=kw["tpe_warmup"], max_trials=kw["search_max_trials"],
            limit_factor=kw["limit_factor"], default_limit_s=kw["default_limit"],
            device=kw["device"], num_threads=kw["threads"],
            download_weights=kw["download_weights"], published_csv=kw["published_csv"],
            state_dir=kw["state_dir"], progress=bar, report_only=kw["report_only"],
            same_time=kw["same_time"], checkpoint=lambda partial: write_json(partial, out))
    write_json(report, out)
    pictures = match_figures(report, figures_dir)
    if markdown is not None:
        write_match_markdown(report, markdown)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(match_markdown(report))
    console.print(f"report written to {out}, {len(pictures)} figure(s) to {figures_dir}"
                  + (f", tables to {markdown}" if markdown else ""))
