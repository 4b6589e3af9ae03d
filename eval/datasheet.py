"""Figures and counts for the meta-dataset's datasheet (docs/META_DATASET.md).

    python -m eval.datasheet [--meta knowledge/data/meta_dataset.parquet] [--out docs/figures]

Writes three PNG plots (meta-feature distributions, accuracy by model family, runs per dataset) and
`meta_dataset_counts.md`, a markdown fragment of the counts, into `--out`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from knowledge.meta_dataset.shipped import SHIPPED  # noqa: E402
from knowledge.runs.io import read_frame  # noqa: E402
from knowledge.search_space import MODELS  # noqa: E402

SOURCES = ("published", "own")
COLORS = {"published": "#4C72B0", "own": "#DD8452"}


def _family(model: str) -> str:
    spec = MODELS.get(model)
    return spec.family if spec else "other"


def plot_meta_features(frame: pd.DataFrame, path: Path) -> None:
    """Histograms of the main meta-features, one dataset variant counted once, by source."""
    per_dataset = frame.drop_duplicates(["dataset_id", "prov.source"])
    panels = [
        ("mf.n_instances", "training images (log10)", np.log10),
        ("mf.n_classes", "classes", None),
        ("mf.imbalance_ratio", "imbalance ratio (log10)", np.log10),
        ("mf.class_entropy", "class entropy (bits)", None),
        ("mf.height", "native image size (px)", None),
        ("mf.channels", "channels", None),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (col, label, fn) in zip(axes.flat, panels):
        values = {s: per_dataset.loc[per_dataset["prov.source"] == s, col].dropna().astype(float) for s in SOURCES}
        if fn is not None:
            values = {s: fn(v) for s, v in values.items()}
        everything = pd.concat(list(values.values()))
        if not len(everything):
            continue
        lo, hi = float(everything.min()), float(everything.max())
        bins = np.linspace(lo - 0.5, hi + 0.5, 16) if hi - lo < 1e-9 else np.linspace(lo, hi, 16)
        for source, v in values.items():
            if len(v):
                ax.hist(v, bins=bins, alpha=0.6, label=f"{source} ({len(v)})", color=COLORS[source])
        ax.set_xlabel(label)
        ax.set_ylabel("dataset variants")
        ax.legend(fontsize=8)
    fig.suptitle("Meta-feature coverage (one count per dataset variant and source)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_by_family(frame: pd.DataFrame, path: Path) -> None:
    """Test accuracy (ok runs) by model family, published and own side by side."""
    ok = frame[frame["status"] == "ok"].copy()
    ok["family"] = ok["cfg.model"].map(_family)
    ok["acc"] = ok["out.test_acc"].fillna(ok["out.val_acc"]) * 100
    families = sorted(ok["family"].unique())
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.38
    for i, source in enumerate(SOURCES):
        data = [ok.loc[(ok["family"] == f) & (ok["prov.source"] == source), "acc"].dropna() for f in families]
        pos = np.arange(len(families)) + (i - 0.5) * width
        keep = [j for j, d in enumerate(data) if len(d)]
        if keep:
            bp = ax.boxplot([data[j] for j in keep], positions=pos[keep], widths=width * 0.9,
                            patch_artist=True, showfliers=False)
            for box in bp["boxes"]:
                box.set_facecolor(COLORS[source])
                box.set_alpha(0.7)
        ax.plot([], [], color=COLORS[source], lw=8, alpha=0.7, label=source)
    ax.set_xticks(np.arange(len(families)), families)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy by model family (status ok)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_runs_per_dataset(frame: pd.DataFrame, path: Path) -> None:
    """Number of records per base dataset, stacked by source and status."""
    table = frame.assign(kind=frame["prov.source"] + " " + frame["status"]).pivot_table(
        index="base_dataset", columns="kind", values="run_id", aggfunc="count", fill_value=0
    )
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(table) + 1.5))
    table.plot.barh(stacked=True, ax=ax, width=0.8)
    ax.set_xlabel("records")
    ax.set_title("Records per base dataset")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def counts_markdown(frame: pd.DataFrame) -> str:
    """Markdown tables: records by source and status; own runs by base dataset."""
    lines = ["| source | records | ok | other statuses | dataset variants | base datasets |", "|---|---|---|---|---|---|"]
    for source in SOURCES:
        part = frame[frame["prov.source"] == source]
        other = part.loc[part["status"] != "ok", "status"].value_counts().to_dict()
        lines.append(
            f"| {source} | {len(part)} | {(part['status'] == 'ok').sum()} | "
            f"{', '.join(f'{k} {v}' for k, v in other.items()) or '-'} | "
            f"{part['dataset_id'].nunique()} | {part['base_dataset'].nunique()} |"
        )
    own = frame[frame["prov.source"] == "own"]
    if len(own):
        lines += ["", "| own runs: base dataset | medical | variants | runs | ok | best val acc |",
                  "|---|---|---|---|---|---|"]
        for base, part in own.groupby("base_dataset"):
            lines.append(
                f"| {base} | {bool(part['medical'].iloc[0])} | {part['dataset_id'].nunique()} | {len(part)} | "
                f"{(part['status'] == 'ok').sum()} | {part['out.val_acc'].max():.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--meta", type=Path, default=SHIPPED)
    parser.add_argument("--out", type=Path, default=repo / "docs" / "figures")
    args = parser.parse_args()
    frame = read_frame(args.meta)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_meta_features(frame, args.out / "meta_features.png")
    plot_accuracy_by_family(frame, args.out / "accuracy_by_family.png")
    plot_runs_per_dataset(frame, args.out / "runs_per_dataset.png")
    (args.out / "meta_dataset_counts.md").write_text(counts_markdown(frame))
    print(counts_markdown(frame))


if __name__ == "__main__":
    main()
