"""What MetaLLMiX can recommend: one declarative definition of models and hyperparameters.

`SPACE` is the full space (every record must validate against it); `CPU_SPACE` is the part that
trains in about a minute on a laptop CPU at 28-64 px, used by our own sweeps. `TrainConfig` is one
point in it. `validate_config` turns any mapping into a `TrainConfig` or raises `ConfigError` naming
the field and its allowed values. `suggest` draws a config with an Optuna trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from knowledge.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """A recommendable architecture. `name` is the timm model name (with a pretrained tag if any)."""

    name: str
    label: str
    family: str
    params_m: float
    cpu_friendly: bool = False
    trainable: bool = True  # False: known from published records, but no timm model to launch
    note: str = ""
    min_input: int = 16  # smallest input the network accepts; smaller images are padded onto this canvas


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        # the MetaLLMiX paper's families
        ModelSpec("resnet50", "ResNet-50", "resnet", 25.6),
        ModelSpec("legacy_xception", "Xception", "xception", 22.9),
        ModelSpec("efficientnet_b0", "EfficientNet-B0", "efficientnet", 5.3),
        ModelSpec("efficientnet_b5", "EfficientNet-B5", "efficientnet", 30.4),
        ModelSpec("densenet121", "DenseNet-121", "densenet", 8.0, min_input=32),
        ModelSpec("inception_v3", "Inception-v3", "inception", 23.8, min_input=75),
        ModelSpec("nasnetalarge", "NASNet-A Large", "nasnet", 88.8),
        # small models that train on a CPU
        ModelSpec("resnet18", "ResNet-18", "resnet", 11.7, cpu_friendly=True),
        ModelSpec("mobilenetv3_small_100", "MobileNetV3-Small", "mobilenet", 2.5, cpu_friendly=True),
        ModelSpec("efficientnet_lite0", "EfficientNet-Lite0", "efficientnet", 4.7, cpu_friendly=True),
        ModelSpec("vit_tiny_patch16_224", "ViT-Tiny/16", "vit", 5.7, cpu_friendly=True),
        # the MedMNIST+ benchmark's models (published records)
        ModelSpec("vgg16", "VGG16", "vgg", 138.4, min_input=32),
        ModelSpec("alexnet", "AlexNet", "alexnet", 61.1, trainable=False,
                  note="no timm model: published records only, the launcher cannot train it"),
        ModelSpec("efficientnet_b4", "EfficientNet-B4", "efficientnet", 19.3),
        ModelSpec("vit_base_patch16_224", "ViT-B/16", "vit", 86.6),
        ModelSpec("vit_base_patch16_clip_224", "CLIP ViT-B/16", "vit", 86.2),
        ModelSpec("eva02_base_patch16_clip_224", "EVA-02 ViT-B/16", "vit", 85.8),
        ModelSpec("vit_base_patch16_224.dino", "DINO ViT-B/16", "vit", 85.8),
        ModelSpec("samvit_base_patch16.sa1b", "SAM ViT-B/16", "vit", 89.7),
    ]
}

SCHEMES = ("end_to_end", "linear_probing", "knn")
TRAINABLE_SCHEMES = ("end_to_end", "linear_probing")


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Any, ...]

    def check(self, value: Any) -> bool:
        return value in self.choices

    def allowed(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False
    allow_zero: bool = False  # e.g. weight decay: 0, or log-uniform in [low, high]

    def check(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        return (self.allow_zero and value == 0) or self.low <= value <= self.high

    def allowed(self) -> str:
        zero = "0 or " if self.allow_zero else ""
        return f"{zero}a number in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def check(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def allowed(self) -> str:
        return f"an integer in [{self.low}, {self.high}]"


Param = Union[Categorical, FloatRange, IntRange]


class TrainConfig(BaseModel):
    """One training configuration: a point of the search space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    pretrained: bool = True
    scheme: str = "end_to_end"
    resolution: int = 28
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 10
    augmentation: str = "light"
    label_smoothing: float = 0.0

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.model]

    def key(self) -> str:
        """A stable text form, for de-duplication and display."""
        return "|".join(f"{k}={v}" for k, v in self.model_dump().items())


DEFAULT_MODEL = "resnet18"  # the space default's model: MedMNIST v2's baseline


