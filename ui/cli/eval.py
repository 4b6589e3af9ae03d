"""`metallmix eval lodo`: the leave-one-dataset-out benchmark of the meta-learner (`eval.lodo`).

    metallmix eval lodo                                  # default store (+ published MedMNIST+)
    metallmix eval lodo --store runs.sqlite --no-published --seeds 10 --markdown lodo.md
    metallmix eval lodo --published-only --out eval/results/lodo_published.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from knowledge.errors import StoreError

app = typer.Typer(name="eval", help="Benchmarks of the recommender.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _eval() -> None:
    """Benchmarks of the recommender."""


DEFAULT_OUT = Path(__file__).resolve().parents[2] / "eval" / "results" / "lodo.json"


def _shown(store: Optional[str]) -> str:
    """The store as a report names it (a database URL's password masked)."""
    from knowledge.runs.storages import mask_url  # lazy: CLI start-up

    return mask_url(store) if store else "default"


def load_records(store: Optional[str], published: bool, published_only: bool = False) -> list:
    """The store's records, plus (or minus) the published MedMNIST+ records.

    `published=True` adds the published table (`load_medmnist_plus` on the shared results csv,
    with the class-counts table next to it when present, as `metallmix runs import-medmnist-plus`
    and the shipped meta-dataset do: without it the class-balance meta-features are missing) when
    the store holds no published record (ids are stable, so nothing is counted twice);
    `published=False` leaves every published record out; `published_only` keeps only them.
    """
    from knowledge.meta_dataset.medmnist_plus import (  # lazy: CLI start-up (--help imports every command module)
        default_class_counts_csv,
        default_results_csv,
        load_medmnist_plus,
    )
    from knowledge.meta_dataset.shipped import open_store  # lazy: CLI start-up (--help imports every command module)

    records = open_store(store).query()
    if not published:
        return [r for r in records if r.provenance.source != "published"]
    if not any(r.provenance.source == "published" for r in records):
        results = default_results_csv()
        counts = default_class_counts_csv(results)
        seen = {r.run_id for r in records}
        records += [r for r in load_medmnist_plus(results, counts if counts.is_file() else None)
                    if r.run_id not in seen]
    if published_only:
        records = [r for r in records if r.provenance.source == "published"]
    return records


def _print_tables(report: dict, console: Console) -> None:
    from eval.lodo import table_rows  # lazy: pulls in pandas (CLI start-up)

    headers = ["method", "regret@1 mean", "median", "best-of-5 mean", "median",
               "points@1 mean", "rank mean", "median"]
    for split, entry in report["summary"].items():
        if not entry["n_tasks"]:
            continue
        table = Table(title=f"LODO — {split} ({entry['n_tasks']} tasks)")
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in table_rows(report, split):
            table.add_row(*row)
        console.print(table)
    timing = report["timing"]
    if timing:
        parts = [f"{name} median {1000 * t['median']:.1f} ms" for name, t in timing.items()
                 if name != "fit_s"]
        console.print("time to a recommendation: " + ", ".join(parts)
                      + f"; total {report['total_s']:.0f} s")


@app.command("lodo")
def lodo(
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    published: bool = typer.Option(True, "--published/--no-published", help="Include the "
                                   "published MedMNIST+ records (added from the shared table "
                                   "when the store has none) or leave them out."),
    published_only: bool = typer.Option(False, "--published-only", help="Only the published "
                                        "records (benchmark (a) of docs/BENCHMARKS.md)."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Seeds of the TPE baselines."),
    tpe_trials: str = typer.Option("5,10,20", "--tpe-trials", help="Trial budgets of the TPE "
                                   "baselines, comma-separated."),
    min_records: int = typer.Option(5, "--min-records", min=2, help="Successful runs a held-out "
                                    "(dataset, source) needs to be a task."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Where to write the JSON report."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the tables as "
                                            "a Markdown fragment (for docs/BENCHMARKS.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of tables."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar over folds."),
    path: str = typer.Option("recorded", "--path", help="'recorded': rank each held-out task's "
                             "recorded configs against the baselines; 'production': what "
                             "recommend() itself answers for the task (its candidates and budget "
                             "handling), scored where the task recorded the pick."),
    candidates: str = typer.Option("evidence", "--candidates", help="production path only: "
                                   "'evidence' (today's candidates) or 'free' (the free sample of "
                                   "the search space, the code before evidence-bounded candidates)."),
) -> None:
    """Leave-one-dataset-out: regret and rank of the meta-learner's pick vs baselines."""
    from eval.lodo import evaluate_lodo, to_markdown  # lazy: pulls in pandas (CLI start-up)

    if path not in ("recorded", "production"):
        raise typer.BadParameter(f"expected 'recorded' or 'production', got {path!r}",
                                 param_hint="--path")
    if candidates not in ("evidence", "free"):
        raise typer.BadParameter(f"expected 'evidence' or 'free', got {candidates!r}",
                                 param_hint="--candidates")

    try:
        budgets = tuple(int(n) for n in tpe_trials.split(",") if n.strip())
    except ValueError:
        budgets = ()
    if not budgets or min(budgets) < 1:
        raise typer.BadParameter(f"expected positive integers like 5,10,20, got {tpe_trials!r}",
                                 param_hint="--tpe-trials")
    console = Console(stderr=True)
    if published_only and not published:
        raise typer.BadParameter("--published-only needs the published records (drop "
                                 "--no-published)", param_hint="--published-only")
    with console.status("reading runs ..."):
        records = load_records(store, published, published_only)
    if path == "production":
        _production(records, store, published_only, candidates, out, markdown, as_json, progress)
        return
    report = evaluate_lodo(records, seeds=seeds, tpe_trials=budgets, min_records=min_records, progress=progress)
    report["store"] = _shown(store)
    report["settings"]["published"] = published
    report["settings"]["published_only"] = published_only
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(to_markdown(report))
    except OSError as exc:
        raise StoreError(f"cannot write the report: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_tables(report, Console())
    console.print(f"report written to {out}" + (f" and {markdown}" if markdown else ""))


def _production(records: list, store: Optional[str], published_only: bool, candidates: str,
                out: Path, markdown: Optional[Path], as_json: bool, progress: bool) -> None:
    """`metallmix eval lodo --path production` (`eval.lodo_production`)."""
    from eval.lodo_production import evaluate_production, to_markdown  # lazy: pulls in pandas (CLI start-up)

    report = evaluate_production(records, candidates=candidates, progress=progress)
    report["store"] = _shown(store)
    report["published_only"] = published_only
    if out == DEFAULT_OUT:
        out = out.with_name("lodo_production.json")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(to_markdown(report))
    except OSError as exc:
        raise StoreError(f"cannot write the report: {exc}") from None
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else to_markdown(report))
    Console(stderr=True).print(f"report written to {out}" + (f" and {markdown}" if markdown else ""))


from ui.cli import eval_agent, eval_e2e  # noqa: E402 - each command lives in its own module

app.command("agent")(eval_agent.agent)
app.command("e2e")(eval_e2e.e2e)


@app.command("questions")
def questions(
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    out: Path = typer.Option(Path(__file__).resolve().parents[2] / "eval" / "results"
                             / "questions.json", "--out", help="Where to write the JSON report "
                             "(the Markdown goes beside it, .md)."),
    questions_file: Optional[Path] = typer.Option(None, "--questions", help="Questions YAML "
                                                  "(default: eval/questions.yaml)."),
) -> None:
    """Realistic user questions asked of `metallmix recommend`: picks, evidence, intervals, times."""
    import eval.questions as question_suite  # lazy: CLI start-up (--help imports every command module)

    console = Console(stderr=True)
    asked = question_suite.load_questions(questions_file)
    with console.status(f"asking {len(asked)} questions (the first use on a store fits the "
                        "meta-learner) ..."):
        report = question_suite.run_suite(asked, store=store)
    md = question_suite.write_report(report, out)
    typer.echo(question_suite.to_markdown(report))
    console.print(f"report written to {out} and {md}")


@app.command("calibrate-gpu", context_settings={"allow_extra_args": True,
                                                "ignore_unknown_options": True})
def calibrate_gpu(ctx: typer.Context) -> None:
    """Time training steps of a model x resolution x batch grid on this GPU (throughput, peak
    memory) for the cost and memory models; options as `python -m eval.calibrate_gpu --help`."""
    from eval import calibrate_gpu as gpu_calibration  # lazy: CLI start-up (--help imports every command module)

    raise typer.Exit(gpu_calibration.main(ctx.args))


@app.command("store-throughput", context_settings={"allow_extra_args": True,
                                                   "ignore_unknown_options": True})
def store_throughput(ctx: typer.Context) -> None:
    """Sweep trials per hour and run-store writes per second on SQLite vs a throwaway PostgreSQL
    server, on this machine; options as `python -m eval.store_throughput --help` (--smoke: seconds)."""
    from eval import store_throughput as bench  # lazy: CLI start-up (--help imports every command module)

    raise typer.Exit(bench.main(ctx.args))
