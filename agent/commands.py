"""The real command line that trains a recommended config, built from the config itself (a small
model asked for "the command" wrote `python train.py --model resnet18 --pretrained True`, a
script that does not exist).

    train_command({"model": "resnet18", "pretrained": True, ...}, dataset="scans.npz")
    # 'metallmix train scans.npz --model resnet18 --pretrained --scheme end_to_end ...'
"""

from __future__ import annotations

import shlex
from typing import Any

from knowledge.search_space import TRAINABLE_SCHEMES

DATASET_PLACEHOLDER = "DATASET"  # where the user's dataset path goes when we do not know it

# TrainConfig field -> `metallmix train` option (the CLI's names, ui/cli/train.py)
_OPTIONS = (("scheme", "--scheme"), ("resolution", "--resolution"), ("optimizer", "--optimizer"),
            ("lr", "--lr"), ("weight_decay", "--weight-decay"), ("batch_size", "--batch-size"),
            ("epochs", "--epochs"), ("augmentation", "--augmentation"),
            ("label_smoothing", "--label-smoothing"))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def train_command(config: dict[str, Any], dataset: str | None = None, *,
                  time_budget_s: float | None = None, modality: str | None = None) -> str:
    """`metallmix train DATASET --model ... ` for `config` (a TrainConfig's fields). A k-NN config
    (no training: a nearest-neighbour classifier on frozen features) has no `metallmix train`
    scheme; its command trains the linear probe on the same frozen features instead, and
    `command_notes` says so."""
    parts = ["metallmix", "train", dataset or DATASET_PLACEHOLDER, "--model", str(config["model"]),
             "--pretrained" if config.get("pretrained", True) else "--no-pretrained"]
    for key, option in _OPTIONS:
        if config.get(key) is None:
            continue
        value = config[key]
        if key == "scheme" and value not in TRAINABLE_SCHEMES:
            value = "linear_probing"
        parts += [option, _number(value)]
    if time_budget_s:
        parts += ["--time-budget", f"{time_budget_s:.0f}"]
    if modality:
        parts += ["--modality", modality]
    return " ".join(shlex.quote(p) for p in parts)


def command_notes(config: dict[str, Any], dataset: str | None) -> list[str]:
    """What the user should know about `train_command`'s line."""
    notes = []
    if not dataset:
        notes.append(f"replace {DATASET_PLACEHOLDER} with your dataset: a .npz file or an image "
                     "folder (one sub-folder per class); `metallmix train --help` lists the named "
                     "sources")
    if config.get("scheme") not in (None, *TRAINABLE_SCHEMES):
        notes.append("k-NN on frozen features is not a `metallmix train` scheme: the command trains "
                     "a linear probe on the same frozen features instead")
    if config.get("pretrained", True):
        notes.append("pretrained ImageNet weights are downloaded by timm on first use (offline: "
                     "pass --weights with a local state dict)")
    return notes


__all__ = ["DATASET_PLACEHOLDER", "command_notes", "train_command"]
