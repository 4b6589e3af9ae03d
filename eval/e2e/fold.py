"""The meta-learner and retrieval index of one end-to-end task, fitted without the held-out data.

Every record whose base dataset is held out (own runs, their variants, and published rows alike)
is dropped before anything is fitted or indexed. The fit itself is the LODO benchmark's
(`eval.lodo.prepare_fold`, same XGBoost settings, single-threaded) and the index is built like
its `build_index`, here from the kept records only; the recommendation additionally asks the
index to exclude the held-out bases, so no held-out run can be shown as a similar run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eval.lodo import prepare_fold, records_frame
from knowledge.errors import StoreError
from knowledge.metalearner.model import MIN_ACC_RECORDS, MetaLearner, training_rows
from knowledge.retrieval import RunIndex
from knowledge.retrieval.embeddings import HashingEmbedder
from knowledge.runs.record import RunRecord


@dataclass
class HeldOutFit:
    """A learner and index that never saw the held-out base datasets."""

    learner: MetaLearner
    index: Any  # knowledge.retrieval.RunIndex
    held_out: list[str]
    n_records: int  # records kept (all statuses)
    n_usable: int  # of which the accuracy model learns from (status ok, accuracy known)
    n_excluded: dict[str, int]  # records left out, per source
    train_bases: list[str]
    fit_s: float

    def summary(self) -> dict[str, Any]:
        """The JSON-ready description in the report."""
        return {"held_out": self.held_out, "n_records": self.n_records, "n_usable": self.n_usable,
                "n_excluded": self.n_excluded, "train_bases": self.train_bases,
                "fit_s": round(self.fit_s, 3)}


def base_datasets(records: Iterable[RunRecord]) -> set[str]:
    """The base datasets of records, lower-cased (how held-out names are matched)."""
    return {r.base_dataset.lower() for r in records}


def _numeric_index(records: Sequence[RunRecord]) -> Any:
    """The retrieval index of the kept successful records, as `eval.lodo.build_index` builds it but
    with the text index left pending (only the numeric similar-runs search is used here)."""
    return RunIndex.build([r for r in records if r.status == "ok"],
                          embedder=HashingEmbedder(n_features=64), embed_text=False)


def fit_without(records: Sequence[RunRecord], held_out: Iterable[str], *, seed: int = 0) -> HeldOutFit:
    """Fit on every record whose base dataset is not in `held_out` (case-insensitive).

    StoreError (from the fit) when fewer than the learner's minimum of usable records remain.
    """
    excluded = sorted({b.lower() for b in held_out})
    keep = [r for r in records if r.base_dataset.lower() not in excluded]
    dropped = Counter(r.provenance.source for r in records if r.base_dataset.lower() in excluded)
    started = time.perf_counter()
    frame = records_frame(keep)
    usable = len(training_rows(frame)) if len(frame) else 0
    if usable < MIN_ACC_RECORDS:
        raise StoreError(f"without {', '.join(excluded)} the run store keeps {usable} usable runs; "
                         f"the meta-learner needs at least {MIN_ACC_RECORDS}")
    index = _numeric_index(keep)
    fold = prepare_fold(frame, ",".join(excluded), index, acc_params=None, seed=seed)
    fit_s = time.perf_counter() - started
    leaked = {b.lower() for b in fold.train_bases} & set(excluded)
    assert not leaked, f"held-out base(s) reached the fit: {leaked}"
    return HeldOutFit(learner=fold.learner, index=index, held_out=excluded, n_records=len(keep),
                      n_usable=int(usable), n_excluded=dict(sorted(dropped.items())),
                      train_bases=sorted(fold.train_bases), fit_s=fit_s)
