"""Classification metrics of a run: accuracy, AUC and macro-F1, single- and multi-label.

Multi-label datasets (e.g. ChestMNIST): accuracy is the mean per-label accuracy (each label thresholded
at probability 0.5, averaged over all image-label pairs), AUC the macro mean of per-label AUCs (labels
with one value in the split skipped), F1 the macro mean over labels. Single-label: accuracy, AUC of the
positive class (binary) or macro one-vs-rest AUC (multi-class), macro-F1. AUC is missing (None) when
it is undefined, e.g. a class absent from the split.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scores:
    acc: float
    auc: float | None
    f1: float


def accuracy(probs: np.ndarray, labels: np.ndarray, *, multilabel: bool) -> float:
    if multilabel:
        return float(((probs >= 0.5) == (labels >= 0.5)).mean())
    return float((probs.argmax(1) == labels).mean())


def scores(probs: np.ndarray, labels: np.ndarray, *, multilabel: bool) -> Scores:
    """Accuracy, AUC and macro-F1 from class probabilities (softmax, or sigmoid when multi-label)."""
    acc = accuracy(probs, labels, multilabel=multilabel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multilabel:
            y = (labels >= 0.5).astype(int)
            f1 = f1_score(y, (probs >= 0.5).astype(int), average="macro", zero_division=0)
            aucs = [roc_auc_score(y[:, j], probs[:, j]) for j in range(y.shape[1]) if len(np.unique(y[:, j])) == 2]
            auc = float(np.mean(aucs)) if aucs else None
        else:
            n_classes = probs.shape[1]
            f1 = f1_score(labels, probs.argmax(1), average="macro", zero_division=0)
            auc = _auc(probs, labels, n_classes)
    if auc is not None and not math.isfinite(auc):
        auc = None
    return Scores(acc=acc, auc=auc, f1=float(f1))


def _auc(probs: np.ndarray, labels: np.ndarray, n_classes: int) -> float | None:
    present = np.unique(labels)
    if len(present) < 2:
        return None
    try:
        if n_classes == 2:
            return float(roc_auc_score(labels, probs[:, 1]))
        # macro one-vs-rest AUC over the classes present (sklearn wants rows summing to 1)
        p = probs[:, present].astype(np.float64)
        p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
        if len(present) == 2:
            return float(roc_auc_score(labels == present[1], p[:, 1]))
        return float(roc_auc_score(labels, p, multi_class="ovr", labels=present))
    except ValueError as exc:
        log.debug("AUC undefined: %s", exc)
        return None
