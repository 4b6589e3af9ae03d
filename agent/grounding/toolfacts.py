"""What the tool outputs say about configs, the budget and the dataset, read for the meaning
checks (`agent.grounding.meaning`): every ranked config with its predicted accuracy and time, the
budget's time limit, the dataset's trait values.

    facts = tool_facts(tuple(sources), tuple(pick_sources))
    facts.configs          # ToolConfig per distinct config (rank_configs' top / alternatives,
                           # explain_config, the Recommendation JSON, the answer facts)
    facts.budget_seconds   # the budget's time limit (None: no limit or not known)
    facts.traits           # {"class_entropy": 2.81, "n_classes": 3, ...}
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.entities import model_aliases
from agent.grounding.numbers import _find, normalize_text
from agent.grounding.sources import config_identity

# Keys whose dict holds the dataset's traits (rank_configs, the answer facts, the Recommendation).
_TRAIT_KEYS = ("traits_used", "dataset_traits", "meta_features", "traits")
# Keys of a TrainConfig-like dict the meaning checks compare.
_FIELDS = ("model", "resolution", "lr", "epochs")


@dataclass
class ToolConfig:
    """One config the tools spoke of: its identity and what they predicted for it (accuracy in %,
    time in seconds; None where no source gave it)."""

    model: str
    resolution: float | None
    lr: float | None
    epochs: float | None
    identity: tuple | None
    acc: float | None = None
    seconds: float | None = None
    exact_acc: bool = False  # acc came from an unrounded fraction (predicted_acc)
    exact_seconds: bool = False  # seconds came from predicted_seconds, not a time in words

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]", "", self.model.lower())

    def named_by(self, mention_key: str) -> bool:
        """Whether a model mention (normalized, `agent.entities.Mention.key`) names this model (a
        family or prefix names each of its models, as `agent.entities.grounded` reads it)."""
        return any(a.startswith(mention_key) for a in model_aliases(self.key))


@dataclass
class ToolFacts:
    configs: list[ToolConfig] = field(default_factory=list)
    budget_seconds: float | None = None
    traits: dict[str, float] = field(default_factory=dict)

    def find(self, identity: tuple | None) -> ToolConfig | None:
        if identity is None:
            return None
        return next((c for c in self.configs if c.identity == identity), None)


def _seconds_of(text: str) -> float | None:
    """The first duration of a time in words ('5 min on t4 (rough estimate)', '1.5 h')."""
    for n in _find(normalize_text(text)):
        if n.kind == "dur":
            return n.value * n.scale
    return None


def _budget_of(value: Any) -> float | None:
    """A budget's time limit in seconds: the Recommendation's `budget.max_seconds`, or the budget
    in words of rank_configs / the facts ('60 min on NVIDIA T4 (assumed: ...)'; 'no time limit
    on CPU' and 'none (...)' have none)."""
    if isinstance(value, dict):
        v = value.get("max_seconds")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if isinstance(value, str):
        head = value.split("(", 1)[0]
        if re.search(r"no time limit|^\s*none\b", head, re.IGNORECASE):
            return None
        return _seconds_of(head)
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _config_of(node: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """The config a JSON object describes (its "config" dict, or itself in the facts' flat form
    with resolution_px), and whether the outcome keys are the object's own."""
    inner = node.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("model"), str):
        return inner, True
    if isinstance(node.get("model"), str) and all(
            k in node for k in ("lr", "epochs")) and ("resolution" in node or "resolution_px" in node):
        flat = dict(node)
        flat.setdefault("resolution", flat.get("resolution_px"))
        return flat, True
    return None


def _add(configs: dict[tuple, ToolConfig], config: dict[str, Any], node: dict[str, Any]) -> None:
    identity = config_identity(config)
    if identity is None:
        return
    tc = configs.get(identity)
    if tc is None:
        tc = configs[identity] = ToolConfig(
            model=str(config["model"]), resolution=_num(config.get("resolution")),
            lr=_num(config.get("lr")), epochs=_num(config.get("epochs")), identity=identity)
    acc = _num(node.get("predicted_acc"))
    if acc is not None:
        tc.acc, tc.exact_acc = 100 * acc if acc <= 1 else acc, True
    elif not tc.exact_acc and _num(node.get("predicted_accuracy_pct")) is not None:
        tc.acc = _num(node["predicted_accuracy_pct"])
    seconds = _num(node.get("predicted_seconds"))
    if seconds is not None:
        tc.seconds, tc.exact_seconds = seconds, True
    elif not tc.exact_seconds and isinstance(node.get("training_time"), str):
        tc.seconds = _seconds_of(node["training_time"])


def _walk(value: Any, configs: dict[tuple, ToolConfig], budgets: list[float],
          traits: dict[str, float]) -> None:
    if isinstance(value, list):
        for v in value:
            _walk(v, configs, budgets, traits)
        return
    if not isinstance(value, dict):
        return
    found = _config_of(value)
    if found is not None:
        _add(configs, found[0], value)
    if "budget" in value:
        seconds = _budget_of(value["budget"])
        if seconds is not None:
            budgets.append(seconds)
    for key in _TRAIT_KEYS:
        if isinstance(value.get(key), dict):
            for k, v in value[key].items():
                if _num(v) is not None:
                    traits.setdefault(k, float(v))
    for k, v in value.items():
        if k == "config" or k in _TRAIT_KEYS:
            continue
        _walk(v, configs, budgets, traits)


def _parsed(sources: Iterable[str]) -> list[Any]:
    out = []
    for s in sources:
        try:
            out.append(json.loads(s))
        except ValueError:
            continue
    return out


@functools.lru_cache(maxsize=64)
def tool_facts(sources: tuple[str, ...], pick_sources: tuple[str, ...] = ()) -> ToolFacts:
    """The configs, budget and traits of the JSON sources (text sources hold none of them). The
    budget is the pick's (`pick_sources`) when they give one, else the largest of the sources'
    (a check against it then never blames an answer for a budget the user has since raised)."""
    configs: dict[tuple, ToolConfig] = {}
    budgets: list[float] = []
    traits: dict[str, float] = {}
    for data in _parsed(sources):
        _walk(data, configs, budgets, traits)
    pick_budgets: list[float] = []
    for data in _parsed(pick_sources):
        _walk(data, configs, pick_budgets, traits)
    budget = max(pick_budgets) if pick_budgets else max(budgets) if budgets else None
    return ToolFacts(list(configs.values()), budget, traits)


__all__ = ["ToolConfig", "ToolFacts", "tool_facts"]
