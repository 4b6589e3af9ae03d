"""`metallmix recommend DATASET | --traits JSON`: the recommended configs, why, and the evidence.

No LLM: ranks every candidate config with the fitted meta-learner (first use on a store fits and
saves it; later calls load it), explains the best with SHAP and lists the most similar past runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from knowledge.errors import ConfigError, DatasetError
from ui.cli.analyze import DATASET_HELP

if TYPE_CHECKING:
    from knowledge.metafeatures import MetaFeatures
    from knowledge.recommend import Recommendation

TRAITS_HELP = (
    "What you know about the dataset, as a JSON object, e.g. "
    "'{\"n_instances\": 3000, \"n_classes\": 3, \"height\": 512, \"modality\": \"x-ray\"}'. Keys: "
    "n_instances, n_classes, imbalance_ratio, class_counts (list), height, width, channels, modality, "
    "task, class_entropy, class_size_mean/std/min/max."
)


def parse_traits(text: str) -> MetaFeatures:
    """Meta-features from a --traits JSON string; DatasetError (one line) when it is not usable."""
    from knowledge.metafeatures import short_repr  # lazy: CLI start-up (--help imports every command module)
    from knowledge.recommend import meta_from_traits  # lazy: CLI start-up (--help imports every command module)

    try:
        traits = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"--traits is not valid JSON ({exc.msg} at character {exc.pos}): "
                           f"{short_repr(text)}") from None
    except (ValueError, RecursionError) as exc:  # a number of >4,300 digits, nesting too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise DatasetError(f"--traits is not usable JSON ({reason}): {short_repr(text)}") from None
    return meta_from_traits(traits)


def recommend(
    dataset: Optional[str] = typer.Argument(None, metavar="[DATASET]", help=DATASET_HELP),
    traits: Optional[str] = typer.Option(None, "--traits", "-t", help=TRAITS_HELP),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, max=50, help="How many configs to list."),
    budget: Optional[str] = typer.Option(
        None, "--budget", "-b", help="Compute budget in words: 'one hour on a T4', 'CPU only', "
                                     "'10 minutes'. Default: no time limit, times on this CPU."),
    modality: Optional[str] = typer.Option(
        None, "--modality", "-m", help="Imaging modality of DATASET (overrides the dataset's own)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole recommendation as JSON."),
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    exclude: Optional[list[str]] = typer.Option(
        None, "--exclude", "-x", help="Leave runs of this base dataset out of the similar runs "
                                      "(repeatable)."),
    supported_only: bool = typer.Option(
        False, "--supported-only", help="Only configs within the training evidence (no value the "
                                        "meta-learner never saw)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the SHAP waterfall of the best "
                                        "config to this PNG file."),
    export: Optional[list[str]] = typer.Option(
        None, "--export", metavar="FORMAT", help="Hand the top-k configs (--top-k) to your own tuner: "
        "optuna (a study with them enqueued), ray (points_to_evaluate JSON), json (configs with "
        "predictions), command (metallmix train lines). Repeatable or comma-separated."),
    export_out: Optional[Path] = typer.Option(
        None, "--export-out", help="File for --export (default: stdout, instead of the tables); a "
                                   "folder when several formats are given."),
    export_space: str = typer.Option(
        "full", "--export-space", help="Search space the exported configs must lie in: full, or cpu "
                                       "(what metallmix sweep searches); configs outside are listed, "
                                       "not enqueued."),
) -> None:
    """Recommend a pretrained model and hyperparameters for a dataset, with reasons and evidence."""
    from knowledge.datasets import load_dataset  # lazy: CLI start-up (--help imports every command module)
    from knowledge.explain import plot_waterfall  # lazy: CLI start-up (--help imports every command module)
    from knowledge.recommend import (  # lazy: CLI start-up (--help imports every command module)
        recommend as run_recommend,
    )

    started = time.perf_counter()
    formats = _export_formats(export, export_out, export_space, as_json)
    if (dataset is None) == (traits is None):
        raise DatasetError("give either a DATASET or --traits JSON (one of them)")
    if traits is not None:
        if modality is not None:
            raise DatasetError("--modality goes with a DATASET; put \"modality\" into --traits")
        meta = parse_traits(traits)
    else:
        meta = load_dataset(dataset, modality=modality).meta_features()
    from rich.console import Console

    with Console(stderr=True).status("ranking configs (the first use on a store fits the "
                                     "meta-learner, about a minute; later calls load it) ..."):
        rec = run_recommend(meta, top_k=top_k, budget=budget, store=store, exclude_base=exclude,
                            supported_only=supported_only, dataset=dataset)
    if plot is not None:
        written = plot_waterfall(rec.explanation, plot)
        typer.echo(f"wrote the SHAP waterfall to {written}", err=True)
    if formats:
        _export(rec, formats, export_out, export_space)
        if export_out is None:  # the export is the output (pipeable)
            return
    if as_json:
        typer.echo(rec.model_dump_json(indent=2))
        return
    render(rec, total_seconds=time.perf_counter() - started)


def _export_formats(export: list[str] | None, out: Path | None, space: str, as_json: bool) -> list[str]:
    """The --export formats, checked before any work; ConfigError (one line) on bad input."""
    from knowledge.recommend.export import (  # lazy: CLI start-up (--help imports every command module)
        check_formats,
        get_space,
    )

    if not export:
        if out is not None:
            raise ConfigError("--export-out goes with --export FORMAT")
        return []
    formats = check_formats(export)
    get_space(space)
    if out is None and as_json:
        raise ConfigError("--json and --export both print to stdout; write the export to a file "
                          "with --export-out PATH")
    return formats


def _export(rec: Recommendation, formats: list[str], out: Path | None, space: str) -> None:
    """Write each export format to stdout or `out` (atomically); warn about configs outside the space."""
    from knowledge.recommend.export import (  # lazy: CLI start-up (--help imports every command module)
        export as export_text,
    )
    from knowledge.recommend.export import (  # lazy: CLI start-up (--help imports every command module)
        export_paths,
        outside_warnings,
        write_atomic,
    )

    for line in outside_warnings(rec, space):
        typer.echo(f"note: {line}", err=True)
    texts = {fmt: export_text(rec, fmt, space=space, dataset=rec.dataset) for fmt in formats}
    if out is None:
        for fmt, text in texts.items():
            if len(texts) > 1:
                typer.echo(f"# --- export: {fmt} ---")
            typer.echo(text, nl=not text.endswith("\n"))
        return
    for fmt, path in export_paths(out, formats).items():
        written = write_atomic(path, texts[fmt])
        typer.echo(f"wrote the {fmt} export of the top {len(rec.top)} configs to {written}", err=True)


# --- the rich view -------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _time(r: Any) -> str:
    from knowledge.metalearner.budget import format_seconds  # lazy: CLI start-up (--help imports every command module)

    text = format_seconds(r.predicted_seconds)
    return text + ("*" if r.time_is_estimate and r.predicted_seconds is not None else "")


def render(rec: Recommendation, *, total_seconds: float | None = None) -> None:
    """Print a recommendation as tables (stdout)."""
    from rich.console import Console
    from rich.markup import escape

    from knowledge.recommend import (  # lazy: CLI start-up (--help imports every command module)
        budget_text,
        config_label,
        more_accurate_text,
    )

    console = Console()
    what = escape(rec.dataset) if rec.dataset else "your dataset"
    b = rec.best
    budget = budget_text(rec)
    console.print(f"[bold]Recommendation for {what}[/] - budget: {escape(budget)}")
    console.print(f"[bold green]{escape(config_label(b))}[/]: predicted accuracy "
                  f"[bold]{_pct(b.predicted_acc)}[/] (80 % interval {_pct(b.acc_lo)}-{_pct(b.acc_hi)}), "
                  f"~{_time(b)} on {b.device}")
    c = b.config
    console.print(f"  [dim]optimizer {c.optimizer}, lr {c.lr:g}, weight decay {c.weight_decay:g}, "
                  f"batch {c.batch_size}, epochs {c.epochs}, augmentation {c.augmentation}, "
                  f"label smoothing {c.label_smoothing:g}[/]")
    for line in rec.evidence_lines():  # what backs the pick (or that it extrapolates)
        text = escape(line.removeprefix("- ").replace("**", ""))
        console.print(f"  [{'yellow' if rec.extrapolates else 'cyan'}]{text}[/]")
    known = ", ".join(f"{k}={v}" for k, v in rec.meta_features.model_dump().items() if v is not None)
    console.print(f"  [dim]traits: {escape(known) or 'none'}"
                  + (f"; unknown: {', '.join(rec.missing_traits)}" if rec.missing_traits else "")
                  + "[/]")

    console.print(_fitting(console, _top_table(rec), _top_table(rec, compact=True)))

    e = rec.explanation
    console.print(f"[bold]Why[/] (SHAP, accuracy points): average over past runs "
                  f"{e.base_value:.1f} % -> this config {e.prediction:.1f} %")
    for f in e.factors:
        color = "green" if f.contribution_points >= 0 else "red"
        console.print(f"  [{color}]{escape(f.text)}[/]")

    console.print("[bold]Alternatives[/]")
    if rec.faster is not None:
        f = rec.faster
        console.print(f"  faster: {escape(config_label(f))}: {_pct(f.predicted_acc)} in ~{_time(f)} "
                      f"(best ~{_time(b)})")
    else:
        console.print(f"  faster: no config ranked lower and at most {rec.faster_within_points:g} "
                      "points less accurate is predicted faster")
    if rec.more_accurate is not None:
        m = rec.more_accurate
        kind = more_accurate_text(rec)
        console.print(f"  {kind}: {escape(config_label(m))}: {_pct(m.predicted_acc)} in ~{_time(m)}")
    if rec.pareto:
        console.print("  accuracy/time front: " + ", ".join(
            f"{_pct(r.predicted_acc)} @ {_time(r)}" for r in rec.pareto))

    if rec.similar_runs:
        console.print(_fitting(console, _runs_table(rec), _runs_table(rec, compact=True)))
    for note in rec.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    records = ", ".join(f"{k} {v:,}" for k, v in (rec.learner.get("n_records") or {}).items())
    took = f"{rec.seconds:.2f} s" + (f", {total_seconds:.2f} s in all" if total_seconds else "")
    console.print(f"[dim]* rough time (model never timed here). Meta-learner fitted "
                  f"{rec.learner.get('fitted_at')} on {records} records; answered in {took}.[/]")


# --- the tables, full width or compact (issue 16 item 7: readable at 80 columns) ------------------

_SCHEME_SHORT = {"end_to_end": "e2e", "linear_probing": "probe", "knn": "kNN"}


def _training(pretrained: bool, scheme: str) -> str:
    """How a config trains, in one short word: 'fine-tune' (pretrained, end to end), 'scratch',
    'probe' (linear probing), 'kNN'; 'probe scratch' where a frozen scheme has random weights."""
    if scheme == "end_to_end":
        return "fine-tune" if pretrained else "scratch"
    return _SCHEME_SHORT.get(scheme, scheme) + ("" if pretrained else " scratch")


def _same(values: list[str]) -> str | None:
    """The one value every row shares, else None."""
    return values[0] if values and len(set(values)) == 1 else None


def _fitting(console: Any, full: Any, compact: Any) -> Any:
    """`full` where it fits the terminal without shrinking a column, else `compact`."""
    unbounded = console.options.update_width(1_000_000)  # the table's own width, not the terminal's
    return full if console.measure(full, options=unbounded).maximum <= console.width else compact


def _top_table(rec: Recommendation, *, compact: bool = False) -> Any:
    """The top configs. Full: every hyperparameter in its own column. Compact (narrow terminals):
    model, training (fine-tune/scratch/probe/kNN), px, lr, epochs, predicted accuracy and time;
    weight decay, batch, augmentation and the 80 % intervals go into the caption below."""
    from rich import box
    from rich.table import Table

    title = (f"top {len(rec.top)} of {rec.n_candidates} configs (ranked by the meta-learner's "
             "ranking score)")
    if not compact:
        table = Table(title=title, title_justify="left")
        for name, justify in (("#", "right"), ("model", "left"), ("pre", "center"), ("scheme", "left"),
                              ("px", "right"), ("lr", "right"), ("wd", "right"), ("batch", "right"),
                              ("ep", "right"), ("aug", "left"), ("pred. acc", "right"),
                              ("80 % interval", "right"), ("time", "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in rec.top:
            c = r.config
            table.add_row(str(r.rank), c.spec.label, "yes" if c.pretrained else "no", c.scheme,
                          str(c.resolution), f"{c.lr:.0e}", f"{c.weight_decay:g}", str(c.batch_size),
                          str(c.epochs), c.augmentation, _pct(r.predicted_acc),
                          f"{_pct(r.acc_lo)}-{_pct(r.acc_hi)}", _time(r))
        return table
    folded = {"wd": [f"{r.config.weight_decay:.1g}" for r in rec.top],
              "batch": [str(r.config.batch_size) for r in rec.top],
              "aug": [r.config.augmentation for r in rec.top]}
    shared = [f"{name} {_same(values)}" for name, values in folded.items() if _same(values)]
    varying = [name for name, values in folded.items() if not _same(values)]
    caption = [", ".join(shared) + (" in every row" if len(rec.top) > 1 else "")] if shared else []
    if varying:
        caption.append(" / ".join(varying) + ": " + ", ".join(
            f"#{r.rank} " + "/".join(folded[name][i] for name in varying) for i, r in enumerate(rec.top)))
    caption.append("80 % intervals: " + ", ".join(
        f"#{r.rank} {100 * r.acc_lo:.1f}-{100 * r.acc_hi:.1f} %" for r in rec.top))
    table = Table(title=title, title_justify="left", caption=". ".join(caption),
                  caption_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for name, justify in (("#", "right"), ("model", "left"), ("training", "left"), ("px", "right"),
                          ("lr", "right"), ("ep", "right"), ("acc", "right"), ("time", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rec.top:
        c = r.config
        table.add_row(str(r.rank), c.spec.label, _training(c.pretrained, c.scheme),
                      str(c.resolution), f"{c.lr:.0e}", str(c.epochs), _pct(r.predicted_acc), _time(r))
    return table


def _runs_table(rec: Recommendation, *, compact: bool = False) -> Any:
    """The similar past runs; compact: model labels, short schemes, fewer padding columns."""
    from rich import box
    from rich.table import Table

    from knowledge.search_space import MODELS  # lazy: CLI start-up (--help imports every command module)

    title = "similar past runs (best per dataset)"
    if not compact:
        runs = Table(title=title, title_justify="left")
        for name in ("dataset", "model", "scheme", "px", "test acc", "source", "similarity"):
            runs.add_column(name)
        for h in rec.similar_runs:
            runs.add_row(h.dataset_id, h.model, h.scheme, str(h.resolution),
                         "-" if h.test_acc is None else _pct(h.test_acc), h.source, f"{h.score:.2f}")
        return runs
    runs = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, collapse_padding=True)
    models = [MODELS[h.model].label if h.model in MODELS else h.model for h in rec.similar_runs]
    for name, justify in (("dataset", "left"), ("model", "left"), ("scheme", "left"), ("px", "right"),
                          ("acc", "right"), ("source", "left"), ("sim.", "right")):
        runs.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                        min_width=max(map(len, models)) if name == "model" else None)
    for h, model in zip(rec.similar_runs, models):
        dataset = h.dataset_id.replace("?", " (", 1).replace("&", ", ") + (")" if "?" in h.dataset_id else "")
        runs.add_row(dataset, model, _SCHEME_SHORT.get(h.scheme, h.scheme),
                     str(h.resolution), "-" if h.test_acc is None else _pct(h.test_acc), h.source,
                     f"{h.score:.2f}")
    return runs
