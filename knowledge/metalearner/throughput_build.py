"""Build `knowledge/data/timm_throughput.json` (the table of `knowledge.metalearner.cost`) from
timm's benchmark CSVs in ../shared/data/timm:

    python -m knowledge.metalearner.cost --build [--timm DIR] [--out FILE]

Only the build reads ../shared; the runtime reads the JSON (`cost.load_table`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

from knowledge.metalearner import cost
from knowledge.metalearner.cost import (
    DATA_FILE,
    INFER_3090,
    INFER_4090,
    INFER_4090_NEW,
    INFER_5090,
    INFER_PRO6000,
    MAX_IMG_PER_S,
    SHARED_TIMM,
    TRAIN_CSV,
    TRAIN_PROXY,
    VIT_SHAPES,
    base_name,
    gmacs_at,
    load_table,
)
from knowledge.search_space import MODELS


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _family(name: str) -> str:
    return "vit" if re.search(r"vit|deit|eva|beit|swin|xcit|cait", name) else "cnn"


def scaling_fit(infer: list[dict[str, str]], train: list[dict[str, str]]) -> dict[str, Any]:
    """Compare throughput ~ 1/pixels with ~ 1/GMACs (and a fitted exponent of GMACs) on timm's own
    figures: every pair of sizes of the same architecture (same name with the size suffix
    stripped, same parameter count in M rounded) in the RTX 3090 inference file. Median
    |log(predicted / actual)| per rule and family, and the exponent alpha of GMACs (least squares
    through the origin on log ratios)."""
    groups: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}
    for r in infer:
        key = (re.sub(r"_\d{2,4}$", "", r["model"]), round(float(r["param_count"] or 0)))
        size, ips, g = int(r["infer_img_size"]), float(r["infer_samples_per_sec"]), float(
            r["infer_gmacs"] or 0)
        if g > 0 and ips > 0:
            groups.setdefault(key, {}).setdefault(size, (ips, g))
    pairs = []  # (family, log actual ratio, log pixel ratio, log gmacs ratio)
    for (name, _), sizes in groups.items():
        items = sorted(sizes.items())
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (s1, (i1, g1)), (s2, (i2, g2)) = items[i], items[j]
                pairs.append((_family(name), math.log(i2 / i1), math.log((s1 / s2) ** 2),
                              math.log(g1 / g2)))
    xs, ys = [p[3] for p in pairs], [p[1] for p in pairs]
    alpha = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)

    def err(rows: list[tuple[str, float, float, float]], k: int, a: float = 1.0) -> float:
        return round(statistics.median(abs(p[1] - a * p[k]) for p in rows), 4) if rows else math.nan

    out: dict[str, Any] = {"alpha": round(alpha, 4), "n_pairs": len(pairs),
                           "source": f"{INFER_3090}: same architecture at several sizes"}
    for fam in ("all", "cnn", "vit"):
        rows = pairs if fam == "all" else [p for p in pairs if p[0] == fam]
        out[fam] = {"n_pairs": len(rows), "median_abs_log_err_pixels": err(rows, 2),
                    "median_abs_log_err_gmacs": err(rows, 3),
                    "median_abs_log_err_gmacs_alpha": err(rows, 3, alpha)}
    # the training file: one row per model; same architecture at several sizes (name suffix)
    tgroups: dict[tuple[str, int], dict[int, float]] = {}
    gm = {(r["model"], int(r["infer_img_size"])): float(r["infer_gmacs"] or 0) for r in infer}
    for r in train:
        key = (re.sub(r"_\d{2,4}$", "", r["model"]), round(float(r["param_count"] or 0)))
        tgroups.setdefault(key, {})[int(r["train_img_size"])] = (r["model"],
                                                                  float(r["train_samples_per_sec"]))
    tp = []
    for sizes in tgroups.values():
        items = sorted(sizes.items())
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (s1, (m1, i1)), (s2, (m2, i2)) = items[i], items[j]
                g1, g2 = gm.get((m1, s1), 0.0), gm.get((m2, s2), 0.0)
                tp.append((math.log(i2 / i1), math.log((s1 / s2) ** 2),
                           math.log(g1 / g2) if g1 > 0 and g2 > 0 else None))
    with_g = [p for p in tp if p[2] is not None]
    out["train_file"] = {
        "n_pairs": len(tp),
        "median_abs_log_err_pixels": round(statistics.median(abs(p[0] - p[1]) for p in tp), 4)
        if tp else None,
        "n_pairs_with_gmacs": len(with_g),
        "median_abs_log_err_pixels_same_pairs": round(statistics.median(
            abs(p[0] - p[1]) for p in with_g), 4) if with_g else None,
        "median_abs_log_err_gmacs": round(statistics.median(
            abs(p[0] - p[2]) for p in with_g), 4) if with_g else None,
        "median_abs_log_err_gmacs_alpha": round(statistics.median(
            abs(p[0] - alpha * p[2]) for p in with_g), 4) if with_g else None,
    }
    return out


def _by_key(rows: list[dict[str, str]]) -> dict[tuple[str, int], float]:
    return {(r["model"], int(r["infer_img_size"])): float(r["infer_samples_per_sec"])
            for r in rows if float(r["infer_samples_per_sec"] or 0) > 0}


def _median_ratio(chain: list[tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]]
                  ) -> tuple[float, int]:
    """Median over the models common to every file of the product of per-model ratios."""
    common = set.intersection(*(set(a) & set(b) for a, b in chain))
    ratios = [math.prod(b[k] / a[k] for a, b in chain) for k in common]
    return statistics.median(ratios), len(ratios)


def device_ratios(folder: Path) -> dict[str, dict[str, Any]]:
    """Measured inference-throughput ratios to the RTX 3090, from same-software file pairs:
    4090/3090 from the PyTorch 2.4 pair; 5090 and Pro 6000 via the PyTorch 2.9.1 4090 file
    (per model: X_pt291 / 4090_pt291 x 4090_pt240 / 3090_pt240)."""
    f = {name: _by_key(_read(folder / name)) for name in
         (INFER_3090, INFER_4090, INFER_4090_NEW, INFER_5090, INFER_PRO6000)}
    out: dict[str, dict[str, Any]] = {"rtx3090": {"label": "NVIDIA RTX 3090", "rel_3090": 1.0,
                                                  "rel_source": "reference"}}
    r, n = _median_ratio([(f[INFER_3090], f[INFER_4090])])
    out["rtx4090"] = {"label": "NVIDIA RTX 4090", "rel_3090": round(r, 3), "n_models": n,
                      "rel_source": f"timm inference benchmark median over {n} models",
                      "files": [INFER_3090, INFER_4090]}
    for key, label, name in (("rtx5090", "NVIDIA RTX 5090", INFER_5090),
                             ("rtx_pro6000_maxq", "NVIDIA RTX Pro 6000 Max-Q", INFER_PRO6000)):
        r, n = _median_ratio([(f[INFER_3090], f[INFER_4090]), (f[INFER_4090_NEW], f[name])])
        out[key] = {"label": label, "rel_3090": round(r, 3), "n_models": n,
                    "rel_source": f"timm inference benchmark median over {n} models",
                    "files": [INFER_3090, INFER_4090, INFER_4090_NEW, name]}
    r, n = _median_ratio([(f[INFER_4090], f[INFER_4090_NEW])])
    out["_software_pt240_to_pt291_on_4090"] = {"ratio": round(r, 3), "n_models": n,
                                               "note": "same GPU, newer PyTorch/CUDA: why the "
                                                       "ratios chain through same-software pairs"}
    return out


def build(folder: Path = SHARED_TIMM, out: Path = DATA_FILE) -> dict[str, Any]:
    """Derive `timm_throughput.json` from timm's CSVs in `folder` and write it to `out`."""
    train = _read(folder / TRAIN_CSV)
    infer = _read(folder / INFER_3090)
    train_by = {r["model"]: r for r in train}
    infer_by: dict[str, list[dict[str, str]]] = {}
    for r in infer:
        infer_by.setdefault(r["model"], []).append(r)
    scaling = scaling_fit(infer, train)
    models: dict[str, Any] = {}
    for key, spec in MODELS.items():
        if not spec.trainable:
            continue
        arch = base_name(key)
        row_name, why = (arch, None) if arch in train_by else TRAIN_PROXY.get(arch, (None, None))
        if row_name is None or row_name not in train_by:
            continue
        row = train_by[row_name]
        ips, size = float(row["train_samples_per_sec"]), int(row["train_img_size"])
        # GMACs from the model's own inference rows; SAM is listed only at 1024 px (global +
        # windowed attention), so it takes its proxy's
        own = [] if arch == "samvit_base_patch16" else infer_by.get(arch, [])
        proxy_rows = infer_by.get(row_name, [])
        gm_rows = own or proxy_rows
        if why and "inference ratio" in why and own and proxy_rows:  # scale by inference speed
            mine = {int(r["infer_img_size"]): float(r["infer_samples_per_sec"]) for r in own}
            theirs = {int(r["infer_img_size"]): float(r["infer_samples_per_sec"])
                      for r in proxy_rows}
            shared = sorted(set(mine) & set(theirs), key=lambda s: abs(s - size))
            if shared:
                ips *= mine[shared[0]] / theirs[shared[0]]
        ref = min(gm_rows, key=lambda r: abs(int(r["infer_img_size"]) - size))
        entry: dict[str, Any] = {
            "row": row_name, "train_ips": round(ips, 2), "train_size": size,
            "train_batch": int(row["train_batch_size"]),
            "train_step_ms": float(row["train_step_time"]),
            "param_count_m": float(row["param_count"]),
            "gmacs": float(ref["infer_gmacs"]), "gmacs_size": int(ref["infer_img_size"]),
            "gmacs_rows": {r["infer_img_size"]: float(r["infer_gmacs"]) for r in gm_rows},
            "source_rows": [f"{TRAIN_CSV}: {row_name}"]
                           + [f"{INFER_3090}: {r['model']} @{r['infer_img_size']}" for r in gm_rows],
        }
        if why:
            entry["proxy"] = why
        if arch in VIT_SHAPES:
            patch, depth, width = VIT_SHAPES[arch]
            t = (entry["gmacs_size"] // patch) ** 2 + 1
            entry["vit"] = {"patch": patch, "depth": depth, "width": width,
                            "attn_share": round(depth * 2 * t * t * width / (entry["gmacs"] * 1e9),
                                                4)}
        models[key] = entry
        entry["gmacs_at"] = {str(s): round(gmacs_at(entry, s), 4) for s in (28, 64, 128, 224)}
    table = {
        "about": "Training throughput (img/s, RTX 3090, AMP) per recommendable model, GMACs per "
                 "size, and GPU ratios to the RTX 3090; derived by `python -m "
                 "knowledge.metalearner.cost --build` from timm's results/ CSVs.",
        "license": "timm benchmark results: Apache-2.0. Ross Wightman, 'PyTorch Image Models' "
                   "(timm), doi:10.5281/zenodo.4414861; github.com/huggingface/pytorch-image-models "
                   "results/ at commit aa4b5850c1543fa488abf260f18390eda46cf85d (see "
                   "../shared/data/timm/SOURCE.md).",
        "scaling": scaling,
        "cap_img_per_s": MAX_IMG_PER_S,
        "models": models,
        "devices": device_ratios(folder),
    }
    out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    load_table.cache_clear()
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(cost.__doc__ or "").splitlines()[0])
    parser.add_argument("--build", action="store_true", help="derive the JSON from timm's CSVs")
    parser.add_argument("--timm", type=Path, default=SHARED_TIMM)
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    if args.build:
        table = build(args.timm, args.out)
        print(f"wrote {args.out}: {len(table['models'])} models; scaling {table['scaling']}")
        print({k: v.get("rel_3090", v.get("ratio")) for k, v in table["devices"].items()})

