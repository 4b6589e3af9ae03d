"""Training-time estimates (issue 14): how wrong are they?

    python -m eval.cost          # writes eval/results/cost.json and cost.md

(a) CPU: leave-one-dataset-out error of the learned CPU time model (`MetaLearner`'s cost model,
    unchanged by issue 14) on our own CPU-timed runs of the shipped meta-dataset: one fold per base
    dataset; the cost model is fitted on the other bases' timed runs (`MetaLearner._fit_cost`, the
    same code the full fit runs) and predicts log(seconds per image-epoch) of the held-out runs;
    error = |log(predicted / actual train_seconds)|, median (and p90) over runs, per base and
    pooled. The FLOPs-proxy prior alone (the residual model switched off) is the baseline.
(b) GPU: predicted training throughput (img/s) of every recommendable model at 28/64/128/224 px
    on an RTX 3090, T4, A100 and H100 (`knowledge.metalearner.cost.gpu_throughput`) next to the
    timm-derived figure: the benchmark row itself at its own size (RTX 3090), times the device
    ratio elsewhere (at other sizes there is no timm training figure: '-').
(c) The issue's example: VGG16, 224 px, 10 epochs on 10,000 images on a T4.

No GPU was available: (b) and (c) compare the model with the published figures it is built from
(the check is of the scaling, the ratios and the overheads, not against a run of ours).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.metalearner import cost
from knowledge.metalearner.cputime import cost_frame, thread_column
from knowledge.metalearner.features import featurize
from knowledge.metalearner.model import MetaLearner, cost_prior_shape, log_cost_target
from knowledge.search_space import MODELS, TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
DEVICES = ("rtx3090", "t4", "a100", "h100")
SIZES = (28, 64, 128, 224)


def log_seconds(learner: MetaLearner, rows: Any, threads: Any) -> tuple[np.ndarray, np.ndarray]:
    """The learner's log(seconds per image-epoch) for flat records trained on `threads`, and the
    FLOPs-proxy prior alone (the prediction when no residual model is fitted)."""
    X = featurize(rows)
    prior = cost_prior_shape(X) + learner.cost_c0
    model = learner.cost_model
    if model is None:
        return prior, prior
    return np.asarray(model.predict(cost_frame(X, threads), base_margin=prior)), prior


def cpu_lodo(frame: Any = None) -> dict[str, Any]:
    """(a): leave-one-base-dataset-out error of the CPU time model."""
    import pandas as pd

    if frame is None:
        frame = pd.read_parquet(cost.PACKAGE_DATA / "meta_dataset.parquet")
    target = log_cost_target(frame)
    timed = frame.loc[target.notna()]
    rows: list[dict[str, Any]] = []
    for base in sorted(timed["base_dataset"].astype(str).unique()):
        held = frame["base_dataset"].astype(str).eq(base)
        learner = MetaLearner()
        learner._fit_cost(frame.loc[~held], seed=0)
        test = timed.loc[timed["base_dataset"].astype(str).eq(base)]
        pred, prior = log_seconds(learner, test, thread_column(test))
        y = target.loc[test.index].to_numpy()
        for p, q, t, m in zip(pred, prior, y, test["cfg.model"].astype(str)):
            rows.append({"base": base, "model": m, "err": abs(float(p - t)),
                         "err_prior": abs(float(q - t))})

    def summary(part: list[dict[str, Any]]) -> dict[str, Any]:
        e, b = [r["err"] for r in part], [r["err_prior"] for r in part]
        return {"n_runs": len(part), "median_abs_log_err": round(statistics.median(e), 4),
                "p90_abs_log_err": round(float(np.quantile(e, 0.9)), 4),
                "median_factor": round(math.exp(statistics.median(e)), 3),
                "prior_only_median_abs_log_err": round(statistics.median(b), 4)}

    return {"pooled": summary(rows),
            "per_base": {b: summary([r for r in rows if r["base"] == b])
                         for b in sorted({r["base"] for r in rows})},
            "per_model": {m: summary([r for r in rows if r["model"] == m])
                          for m in sorted({r["model"] for r in rows})}}


def gpu_table() -> list[dict[str, Any]]:
    """(b): predicted vs timm-derived training img/s per model, size and device."""
    table = cost.load_table()
    out = []
    for model, spec in MODELS.items():
        entry = table["models"].get(model)
        if not spec.trainable or entry is None:
            continue
        for size in SIZES:
            eff = max(size, spec.min_input)
            for device in DEVICES:
                pred, source = cost.gpu_throughput(model, eff, device, table=table)
                ratio = cost.device_ratio(device, table)[0]
                timm = (entry["train_ips"] * ratio if eff == entry["train_size"] else None)
                out.append({"model": model, "size": size, "effective_size": eff, "device": device,
                            "predicted_ips": round(pred, 1),
                            "timm_ips": None if timm is None else round(timm, 1),
                            "source": source})
        # the benchmark row's own size, where it is not one of SIZES
        if entry["train_size"] not in SIZES:
            for device in DEVICES:
                pred, source = cost.gpu_throughput(model, entry["train_size"], device, table=table)
                ratio = cost.device_ratio(device, table)[0]
                out.append({"model": model, "size": entry["train_size"],
                            "effective_size": entry["train_size"], "device": device,
                            "predicted_ips": round(pred, 1),
                            "timm_ips": round(entry["train_ips"] * ratio, 1), "source": source})
    return out


def vgg16_case() -> dict[str, Any]:
    """(c): the issue's example."""
    config = TrainConfig(model="vgg16", resolution=224, epochs=10)
    est = cost.gpu_estimate(config, 10_000, "t4")
    ratio = cost.device_ratio("t4")[0]
    timm = 10_000 * 10 / (465.36 * ratio)
    return {"config": "vgg16, 224 px, 10 epochs, 10,000 images, T4", "before_seconds": 21.1 * 3600,
            "estimate_seconds": round(est.seconds, 1), "estimate_img_per_s": round(
                est.images_per_sec, 1), "timm_derived_seconds": round(timm, 1),
            "ratio_estimate_to_timm": round(est.seconds / timm, 3), "t4_ratio": ratio,
            "source": est.source}


