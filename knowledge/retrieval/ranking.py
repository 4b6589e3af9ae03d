"""Ranking the candidates of a search (`IndexRanking`, mixed into `RunIndex`): `similar_runs`
(the numeric search, NumPy over the `[x, x²]` record vectors), and for it and `search_text` the
exact re-scoring, the model / scheme boosts, the tie-break by accuracy, the per-dataset de-duplication
and the fetch-more loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from knowledge.metafeatures import MetaFeatures
from knowledge.retrieval.hit import Hit, RetrievalError
from knowledge.retrieval.vectors import NumericQuery
from knowledge.search_space import TrainConfig

MODEL_BOOST = 0.10  # score added for the same model as the `config` given to similar_runs
SCHEME_BOOST = 0.05  # ... and for the same training scheme
_TOLERANCE = 1e-3  # float32 rounding allowance of FAISS scores when deciding to fetch more


def _config_fields(config: TrainConfig | Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if config is None:
        return None, None
    data = config.model_dump() if isinstance(config, TrainConfig) else dict(config)
    return data.get("model"), data.get("scheme")


class IndexRanking:
    """The queries of `RunIndex` over its records (its state is set up in `RunIndex.__init__`)."""

    def similar_runs(self, meta: MetaFeatures | Mapping[str, Any], k: int = 5, *,
                     config: TrainConfig | Mapping[str, Any] | None = None,
                     status: str | None = "ok", dedupe_datasets: bool = False,
                     exclude_base: Iterable[str] | None = None) -> list[Hit]:
        """The `k` runs whose datasets are most like `meta` (only the traits it states count).

        `config` (a TrainConfig or a mapping with `model`/`scheme`) boosts runs with the same model
        and scheme; `status` keeps runs with that status (None: all); `dedupe_datasets` keeps the
        best run per dataset; `exclude_base` drops runs of those base datasets (leave-one-out).
        Ties are broken by higher test accuracy.
        """
        if not isinstance(meta, MetaFeatures):
            try:
                meta = MetaFeatures.model_validate(meta)
            except ValidationError as exc:
                raise RetrievalError(f"similar_runs: bad meta-features: {exc.errors()[0]['msg']}") from None
        query = NumericQuery.from_meta(meta, self.scaler)

        def exact(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return query.score(query.squared_distance(self._x[ids]))

        def bound(raw_last: float) -> float:
            squared = query.squared_distance_from_ip(np.array([raw_last]))[0] - _TOLERANCE
            return float(query.score(np.array([squared]))[0][0])

        return self._rank(self._numeric_search, query.faiss_vector(), k, exact, bound,
                          status=status, exclude_base=exclude_base, config=config,
                          dedupe=dedupe_datasets)

    def _columns(self) -> dict[str, np.ndarray]:
        """Per-record fields the ranking reads, as arrays (made once, reset when records are
        added): status, lower-cased base dataset, dataset id, model, scheme, test accuracy."""
        if self._column_cache is None:
            records = self._records
            self._column_cache = {
                "status": np.array([r.status for r in records], dtype=object),
                "base": np.array([r.base_dataset.lower() for r in records], dtype=object),
                "dataset": np.array([r.dataset_id for r in records], dtype=object),
                "model": np.array([r.config.model for r in records], dtype=object),
                "scheme": np.array([r.config.scheme for r in records], dtype=object),
                "acc": np.array([np.nan if r.outcome.test_acc is None else r.outcome.test_acc
                                 for r in records], dtype=float),
            }
        return self._column_cache

    def _allowed(self, status: str | None, exclude_base: Iterable[str] | None) -> np.ndarray | None:
        excluded = {b.lower() for b in (exclude_base or ())}
        if status is None and not excluded:
            return None
        cols = self._columns()
        keep = np.ones(len(self._records), dtype=bool)
        if status is not None:
            keep &= cols["status"] == status
        if excluded:
            keep &= ~np.isin(cols["base"], list(excluded))
        return np.flatnonzero(keep).astype(np.int64)

    def _numeric_search(self, vector: np.ndarray, fetch: int,
                        allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The `fetch` best inner products of `vector` with the record vectors, best first, as
        FAISS's `IndexFlatIP.search` returns them (float32 scores; ties to the lower id)."""
        ids = np.arange(len(self._numeric)) if allowed is None else allowed
        raw = self._numeric[ids] @ vector[0].astype(np.float32)
        top = np.lexsort((ids, -raw))[:fetch]
        return raw[top][None, :], ids[top][None, :]

    def _rank(self, search: Callable[[np.ndarray, int, np.ndarray | None],
                                     tuple[np.ndarray, np.ndarray]], vector: np.ndarray, k: int,
              exact: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
              bound: Callable[[float], float], *, status: str | None,
              exclude_base: Iterable[str] | None, config: Any, dedupe: bool) -> list[Hit]:
        """Search candidates (`search(vector, n, allowed ids)`), re-scored exactly, boosted,
        tie-broken and de-duplicated.

        Fetches more candidates until no unfetched one could still make the top `k`: the search
        returns them best first, so the last fetched raw score bounds every unfetched one.
        """
        allowed = self._allowed(status, exclude_base)
        n_allowed = len(self._records) if allowed is None else len(allowed)
        if k <= 0 or n_allowed == 0:
            return []
        model, scheme = _config_fields(config)
        max_boost = (MODEL_BOOST if model else 0.0) + (SCHEME_BOOST if scheme else 0.0)
        fetch = min(n_allowed, max(4 * k, 64))
        cols = self._columns()
        while True:
            raw, found = search(vector, fetch, allowed)
            valid = found[0] >= 0
            ids, raw = found[0][valid], raw[0][valid]
            scores, distances = exact(ids)
            boosted = scores + (MODEL_BOOST * (cols["model"][ids] == model) if model else 0.0) + (
                SCHEME_BOOST * (cols["scheme"][ids] == scheme) if scheme else 0.0)
            boosted = np.asarray(boosted, dtype=float)
            acc = cols["acc"][ids]
            order = np.lexsort((ids, -np.nan_to_num(acc, nan=-1.0), -boosted))
            chosen: list[int] = []
            datasets: set[str] = set()
            for j in order:
                dataset = cols["dataset"][ids[j]]
                if dedupe and dataset in datasets:
                    continue
                datasets.add(dataset)
                chosen.append(j)
                if len(chosen) == k:
                    break
            if fetch >= n_allowed or (
                len(chosen) == k and bound(float(raw[-1])) + max_boost < boosted[chosen[-1]]
            ):
                break
            fetch = min(n_allowed, fetch * 4)
        return [self._hit(int(ids[j]), float(boosted[j]), float(distances[j])) for j in chosen]

    def _hit(self, position: int, score: float, distance: float) -> Hit:
        r = self._records[position]
        return Hit(run_id=r.run_id, dataset_id=r.dataset_id, base_dataset=r.base_dataset,
                   score=round(score, 6), distance=round(max(distance, 0.0), 6),
                   card=self._card(position), model=r.config.model, scheme=r.config.scheme,
                   resolution=r.config.resolution, test_acc=r.outcome.test_acc,
                   test_acc_std=r.outcome.test_acc_std, status=r.status, source=r.provenance.source)
