"""The time-to-match view of the report: a Markdown table and one figure per dataset.

Table: per held-out dataset the test accuracy (%, mean ± std over seeds) of the recommended config
and of the two default arms, the searches' incumbent test accuracy at 1x / 3x / 10x the
recommended run's training time (mean over search seeds), and the speed-ups (per search seed, then
their median; `curves` for the definitions). Figure: the incumbent's test accuracy against
cumulative training seconds, one step line per sampler and seed, with each seed's recommended,
default and fine-tune-default run as points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.e2e import curves
from eval.e2e.report import atomic_write, save_figure, to_markdown
from eval.e2e.state import slug

ARM_NAMES = {"recommended": "recommended", "default": "space default", "finetune": "fine-tune default"}
SAMPLER_NAMES = {"tpe": "TPE", "random": "random"}
COLORS = {"recommended": "#1f77b4", "default": "#7f7f7f", "finetune": "#2ca02c",
          "tpe": "#ff7f0e", "random": "#9467bd"}
MARKERS = {"recommended": "*", "default": "o", "finetune": "s"}


def _pm(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "–"
    if stat["n"] < 2:
        return f"{100 * stat['mean']:.1f} (n=1)"
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _signed(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f}"


def _same_speedups(same: dict[str, Any], sampler: str) -> str:
    """'> 3.9× (> 4.1×, > 3.7×)': the median over search seeds, then each seed's."""
    found = (same.get("speed_up") or {}).get(sampler) or {}
    if not found.get("runs"):
        return "–"
    each = ", ".join(s["label"] for s in found["runs"])
    return f"{found['median']['label']} ({each})" if len(found["runs"]) > 1 else each


def _speedups(search: dict[str, Any]) -> str:
    runs = search["runs"]
    if not runs:
        return "–"
    each = ", ".join(s["speed_up"]["label"] for s in runs)
    median = search["speed_up_median"]
    return f"{median['label']} ({each})" if len(runs) > 1 else each


