"""Time to match: a search's incumbent over training time, and when it reaches the recommendation.

A search is a list of trials in the order they ran, each with its `train_seconds` (the launcher's
training-loop time), `cumulative_seconds` (the sum up to and including it), `val_acc` and
`test_acc`. The *incumbent* after a trial is the best trial so far by validation accuracy (the
earliest on ties) among the evaluated ones (both accuracies known: status ok, or a run the time
limit stopped and evaluated); its test accuracy is the search's result at that point. A trial
counts once it has ended, at its cumulative time: a budget B sees the trials whose cumulative time
is at most B.

The budget is given as a *multiple* of the recommended run's training time (paired by seed: the
search of seed s against the recommended run of seed s). The *speed-up* is the multiple at which
the incumbent's test accuracy first reaches the recommended run's: the search needed that many
times the recommended run's training to match it (below 1: the search matched it sooner). When it
never does within the time the search had, it is reported as "> <multiple reached>×" (normally
"> 10×"); a median counts such a value as its lower bound and says so (`median_multiple`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

MULTIPLES: tuple[float, ...] = (1.0, 3.0, 10.0)
EPS = 1e-9
BUDGET_SLACK = 0.05  # a trial cut at a budget may end past it by this share (the last epoch's steps)


def evaluated(trial: dict[str, Any]) -> bool:
    """Whether a trial has both accuracies (it can be an incumbent)."""
    return trial.get("val_acc") is not None and trial.get("test_acc") is not None


def with_cumulative(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the trials with `cumulative_seconds` (running sum of `train_seconds`)."""
    out, spent = [], 0.0
    for t in trials:
        spent += float(t.get("train_seconds") or 0.0)
        out.append({**t, "cumulative_seconds": round(spent, 3)})
    return out


def incumbent_curve(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per trial that changed the incumbent: {cumulative_seconds, val_acc, test_acc,
    number} (trials carry `cumulative_seconds`, see `with_cumulative`)."""
    points: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for t in trials:
        if evaluated(t) and (best is None or t["val_acc"] > best["val_acc"]):
            best = t
            points.append({"cumulative_seconds": t["cumulative_seconds"], "val_acc": t["val_acc"],
                           "test_acc": t["test_acc"], "number": t.get("number")})
    return points


def incumbent_at(trials: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any] | None:
    """The incumbent among the trials ended by `seconds` of cumulative training; None before the
    first evaluated trial."""
    best = None
    for point in incumbent_curve(trials):
        if point["cumulative_seconds"] <= seconds + EPS:
            best = point
    return best


def speed_up(trials: Sequence[dict[str, Any]], rec_seconds: float, rec_acc: float | None,
             max_multiple: float) -> dict[str, Any]:
    """When the incumbent first reaches `rec_acc`: {'multiple': float or None, 'reached': the
    multiple the search's trials covered, 'matched': bool, 'label': '2.4×' or '> 10×'}."""
    reached = (trials[-1]["cumulative_seconds"] / rec_seconds) if trials and rec_seconds > 0 else 0.0
    if rec_acc is not None and rec_seconds > 0:
        for point in incumbent_curve(trials):
            if point["test_acc"] >= rec_acc - EPS:
                multiple = point["cumulative_seconds"] / rec_seconds
                return {"multiple": round(multiple, 3), "reached": round(reached, 3),
                        "matched": True, "label": multiple_label(multiple)}
    bound = max(max_multiple, reached) if trials else max_multiple
    return {"multiple": None, "reached": round(reached, 3), "matched": False,
            "label": f"> {multiple_label(bound)}"}


def multiple_label(multiple: float | None, bound: float | None = None) -> str:
    """'2.4×' ('> 10×' for None, with `bound`)."""
    if multiple is None or math.isinf(multiple):
        return f"> {multiple_label(bound)}" if bound is not None else "–"
    return f"{multiple:.2g}×" if multiple < 10 else f"{multiple:.0f}×"


def search_summary(trials: Sequence[dict[str, Any]], rec_seconds: float, rec_acc: float | None,
                   max_multiple: float, multiples: Iterable[float] = MULTIPLES,
                   covered_seconds: float = math.inf) -> dict[str, Any]:
    """A search against its paired recommended run: the incumbent's test accuracy at each of
    `multiples` x `rec_seconds` (None before its first trial ended, and beyond `covered_seconds`,
    the training time the search was given: a search stopped early by its trial limit says nothing
    about a larger budget), the speed-up and the curve."""
    at: dict[str, float | None] = {}
    for m in multiples:
        if m * rec_seconds > covered_seconds * (1 + BUDGET_SLACK) + EPS:
            at[f"{m:g}"] = None
            continue
        point = incumbent_at(trials, m * rec_seconds)
        at[f"{m:g}"] = None if point is None else point["test_acc"]
    return {"rec_seconds": rec_seconds, "rec_acc": rec_acc, "acc_at": at,
            "speed_up": speed_up(trials, rec_seconds, rec_acc, max_multiple),
            "curve": incumbent_curve(trials), "n_trials": len(trials),
            "train_seconds": trials[-1]["cumulative_seconds"] if trials else 0.0}


def median_multiple(speeds: Sequence[dict[str, Any]], bound: float) -> dict[str, Any] | None:
    """The median of speed-ups: {'multiple', 'label'} (None for none). An unmatched speed-up is only
    known to exceed `bound` (or its `lower`, a median of such values): it enters the median as that
    lower bound, and a median resting on one is a lower bound too, {'multiple': None, 'lower': x,
    'label': '> x×'} (two seeds, 2.7× and unmatched: '> 6.4×'); exact values with a lower bound
    sorted below them give '≥ x×' (that bound may be larger)."""
    if not speeds:
        return None
    values = sorted(((float(s["multiple"]), True) if s.get("multiple") is not None
                     else (float(s.get("lower") or bound), False) for s in speeds),
                    key=lambda v: (v[0], not v[1]))
    mid = len(values) // 2
    picked = values[mid:mid + 1] if len(values) % 2 else values[mid - 1:mid + 1]
    median = sum(v for v, _ in picked) / len(picked)
    if all(exact for _, exact in picked) and all(exact for _, exact in values[:mid]):
        return {"multiple": round(median, 3), "label": multiple_label(median)}
    sign = ">" if not all(exact for _, exact in picked) else "≥"
    return {"multiple": None, "lower": round(median, 3), "label": f"{sign} {multiple_label(median)}"}


def mean_std(values: Iterable[float | None]) -> dict[str, Any]:
    """{'mean', 'std' (sample; 0 for one value), 'n'} of the known values; mean None for none."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(known) if len(known) > 1 else 0.0
    return {"mean": round(statistics.fmean(known), 5), "std": round(std, 5), "n": len(known)}
