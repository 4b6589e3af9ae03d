"""The end-to-end report: per-dataset comparison, Markdown table, paper-style figure, atomic files.

Accuracy gaps are in percentage points, recommended minus the other (positive: the recommendation
is better). Time ratios divide another arm's training time by the recommended run's (TPE is
stopped once its summed training time reaches the recommended run's, so its ratio is about 1 by
design; it says how much the last trial overshot).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from knowledge.errors import StoreError

log = logging.getLogger(__name__)

ARMS = ("recommended", "default", "tpe")


def _arm_run(entry: dict[str, Any], arm: str) -> dict[str, Any] | None:
    runs = entry["runs"]
    return runs["tpe"]["best"] if arm == "tpe" else runs[arm]


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else round(num / den, 3)


def compare(entry: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and AUC of every arm and published row, the gaps to the recommended run, and the
    training-time ratios (module doc)."""
    acc: dict[str, float | None] = {}
    auc: dict[str, float | None] = {}
    for arm in ARMS:
        run = _arm_run(entry, arm)
        acc[arm] = run["test_acc"] if run else None
        auc[arm] = run["test_auc"] if run else None
    acc["majority class"], auc["majority class"] = entry.get("majority_class_acc"), None
    for row in entry["published"]:
        acc[f"published: {row['method']}"] = row["acc"]
        auc[f"published: {row['method']}"] = row["auc"]
    mine = acc["recommended"]
    gaps = {name: (None if mine is None or value is None else round(100 * (mine - value), 2))
            for name, value in acc.items() if name != "recommended"}
    runs = entry["runs"]
    rec_train = runs["recommended"]["train_seconds"]
    rec_wall = runs["recommended"]["wall_seconds"]
    best_published = max(entry["published"], key=lambda r: r["acc"], default=None)
    return {
        "test_acc": acc,
        "test_auc": auc,
        "gap_points": gaps,
        "best_published": None if best_published is None else {
            "method": best_published["method"], "acc": best_published["acc"],
            "gap_points": gaps[f"published: {best_published['method']}"]},
        "train_seconds": {"recommended": rec_train, "default": runs["default"]["train_seconds"],
                          "tpe": runs["tpe"]["train_seconds"]},
        "time_ratio": {"tpe/recommended": _ratio(runs["tpe"]["train_seconds"], rec_train),
                       "default/recommended": _ratio(runs["default"]["train_seconds"], rec_train)},
        "wall_ratio": {"tpe/recommended": _ratio(runs["tpe"]["wall_seconds"], rec_wall),
                       "default/recommended": _ratio(runs["default"]["wall_seconds"], rec_wall)},
    }