def match_markdown(report: dict[str, Any]) -> str:
    """The time-to-match table, its conditions and the medians (module doc)."""
    s, m, match = report["settings"], report["machine"], report["match"]
    samplers = s["samplers"]
    mult = "/".join(f"{x:g}×" for x in s["multiples"])
    devices = sorted({x for d in match["datasets"] for x in (d.get("load_avg_1min") or {}).get("devices", [])})
    where = (f"trained on {m['training_device']}" if len(devices) <= 1 else
             f"each dataset trained on one machine ({' or '.join(devices)}: its line below)")
    lines = [
        f"Time to match (`metallmix eval e2e --time-to-match`), budget \"{s['budget']}\", seeds "
        f"{', '.join(map(str, s['seeds']))} (searches: {', '.join(map(str, s['search_seeds']))}), "
        f"{where} ({m['cpu_count']} CPUs). Per dataset the meta-learner "
        "is fitted without every record of its base dataset (all its variants). *Recommended*: the "
        "advisor's `recommend()` pick within the budget; *space default*: "
        f"{s['default_config']}; *fine-tune default*: {s['finetune_config']}. Searches over "
        f"`{s['space']}` (TPE: first {s['tpe_warmup']} trials random) run until their summed "
        f"training time reaches {s['max_multiple']:g}× the recommended run's of the same seed; "
        "the incumbent (best by validation accuracy) is scored on test, at "
        f"{mult} the recommended run's training time. Speed-up: the multiple at which the "
        "incumbent first reaches the recommended run's test accuracy (per search seed, median "
        "first). Test accuracy in %, mean ± std over seeds; Δ in points (recommended − other).",
        "",
        "| dataset | recommended config | rec. ACC | space default ACC | fine-tune default ACC | "
        "Δ vs space default | Δ vs fine-tune | rec. train s | "
        + " | ".join(f"{SAMPLER_NAMES[x]} ACC at {mult}" for x in samplers) + " | "
        + " | ".join(f"speed-up vs {SAMPLER_NAMES[x]}" for x in samplers) + " |",
        "|---|---|" + "---:|" * (6 + 2 * len(samplers)),
    ]
    for d in match["datasets"]:
        a = d["arms"]
        at = [" / ".join(_pct(d["searches"][x]["acc_at"][f"{k:g}"]["mean"]) for k in s["multiples"])
              for x in samplers]
        partial = "" if d["complete"] else f" (partial: {d['units_done']}/{d['units_expected']})"
        partial += "" if d.get("current_advisor", True) else " (older advisor)"
        secs = a["recommended"]["train_seconds"]["mean"]
        lines.append(
            f"| {d['dataset']}{partial} | {d['recommended_config']} | "
            f"{_pm(a['recommended']['test_acc'])} | {_pm(a['default']['test_acc'])} | "
            f"{_pm(a['finetune']['test_acc'])} | {_signed(d['gap_points']['default'])} | "
            f"{_signed(d['gap_points']['finetune'])} | {'–' if secs is None else f'{secs:.0f}'} | "
            + " | ".join(at) + " | "
            + " | ".join(_speedups(d["searches"][x]) for x in samplers) + " |")
    lines.append("")
    for x in samplers:
        med = match["median_speed_up"][x]
        if med["median"] is not None:
            lines.append(f"- Median speed-up of the zero-shot pick against {SAMPLER_NAMES[x]} over "
                         f"{med['n_datasets']} dataset(s): **{med['median']['label']}**.")
    older = [d["dataset"] for d in match["datasets"] if not d.get("current_advisor", True)]
    if older:
        lines.append(f"- *Older advisor*: {', '.join(older)} planned by an earlier meta-learner "
                     "definition than this checkout's (planned again, with its runs kept where the "
                     "pick is the same, by the next run that includes the dataset).")
    n = match["n_compared"]
    lines.append(f"- Recommended within 1 point of (or above) the space default on "
                 f"{match['rec_within_1_point_of_default']} of {n} dataset(s), of the fine-tune "
                 f"default on {match['rec_within_1_point_of_finetune']}.")
    same = [d for d in match["datasets"] if d.get("same_time")]
    if same:
        lines += ["", "**Same time as the space default**: the advisor's `recommend()` pick when the "
                  "budget is the space default's mean training time here (CPU), trained on the same "
                  "seeds; the speed-up of the same searches against it (their trials ran to 10× the "
                  "shorter budget pick's time: unmatched, \"> the multiple they covered\"):", "",
                  "| dataset | budget (s) | pick | ACC | train s | space default ACC | Δ vs space default | "
                  + " | ".join(f"speed-up vs {SAMPLER_NAMES[x]}" for x in samplers) + " |",
                  "|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(samplers)]
        for d in same:
            t, secs = d["same_time"], d["same_time"]["train_seconds"]["mean"]
            lines.append(f"| {d['dataset']} | {t['budget_s']:.0f} | {t['config']} | {_pm(t['test_acc'])} | "
                         f"{'–' if secs is None else f'{secs:.0f}'} | {_pm(d['arms']['default']['test_acc'])} | "
                         f"{_signed(t['gap_points_default'])} | "
                         + " | ".join(_same_speedups(t, x) for x in samplers) + " |")
        lines += ["", f"- Same-time pick within 1 point of (or above) the space default on "
                      f"{match.get('same_time_within_1_point_of_default', 0)} of "
                      f"{match.get('same_time_compared', 0)} dataset(s)."]
        for x in samplers:
            med = (match.get("same_time_median_speed_up") or {}).get(x) or {}
            if med.get("median"):
                lines.append(f"- Median speed-up of the same-time pick against {SAMPLER_NAMES[x]} over "
                             f"{med['n_datasets']} dataset(s): **{med['median']['label']}**.")
    for d in match["datasets"]:
        if d.get("load_avg_1min"):
            ld = d["load_avg_1min"]
            threads = ", ".join(str(t) for t in ld.get("threads") or []) or "not recorded"
            on = f"trained on {', '.join(ld['devices'])}; " if ld.get("devices") else ""
            lines.append(f"- {d['dataset']}: {on}load average (1 min) when its units ended: median "
                         f"{ld['median']:.1f}, max {ld['max']:.1f} over {ld['n']} unit(s) "
                         f"({ld.get('cpus') or '?'} cores; threads per run: {threads}).")
    for line in report.get("skipped_datasets", []):
        lines.append(f"- {line}")
    return "\n".join(lines) + "\n"


def full_markdown(report: dict[str, Any]) -> str:
    """The time-to-match table, then the original same-time view (first search seed)."""
    text = match_markdown(report)
    if report["datasets"]:
        text += ("\nThe original end-to-end view (seed " + str(report["settings"]["seed"]) + "; TPE = "
                 "the search's incumbent at 1× the recommended run's time):\n\n" + to_markdown(report))
    return text


def write_match_markdown(report: dict[str, Any], path: str | Path) -> None:
    text = full_markdown(report)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def dataset_figure(entry: dict[str, Any], path: str | Path) -> Path:
    """Incumbent test accuracy vs cumulative training seconds for one dataset (module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - matplotlib.ticker formatters below

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = ["-", "--", ":", "-."]
    for sampler, search in entry["searches"].items():
        for i, run in enumerate(search["runs"]):
            curve = run["curve"]
            if not curve:
                continue
            xs = [p["cumulative_seconds"] for p in curve] + [run["train_seconds"]]
            ys = [100 * p["test_acc"] for p in curve] + [100 * curve[-1]["test_acc"]]
            ax.step(xs, ys, where="post", color=COLORS[sampler], linestyle=styles[i % len(styles)],
                    label=f"{SAMPLER_NAMES[sampler]} incumbent, seed {run['seed']}")
    for arm, view in entry["arms"].items():
        for j, run in enumerate(view["runs"]):
            if run.get("test_acc") is None or not run.get("train_seconds"):
                continue
            ax.plot([run["train_seconds"]], [100 * run["test_acc"]], marker=MARKERS[arm],
                    color=COLORS[arm], markersize=12 if arm == "recommended" else 7,
                    linestyle="none", label=f"{ARM_NAMES[arm]} (seeds)" if j == 0 else None)
    rec_s = entry["arms"]["recommended"]["train_seconds"]["mean"]
    if rec_s:
        for k in curves.MULTIPLES:
            ax.axvline(k * rec_s, color="black", alpha=0.25, linewidth=0.8)
            ax.text(k * rec_s, 0.01, f" {k:g}×", transform=ax.get_xaxis_transform(), fontsize=7)
    if entry.get("majority_class_acc") is not None:
        ax.axhline(100 * entry["majority_class_acc"], color="gray", linestyle=":", linewidth=0.8,
                   label="majority class")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))  # 10 20 50 100
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # 2x10^1, 3x10^1 ... overlapped
    ax.set_xlabel("cumulative training time (s, log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{entry['dataset']}: time to match the zero-shot pick", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def match_figures(report: dict[str, Any], folder: str | Path, prefix: str = "e2e_match_") -> list[Path]:
    """One figure per dataset, `<folder>/<prefix><dataset slug>.png`; their paths."""
    return [dataset_figure(d, Path(folder) / f"{prefix}{slug(d['dataset_id'])}.png")
            for d in report["match"]["datasets"]]