def is_default(cfg: TrainConfig) -> bool:
    """Whether `cfg` is the search space's default: `TrainConfig`'s defaults on `DEFAULT_MODEL`,
    pretrained or from scratch (from scratch where the weights are not available)."""
    return cfg.model == DEFAULT_MODEL and \
        cfg.model_copy(update={"pretrained": True}) == TrainConfig(model=DEFAULT_MODEL)


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per field of `TrainConfig`."""

    params: Mapping[str, Param]
    name: str = "full"
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def errors(self, config: Mapping[str, Any]) -> list[str]:
        """Every field outside the space, as 'field: value is not allowed; allowed: ...'."""
        out = []
        for key, param in self.params.items():
            if key in config and not param.check(config[key]):
                out.append(f"{key}: {config[key]!r} is not allowed; allowed: {param.allowed()}")
        return out

    def validate(self, config: Mapping[str, Any] | TrainConfig) -> TrainConfig:
        """A `TrainConfig` inside this space, or `ConfigError` naming each bad field."""
        data = dict(config.model_dump() if isinstance(config, TrainConfig) else config)
        unknown = sorted(set(data) - set(TrainConfig.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {', '.join(unknown)}; "
                f"known: {', '.join(TrainConfig.model_fields)}"
            )
        if "model" not in data:
            raise ConfigError(f"model: missing; allowed: {self.params['model'].allowed()}")
        try:
            cfg = TrainConfig(**data)
        except ValidationError as exc:
            parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("; ".join(parts)) from None
        problems = self.errors(cfg.model_dump())
        if problems:
            raise ConfigError("; ".join(problems))
        return cfg

    def suggest(self, trial: Any, base: Mapping[str, Any] | None = None) -> TrainConfig:
        """Draw a config with an Optuna trial (`trial.suggest_*`); `base` and `fixed` pin fields."""
        values: dict[str, Any] = dict(self.fixed) | dict(base or {})
        for key, param in self.params.items():
            if key in values:
                continue
            if isinstance(param, Categorical):
                values[key] = trial.suggest_categorical(key, list(param.choices))
            elif isinstance(param, IntRange):
                values[key] = trial.suggest_int(key, param.low, param.high, log=param.log)
            elif param.allow_zero:
                use = trial.suggest_categorical(f"{key}_nonzero", [True, False])
                values[key] = (
                    trial.suggest_float(key, param.low, param.high, log=param.log) if use else 0.0
                )
            else:
                values[key] = trial.suggest_float(key, param.low, param.high, log=param.log)
        return self.validate(values)

    def restrict(self, name: str, **params: Param | Sequence[Any]) -> SearchSpace:
        """A sub-space: a sequence becomes a Categorical of those values."""
        new = dict(self.params)
        for key, value in params.items():
            if key not in new:
                raise ConfigError(f"{key}: not a search-space field; known: {', '.join(new)}")
            new[key] = value if isinstance(value, (Categorical, FloatRange, IntRange)) else (
                Categorical(tuple(value))
            )
        return SearchSpace(params=new, name=name, fixed=self.fixed)


SPACE = SearchSpace(
    name="full",
    params={
        "model": Categorical(tuple(MODELS)),
        "pretrained": Categorical((True, False)),
        "scheme": Categorical(SCHEMES),
        "resolution": Categorical((28, 32, 48, 64, 96, 128, 224, 299, 331)),
        "optimizer": Categorical(("adamw", "adam", "sgd")),
        "lr": FloatRange(1e-6, 1.0, log=True),
        "weight_decay": FloatRange(1e-6, 0.5, log=True, allow_zero=True),
        "batch_size": Categorical((8, 16, 32, 64, 128, 256, 512)),
        "epochs": IntRange(1, 300),
        "augmentation": Categorical(("none", "light", "strong")),
        "label_smoothing": FloatRange(0.0, 0.3),
    },
)

CPU_SPACE = SPACE.restrict(
    "cpu",
    model=[m.name for m in MODELS.values() if m.cpu_friendly],
    scheme=TRAINABLE_SCHEMES,
    resolution=(28, 32, 48, 64),
    lr=FloatRange(1e-4, 3e-2, log=True),
    weight_decay=FloatRange(1e-6, 1e-2, log=True, allow_zero=True),
    batch_size=(32, 64, 128),
    epochs=IntRange(1, 8),
    label_smoothing=FloatRange(0.0, 0.2),
)


# The training protocol of the published MedMNIST+ runs (Doerrich et al., 2025): every published
# record has these settings. The launcher trains it with early stopping on the validation accuracy
# (`PROTOCOL_PATIENCE` epochs without improvement; the best checkpoint is kept).
PUBLISHED_PROTOCOL: dict[str, Any] = {
    "optimizer": "adamw", "lr": 1e-4, "weight_decay": 1e-2, "batch_size": 64, "epochs": 100,
    "augmentation": "none", "label_smoothing": 0.0,
}
PROTOCOL_PATIENCE = 10


def is_published_protocol(config: TrainConfig) -> bool:
    """Whether `config` trains with the published MedMNIST+ protocol (any model, scheme, size)."""
    return all(getattr(config, k) == v for k, v in PUBLISHED_PROTOCOL.items())


def validate_config(config: Mapping[str, Any] | TrainConfig, space: SearchSpace = SPACE) -> TrainConfig:
    """Validate against the full space (default) or a sub-space."""
    return space.validate(config)
