"""Record the validation images of the meta-dataset's own runs (`out.val_images`), for the CPU time
model: a run's train_seconds include a pass over the validation split after every epoch, and the
subsampled variants keep their source's full validation split (`knowledge.metalearner.cputime`,
`VAL_COST`). Runs made since record it themselves (the launcher); this fills in the older ones
from their dataset's validation split, as the launcher prepared it (a dataset without one: 10 % of
its training images, `knowledge.training.data.VAL_FRACTION`).

    METALLMIX_DATA=../shared/data/medmnist python -m eval.backfill_val_images \\
        [--frame knowledge/data/meta_dataset.parquet]

Only own rows without the count are filled; published rows carry no times. The file is rewritten
atomically; a dataset that cannot be loaded here stops the run before anything is written.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from knowledge.datasets.loader import load_dataset
from knowledge.meta_dataset.shipped import SHIPPED
from knowledge.runs import io
from knowledge.training.data import VAL_FRACTION

COLUMN = "out.val_images"


def val_images(dataset_id: str) -> int:
    """The validation images a run on `dataset_id` evaluated after each epoch."""
    dataset = load_dataset(dataset_id)
    if dataset.val is not None and len(dataset.val):
        return len(dataset.val)
    return max(1, round(VAL_FRACTION * len(dataset.train)))


def backfill(path: Path) -> dict[str, int]:
    """Fill `out.val_images` of the own rows of the file at `path`; counts per dataset filled."""
    frame = io.read_frame(path)
    if COLUMN not in frame:
        frame[COLUMN] = None
    missing = frame[COLUMN].map(lambda v: v is None or (isinstance(v, float) and math.isnan(v)))
    todo = frame.index[(frame["prov.source"] == "own") & missing]
    sizes = {d: val_images(d) for d in sorted(set(frame.loc[todo, "dataset_id"]))}
    frame[COLUMN] = frame[COLUMN].astype("object")
    for i in todo:
        frame.at[i, COLUMN] = sizes[frame.at[i, "dataset_id"]]
    io.write_frame(frame, path)
    return {d: int((frame.loc[todo, "dataset_id"] == d).sum()) for d in sizes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.backfill_val_images",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--frame", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    counts = backfill(args.frame)
    print(f"{sum(counts.values())} own runs on {len(counts)} datasets given their validation images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
