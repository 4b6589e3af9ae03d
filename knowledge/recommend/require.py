"""Required config values: a recommendation constrained by the user ("from scratch", "use 64 px",
"ResNet-50") or a what-if ("what learning rate for a pretrained ResNet-50?", "the same config on
a T4").

    restrict(candidates, {"model": "resnet50", "pretrained": True})

The candidates that already have the required values are kept. When none has them (the user asks
for a model or a resolution no recorded config uses), the candidates are rewritten with the values
set, so the meta-learner still ranks the other settings for it; those configs lie outside the
recorded runs, and the evidence check (`support`) says so on their cards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from knowledge.errors import ConfigError
from knowledge.search_space import MODELS, TrainConfig

#: the TrainConfig fields a user may require
REQUIRABLE = tuple(TrainConfig.model_fields)


def check_require(require: Mapping[str, Any] | None) -> dict[str, Any]:
    """`require` validated: known fields, values a TrainConfig accepts. Raises ConfigError."""
    if not require:
        return {}
    unknown = sorted(set(require) - set(REQUIRABLE))
    if unknown:
        raise ConfigError(f"cannot require {', '.join(unknown)}: known config fields are "
                          f"{', '.join(REQUIRABLE)}")
    model = require.get("model")
    if model is not None and model not in MODELS:
        raise ConfigError(f"unknown model {model!r}: it is not in the search space")
    return dict(require)


def _with(config: TrainConfig, require: Mapping[str, Any]) -> TrainConfig | None:
    try:
        return TrainConfig.model_validate({**config.model_dump(), **require})
    except (ValidationError, ValueError):
        return None


def restrict(candidates: Sequence[TrainConfig], require: Mapping[str, Any] | None) -> list[TrainConfig]:
    """The candidates with the `require`d values (see the module docstring); all when `require`
    is empty; [] when no candidate can take them."""
    if not require:
        return list(candidates)
    kept = [c for c in candidates if all(getattr(c, k) == v for k, v in require.items())]
    if kept:
        return kept
    rewritten = (_with(c, require) for c in candidates)
    return list(dict.fromkeys(c for c in rewritten if c is not None))


__all__ = ["REQUIRABLE", "check_require", "restrict"]
