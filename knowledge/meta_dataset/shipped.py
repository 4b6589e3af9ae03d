"""The meta-dataset shipped with the package, and the default run store seeded from it.

`knowledge/data/meta_dataset.parquet` holds every published record and every own run we made (one flat
row per record, see `record_to_row`). A fresh install opens its default store with it, so MetaLLMiX
recommends at once; `rebuild()` (`metallmix runs rebuild`) regenerates the file from its sources: the
published MedMNIST+ table and the own runs in a run store (made by `metallmix sweep`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from knowledge import paths
from knowledge.meta_dataset.medmnist_plus import default_class_counts_csv, default_results_csv, load_medmnist_plus
from knowledge.runs import io
from knowledge.runs.record import record_to_row
from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

SHIPPED = paths.PACKAGE_DATA / "meta_dataset.parquet"


def open_store(path: str | Path | None = None, *, seed: bool = True) -> RunStore:
    """The run store at `path`, a file path or a database URL (default: `paths.store_url()`).

    The default store is seeded with the shipped meta-dataset while it holds no published record (a
    fresh install, or a store first created by `RunStore()` directly, e.g. by a training run), so it
    holds every published and own record; an explicit path is opened as it is. Importing is
    idempotent, so two processes seeding at once add each record once.
    """
    store = RunStore(path)  # a file path or a database URL; None: paths.store_url()
    if seed and path is None and SHIPPED.exists() and store.count(source="published") == 0:
        added = store.import_file(SHIPPED)
        log.info("seeded new run store %s with %d shipped records", store.path, added)
    return store


def rebuild(
    store: RunStore,
    *,
    out: str | Path = SHIPPED,
    results_csv: str | Path | None = None,
) -> dict[str, int]:
    """Write the meta-dataset file from its sources: the published MedMNIST+ table (re-imported from
    `results_csv`) plus the store's own runs. Written atomically; returns counts by source."""
    results = Path(results_csv) if results_csv else default_results_csv()
    counts = default_class_counts_csv(results)
    published = load_medmnist_plus(results, counts if counts.exists() else None)
    own = store.query(source="own")
    import pandas as pd

    frame = pd.DataFrame([record_to_row(r) for r in [*published, *own]])
    io.write_frame(frame, Path(out))
    return {"published": len(published), "own": len(own), "total": len(frame)}