def run() -> dict[str, Any]:
    table = cost.load_table()
    report = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}; no GPU",
        "cpu_lodo": cpu_lodo(),
        "scaling": table["scaling"],
        "devices": {d: cost.device_ratio(d, table) for d in
                    ("rtx3090", "rtx4090", "rtx5090", "rtxpro6000maxq", "t4", "l4", "a100",
                     "h100")},
        "gpu_table": gpu_table(),
        "vgg16_t4": vgg16_case(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cost.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "cost.md").write_text(to_markdown(report), encoding="utf-8")
    return report


def to_markdown(report: dict[str, Any]) -> str:
    a = report["cpu_lodo"]
    lines = ["# Training-time estimates (issue 14)", "",
             f"_{report['created_at']}; {report['machine']}._", "",
             "## (a) CPU time model, leave one base dataset out", "",
             "| held out | runs | median abs log err | x | p90 | prior only |", "|---|---|---|---|---|---|"]
    for name, s in [("**pooled**", a["pooled"]), *a["per_base"].items()]:
        lines.append(f"| {name} | {s['n_runs']} | {s['median_abs_log_err']:.3f} | "
                     f"{s['median_factor']:.2f} | {s['p90_abs_log_err']:.3f} | "
                     f"{s['prior_only_median_abs_log_err']:.3f} |")
    sc = report["scaling"]
    lines += ["", "## Resolution scaling fit (timm RTX 3090 inference, same architecture at "
              "several sizes)", "",
              f"alpha (throughput ~ GMACs^-alpha) = {sc['alpha']}; {sc['n_pairs']} pairs.", "",
              "| family | pairs | pixels | GMACs | GMACs^alpha |", "|---|---|---|---|---|"]
    for fam in ("all", "cnn", "vit"):
        f = sc[fam]
        lines.append(f"| {fam} | {f['n_pairs']} | {f['median_abs_log_err_pixels']} | "
                     f"{f['median_abs_log_err_gmacs']} | {f['median_abs_log_err_gmacs_alpha']} |")
    t = sc["train_file"]
    lines.append(f"| train file (different models, same arch) | {t['n_pairs_with_gmacs']} | "
                 f"{t['median_abs_log_err_pixels_same_pairs']} | {t['median_abs_log_err_gmacs']} | "
                 f"{t['median_abs_log_err_gmacs_alpha']} |")
    lines += ["", "## Device ratios (to an RTX 3090)", "", "| device | ratio | source |", "|---|---|---|"]
    for d, (r, label, src) in report["devices"].items():
        lines.append(f"| {label} | {r:.3f} | {src.split(':')[0]} |")
    lines += ["", "## (b) Training img/s: predicted vs timm-derived", "",
              "| model | px | " + " | ".join(f"{d} pred / timm" for d in DEVICES) + " |",
              "|---|---|" + "---|" * len(DEVICES)]
    rows: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in report["gpu_table"]:
        rows.setdefault((r["model"], r["size"]), {})[r["device"]] = r
    for (model, size), per in rows.items():
        cells = []
        for d in DEVICES:
            r = per[d]
            timm = "-" if r["timm_ips"] is None else f"{r['timm_ips']:,.0f}"
            cells.append(f"{r['predicted_ips']:,.0f} / {timm}")
        lines.append(f"| {model} | {size} | " + " | ".join(cells) + " |")
    v = report["vgg16_t4"]
    lines += ["", "## (c) VGG16, 224 px, 10 epochs, 10,000 images on a T4", "",
              f"before (CPU time / speed-up): {v['before_seconds'] / 3600:.1f} h; now "
              f"{v['estimate_seconds'] / 60:.1f} min ({v['estimate_img_per_s']:.0f} img/s + "
              f"evaluation + overhead); timm-derived (training images / (465 img/s x T4 ratio "
              f"{v['t4_ratio']:.2f})): {v['timm_derived_seconds'] / 60:.1f} min; ratio "
              f"{v['ratio_estimate_to_timm']:.2f}.", "", f"Source: {v['source']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    r = run()
    print(json.dumps({k: r[k] for k in ("vgg16_t4",)}, indent=1))
    print(json.dumps(r["cpu_lodo"]["pooled"]))
