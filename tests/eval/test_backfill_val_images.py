"""`eval.backfill_val_images`: own runs of the meta-dataset get the validation images their
timing includes; published rows, and rows that have the count, are left as they are."""

from __future__ import annotations

import pandas as pd

from eval.backfill_val_images import backfill
from knowledge.runs import io
from knowledge.runs.store import RunStore
from tests.eval.test_e2e import write_npz
from tests.knowledge.recommend_fixtures import synthetic_records


def test_own_rows_get_their_datasets_validation_images(tmp_path) -> None:
    npz = write_npz(tmp_path / "tiny.npz")
    store = RunStore(tmp_path / "runs.sqlite")
    records = synthetic_records(per_dataset=1)[:3]
    own = records[0].model_copy(update={"dataset_id": str(npz), "run_id": "own-a"})
    kept = records[1].model_copy(update={"dataset_id": str(npz), "run_id": "own-b"})
    kept = kept.model_copy(update={"outcome": kept.outcome.model_copy(update={"val_images": 7})})
    published = records[2].model_copy(update={
        "run_id": "pub", "provenance": records[2].provenance.model_copy(
            update={"source": "published", "citation": "a paper"})})
    store.add_many([own, kept, published])
    path = tmp_path / "meta.parquet"
    store.export(path)
    counts = backfill(path)
    frame = io.read_frame(path).set_index("run_id")
    from knowledge.datasets.loader import load_dataset

    assert counts == {str(npz): 1}
    assert frame.at["own-a", "out.val_images"] == len(load_dataset(str(npz)).val)
    assert frame.at["own-b", "out.val_images"] == 7 and pd.isna(frame.at["pub", "out.val_images"])
    again = RunStore(tmp_path / "again.sqlite")
    assert again.import_file(path) == 3  # the file still reads back as records
    assert again.get("own-a").outcome.val_images == len(load_dataset(str(npz)).val)
