"""`launch_training`: train one config on a dataset, only after the user said yes.

The agent graph passes `confirmed=true` only when the user explicitly agreed to this run; without
it nothing is read or trained. The dataset path must lie inside the allowed data roots. The run
ends as a stored `RunRecord` (status ok / timeout / failed / ...), summarised for the LLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from knowledge.datasets import load_dataset
from knowledge.meta_dataset.shipped import open_store
from knowledge.retrieval.cards import run_card
from knowledge.search_space import validate_config
from tools.base import error, make_tool
from tools.schemas import Config

NOT_CONFIRMED = ("not launched: training needs the user's explicit confirmation. Tell the user the "
                 "dataset, config and expected time, ask 'shall I start it?', and call again with "
                 "confirmed=true only after they say yes")


class LaunchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=1000,
                         description="the dataset to train on (a path inside the data folders or "
                                     "a named source such as 'digits')")
    config: Config = Field(description="the config to train (usually the recommended one)")
    confirmed: bool = Field(False, strict=True,
                            description="true ONLY if the user explicitly agreed to start this "
                                        "training run (a JSON boolean)")
    time_budget_minutes: float | None = Field(
        None, gt=0, le=24 * 60, description="stop training after this many minutes (optional)")


def build(store: str | Path | None = None) -> list[StructuredTool]:
    """The training tool, storing its runs in `store` (default: the user's run store)."""

    def launch_training(dataset: str, config: Config | dict, confirmed: bool = False,
                        time_budget_minutes: float | None = None) -> Any:
        if confirmed is not True:
            return error(NOT_CONFIRMED)
        from knowledge.training import TrainingJob, check_config  # lazy: pulls in torch

        stated = config.stated() if isinstance(config, Config) else Config.model_validate(config).stated()
        cfg = check_config(validate_config(stated))  # refuse a bad config before reading any data
        ds = load_dataset(dataset, confine=True)  # every file read inside the roots
        run_store = open_store(store)
        job = TrainingJob(ds, cfg, store=run_store,
                          time_budget_s=None if time_budget_minutes is None else 60 * time_budget_minutes)
        record = job.start().result()
        out = record.outcome
        return {
            "run_id": record.run_id,
            "status": record.status,
            "dataset": record.dataset_id,
            "config": record.config.model_dump(),
            "test_acc_pct": None if out.test_acc is None else round(100 * out.test_acc, 2),
            "val_acc_pct": None if out.val_acc is None else round(100 * out.val_acc, 2),
            "train_seconds": None if out.train_seconds is None else round(out.train_seconds, 1),
            "epochs_completed": out.epochs_completed,
            "error": record.error,
            "stored_in": str(run_store.path),
            "card": run_card(record),
        }

    return [make_tool(
        launch_training, "launch_training",
        "Train one config on the user's dataset and store the result. ONLY call with "
        "confirmed=true after the user explicitly said yes to this exact run; otherwise it "
        "refuses. Blocks until the run ends and returns its status and accuracy.", LaunchArgs)]