# --- Markdown -----------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _signed(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f}"


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def _times(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown fragment: conditions, the main table, the published comparison."""
    s, m = report["settings"], report["machine"]
    lines = [
        f"End-to-end benchmark (`metallmix eval e2e`), budget \"{s['budget']}\", seed {s['seed']}, "
        f"trained on {m['training_device']} ({m['cpu_count']} CPUs, {m['platform']}). Per dataset "
        "the meta-learner is fitted without every record of its base dataset (own runs, variants "
        "and published rows). *Recommended*: the advisor's best config within the budget that can "
        f"be trained here; *default*: {s['default_config']}; *TPE*: Optuna TPE over "
        f"`{s['tpe']['space']}` (first {s['tpe']['warmup_random_trials']} trials random), trials "
        "until their training time reaches the recommended run's, best trial by validation "
        "accuracy; *majority class*: always predicting the most frequent training class. Test "
        "accuracy in %, Δ in points (recommended − other), times are training-loop seconds.",
        "",
        "| dataset | held out (records) | recommended config | rec. ACC | default ACC | TPE ACC "
        "(trials) | majority class | Δ vs default | Δ vs TPE | rec. train s | default / rec. time "
        "| TPE / rec. time |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in report["datasets"]:
        c, runs = d["comparison"], d["runs"]
        held = ", ".join(d["fit"]["held_out"])
        n_held = sum(d["fit"]["n_excluded"].values())
        rec = runs["recommended"]
        status = "" if rec["status"] == "ok" else f" ({rec['status']})"
        lines.append(
            f"| {d['dataset']} | {held} ({n_held}) | {rec['short']}{status} | "
            f"{_pct(c['test_acc']['recommended'])} | {_pct(c['test_acc']['default'])} | "
            f"{_pct(c['test_acc']['tpe'])} ({runs['tpe']['n_trials']}) | "
            f"{_pct(c['test_acc']['majority class'])} | "
            f"{_signed(c['gap_points']['default'])} | {_signed(c['gap_points']['tpe'])} | "
            f"{_secs(rec['train_seconds'])} | {_times(c['time_ratio']['default/recommended'])} | "
            f"{_times(c['time_ratio']['tpe/recommended'])} |")
    lines += [""] + [f"- {d['dataset']}: recommended {d['runs']['recommended']['label']}; TPE's "
                     f"best {((d['runs']['tpe']['best'] or {}).get('label')) or '–'}"
                     for d in report["datasets"]]
    methods: list[str] = []
    for d in report["datasets"]:
        methods += [r["method"] for r in d["published"] if r["method"] not in methods]
    if methods:
        lines += ["", "Published MedMNIST v2 test accuracy in % (Δ = recommended − published, "
                  "points); the ResNet rows are trained 100 epochs on a GPU, the AutoML rows "
                  f"searched with their own budgets ({s['published']}).", "",
                  "| dataset | recommended | " + " | ".join(methods) + " |",
                  "|---|---:|" + "---:|" * len(methods)]
        for d in report["datasets"]:
            c = d["comparison"]
            cells = []
            for method in methods:
                value = c["test_acc"].get(f"published: {method}")
                gap = c["gap_points"].get(f"published: {method}")
                cells.append("–" if value is None else f"{_pct(value)} ({_signed(gap)})")
            lines.append(f"| {d['dataset']} | {_pct(c['test_acc']['recommended'])} | "
                         + " | ".join(cells) + " |")
    lines += ["", f"Total wall time {report.get('total_s', 0):.0f} s."]
    return "\n".join(lines) + "\n"


# --- the figure ---------------------------------------------------------------------------------

def figure(report: dict[str, Any], path: str | Path) -> Path:
    """The paper-style figure: test accuracy per dataset of the three arms beside the published
    ResNet-18 (28) and best published result (left), and their training times (right, log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = report["datasets"]
    names = [d["base_dataset"] for d in datasets]
    x = np.arange(len(datasets))
    width = 0.26
    colors = {"recommended": "#1f77b4", "default": "#7f7f7f", "tpe": "#ff7f0e"}
    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(max(8, 3 + 2.2 * len(datasets)), 4))
    all_secs = []
    for i, arm in enumerate(ARMS):
        accs = [100 * (d["comparison"]["test_acc"][arm] or 0) for d in datasets]
        secs = [d["comparison"]["train_seconds"][arm] or 0 for d in datasets]
        all_secs += [v for v in secs if v > 0]
        bars = ax_acc.bar(x + (i - 1) * width, accs, width, label=arm, color=colors[arm])
        ax_acc.bar_label(bars, fmt="%.1f", fontsize=7)
        bars = ax_time.bar(x + (i - 1) * width, secs, width, label=arm, color=colors[arm])
        ax_time.bar_label(bars, fmt="%.0f", fontsize=7)
    for d, xi in zip(datasets, x):
        acc = d["comparison"]["test_acc"]
        resnet = acc.get("published: ResNet-18 (28)")
        best = d["comparison"]["best_published"]
        if resnet is not None:
            ax_acc.hlines(100 * resnet, xi - 1.5 * width, xi + 1.5 * width, colors="black",
                          linestyles="--", label="ResNet-18 (28), 100 ep GPU" if xi == 0 else None)
        majority = acc.get("majority class")
        if majority is not None:
            ax_acc.hlines(100 * majority, xi - 1.5 * width, xi + 1.5 * width, colors="gray",
                          linestyles=":", label="majority class" if xi == 0 else None)
        if best is not None:
            ax_acc.plot([xi], [100 * best["acc"]], marker="*", color="crimson", markersize=10,
                        linestyle="none", label="best published" if xi == 0 else None)
    ax_acc.set_xticks(x, names)
    ax_acc.set_ylabel("test accuracy (%)")
    low = min([100 * v for d in datasets for v in d["comparison"]["test_acc"].values()
               if v is not None] or [0])
    ax_acc.set_ylim(max(0, low - 10), 100)
    ax_acc.set_title("test accuracy")
    ax_time.set_xticks(x, names)
    if all_secs and max(all_secs) / min(all_secs) > 30:
        ax_time.set_yscale("log")
    ax_time.set_ylabel("training time (s)")
    ax_time.set_title("training time")
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle(f"held-out datasets, budget: {report['settings']['budget']}", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """`fig` as a PNG at `path`, atomically; the figure is closed."""
    import matplotlib.pyplot as plt  # lazy: matplotlib only for figures

    out = Path(path)
    try:
        atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=120))
    finally:
        plt.close(fig)
    return out


# --- files ----------------------------------------------------------------------------------------

def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """`write(handle)` into a temp file beside `path`, then `os.replace` it there; StoreError
    (naming the file) when that fails. A failed write leaves an existing file untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise


def write_json(report: dict[str, Any], path: str | Path) -> None:
    """The report as indented JSON, atomically."""
    text = json.dumps(report, indent=2, default=str) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_markdown(report: dict[str, Any], path: str | Path) -> None:
    """`to_markdown(report)`, atomically."""
    text = to_markdown(report)
    atomic_write(path, lambda fh: fh.write(text.encode()))
