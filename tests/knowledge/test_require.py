"""knowledge.recommend.require: candidates constrained to required config values."""

from __future__ import annotations

import pytest

from knowledge.errors import ConfigError
from knowledge.recommend.require import check_require, restrict
from knowledge.search_space import TrainConfig

A = TrainConfig(model="resnet18", pretrained=True, resolution=64, epochs=10)
B = TrainConfig(model="densenet121", pretrained=True, resolution=224, epochs=100, lr=1e-4)
C = TrainConfig(model="resnet18", pretrained=False, resolution=28, epochs=30)


def test_keeps_the_matching_candidates() -> None:
    assert restrict([A, B, C], {"model": "resnet18"}) == [A, C]
    assert restrict([A, B, C], {"model": "resnet18", "pretrained": False}) == [C]
    assert restrict([A, B, C], None) == [A, B, C]


def test_rewrites_when_none_matches() -> None:
    out = restrict([A, B, C], {"model": "resnet50"})
    assert {c.model for c in out} == {"resnet50"}
    assert {c.resolution for c in out} == {64, 224, 28}  # the other settings stay to be ranked
    assert {c.epochs for c in restrict([A, B], {"epochs": 3})} == {3}


def test_check_require() -> None:
    assert check_require({"pretrained": False}) == {"pretrained": False}
    with pytest.raises(ConfigError, match="cannot require colour"):
        check_require({"colour": "red"})
    with pytest.raises(ConfigError, match="unknown model"):
        check_require({"model": "convnext_tiny"})
