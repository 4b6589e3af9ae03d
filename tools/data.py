"""`analyze_dataset`: the meta-features of a dataset file or folder inside the allowed data roots."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from knowledge.datasets import load_dataset
from tools.base import make_tool


class AnalyzeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=1000,
                      description="the dataset: a .npz file, a folder of class subfolders, or a "
                                  "named source (digits, fashion-mnist, mnist-5k, "
                                  "medmnist:<name>); optional variant '?n=500&seed=0'")
    modality: str | None = Field(None, description="imaging modality if the user said it, "
                                                   "e.g. 'x-ray', 'ct'")


def analyze_dataset(path: str, modality: str | None = None) -> dict[str, Any]:
    ds = load_dataset(path, modality=modality, confine=True)  # every file read inside the roots
    meta = ds.meta_features()
    return {
        "dataset": ds.id,
        "traits": meta.model_dump(exclude_none=True),
        "unknown_traits": meta.missing(),
        "n_val": len(ds.val) if ds.val is not None else 0,
        "n_test": len(ds.test) if ds.test is not None else 0,
        "class_names": (ds.class_names or [])[:20],
    }


def build() -> list[StructuredTool]:
    return [make_tool(
        analyze_dataset, "analyze_dataset",
        "Read a dataset the user pointed to and measure its traits (images, classes, imbalance, "
        "image size, channels, modality). Pass the returned 'traits' to rank_configs. Only files "
        "inside the allowed data folders can be read.", AnalyzeArgs)]
