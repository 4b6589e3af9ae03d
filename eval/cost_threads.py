"""Training threads and the CPU time model: are the times of runs on all cores predicted?

    python -m eval.cost_threads [--frame META_DATASET.parquet]
        # writes eval/results/cost_threads.json and cost_threads.md

The CPU campaign (sweeps, portfolio) timed its runs on 1 thread per process; a user (and the
end-to-end benchmark) trains on all the machine's cores. The test set: the runs recorded with more
than one thread (`prov.threads` > 1: the end-to-end benchmark's arms and search trials, copied by
`eval.e2e.harvest`), one fold per base dataset, as `eval.cost` (a):
  before  the cost model as it was: fitted on the 1-thread runs only (the held-out base's left out),
          no thread count, predicting a 1-thread time for them;
  after   the thread-aware cost model: fitted on every timed run of the other bases (their
          multi-thread runs included), predicting for the threads each held-out run used.
Error = log(predicted / actual seconds per image-epoch): median of |error| (and the signed median:
> 0 means over-predicted, i.e. the time limit drops configs that would fit), per model and pooled.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eval.cost import log_seconds
from knowledge.metalearner import cost
from knowledge.metalearner.cputime import thread_column
from knowledge.metalearner.model import MetaLearner, log_cost_target

RESULTS = Path(__file__).resolve().parent / "results"


def evaluate(frame: Any) -> dict[str, Any]:
    """Per held-out base: before/after errors on its multi-thread runs (module doc)."""
    target = log_cost_target(frame)
    threads = thread_column(frame)
    multi = target.notna() & (threads > 1)
    if not multi.any():
        raise SystemExit("no timed run with more than one thread in the frame: harvest the "
                         "end-to-end runs first (python -m eval.e2e.harvest)")
    rows: list[dict[str, Any]] = []
    bases = frame["base_dataset"].astype(str)
    for base in sorted(bases[multi].unique()):
        held = bases.eq(base)
        test = frame.loc[multi & held]
        before, after = MetaLearner(), MetaLearner()
        before._fit_cost(frame.loc[~held & (threads <= 1)], seed=0)
        after._fit_cost(frame.loc[~held], seed=0)
        y = target.loc[test.index].to_numpy()
        p_before = log_seconds(before, test, np.ones(len(test)))[0]
        p_after = log_seconds(after, test, threads.loc[test.index])[0]
        for b, a, t, m, n in zip(p_before, p_after, y, test["cfg.model"].astype(str),
                                 threads.loc[test.index]):
            rows.append({"base": base, "model": m, "threads": int(n),
                         "before": float(b - t), "after": float(a - t)})

    def summary(part: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n_runs": len(part)}
        for k in ("before", "after"):
            e = [r[k] for r in part]
            out[k] = {"median_abs_log_err": round(statistics.median(map(abs, e)), 4),
                      "median_factor": round(math.exp(statistics.median(map(abs, e))), 3),
                      "signed_median_log_err": round(statistics.median(e), 4),
                      "p90_abs_log_err": round(float(np.quantile(np.abs(e), 0.9)), 4)}
        return out

    return {"pooled": summary(rows),
            "per_base": {b: summary([r for r in rows if r["base"] == b])
                         for b in sorted({r["base"] for r in rows})},
            "per_model": {m: summary([r for r in rows if r["model"] == m])
                          for m in sorted({r["model"] for r in rows})},
            "n_multi_thread_runs": int(multi.sum()),
            "n_one_thread_runs": int((target.notna() & (threads <= 1)).sum())}


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# CPU time model: runs on all cores (training threads)", "",
             f"_{report['created_at']}; {report['machine']}; frame {report['frame']}._", "",
             f"Test: {report['n_multi_thread_runs']} timed runs on more than one thread (one fold per "
             f"base dataset); training: {report['n_one_thread_runs']} one-thread runs (+ the other "
             "bases' multi-thread runs, after). Error = log(predicted / actual s per image-epoch).", "",
             "| held out | runs | before: median abs | x | signed | after: median abs | x | signed |",
             "|---|---|---|---|---|---|---|---|"]
    groups = [("**pooled**", report["pooled"]), *report["per_base"].items(),
              *((f"model {m}", s) for m, s in report["per_model"].items())]
    for name, s in groups:
        b, a = s["before"], s["after"]
        lines.append(f"| {name} | {s['n_runs']} | {b['median_abs_log_err']:.3f} | "
                     f"{b['median_factor']:.2f} | {b['signed_median_log_err']:+.3f} | "
                     f"{a['median_abs_log_err']:.3f} | {a['median_factor']:.2f} | "
                     f"{a['signed_median_log_err']:+.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description="CPU time model vs training threads")
    parser.add_argument("--frame", default=str(cost.PACKAGE_DATA / "meta_dataset.parquet"))
    args = parser.parse_args(argv)
    report = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.platform()}, {os.cpu_count()} cores; no GPU",
              "frame": Path(args.frame).name, **evaluate(pd.read_parquet(args.frame))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cost_threads.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "cost_threads.md").write_text(to_markdown(report), encoding="utf-8")
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
