"""The process-wide advisors, one per run store (`get_advisor`, `clear_cache`), and `recommend`,
which answers through them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge import paths
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.budget import Budget
from knowledge.recommend.advisor import Advisor
from knowledge.recommend.algorithm import SIMILAR_K, _learner_info, _recommend
from knowledge.recommend.result import Recommendation
from knowledge.runs.storages import is_url
from knowledge.runs.store import RunStore

if TYPE_CHECKING:
    from knowledge.metalearner.model import MetaLearner
    from knowledge.retrieval.index import RunIndex
    from knowledge.runs.store import RunStore

_ADVISORS: dict[str, Advisor] = {}
_ADVISORS_LOCK = threading.Lock()


def get_advisor(store: RunStore | str | Path | None = None) -> Advisor:
    """The process-wide `Advisor` of a store (default: the user's store), created on first use.

    Keyed by the store's identity (a file's real path), or for a database URL not yet opened by the
    URL itself (an in-process key only, never shown)."""
    if isinstance(store, RunStore):
        key = store.identity
    else:
        target = str(store) if store is not None else paths.store_url()
        key = target if is_url(target) else os.path.realpath(Path(target).expanduser())
    with _ADVISORS_LOCK:
        advisor = _ADVISORS.get(key)
        if advisor is None:
            advisor = _ADVISORS[key] = Advisor(store)
        return advisor


def clear_cache() -> None:
    """Forget every cached advisor (tests; after replacing artifacts by hand)."""
    with _ADVISORS_LOCK:
        _ADVISORS.clear()


# --- the recommendation --------------------------------------------------------------------------

def recommend(
    meta: MetaFeatures,
    *,
    top_k: int = 5,
    budget: Budget | str | None = None,
    store: RunStore | str | Path | None = None,
    learner: MetaLearner | None = None,
    index: RunIndex | None = None,
    exclude_base: Iterable[str] | None = None,
    supported_only: bool = False,
    similar_k: int = SIMILAR_K,
    dataset: str | None = None,
    require: dict[str, Any] | None = None,
) -> Recommendation:
    """Recommend configs for the dataset described by `meta`.

    `budget`: a `Budget` or free text ("one hour on a T4", "CPU only"). `store`: the run store
    whose learner / index are used (default: the user's; loaded once per process, see `Advisor`);
    `learner` / `index` override them. `exclude_base` leaves those base datasets out of the similar
    runs (leave-one-out); `supported_only` drops configs beyond the training evidence;
    `require` keeps the configs with those values (`knowledge.recommend.require`: "from scratch",
    a model, a resolution), or rewrites the candidates with them when none has them.
    Raises ConfigError (bad top_k, nothing fits the budget), DatasetError (a time limit without
    n_instances), StoreError (an empty or unreadable store).
    """
    started = time.perf_counter()
    if learner is not None and index is not None:
        info = _learner_info(learner)
        return _recommend(meta, learner, index, learner_info=info, top_k=top_k, budget=budget,
                          exclude_base=exclude_base, supported_only=supported_only,
                          similar_k=similar_k, dataset=dataset, started=started,
                          require=require)
    advisor = get_advisor(store)
    if learner is not None or index is not None:
        advisor = Advisor(advisor.store, learner=learner or advisor.learner,
                          index=index or advisor.index, embedder=advisor.embedder)
    return advisor.recommend(meta, top_k=top_k, budget=budget, exclude_base=exclude_base,
                             supported_only=supported_only, similar_k=similar_k, dataset=dataset,
                             require=require)
