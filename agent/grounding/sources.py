"""Grounding sources read as records: values that belong together (one JSON object, one line of
text) and what they are about (`source_records`); JSON numbers get their kind from their key
(`agent.facts.KEY_KINDS` first)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.entities import Mention, find_mentions, model_aliases
from agent.facts import KEY_KINDS
from agent.grounding.numbers import _PAIR_GAP, Number, _find, normalize_text


@dataclass(frozen=True)
class Reading:
    """One way a source value may be read: its kind class, the value in that class, tolerance."""

    cls: str
    value: float
    tolerance: float


@dataclass
class Record:
    """Values that belong together (one JSON object, one line of text) and what they are about:
    the names (model aliases 'm:...', datasets 'd:...') and the config identity, if any."""

    readings: list[Reading] = field(default_factory=list)
    names: frozenset[str] = frozenset()
    config: tuple | None = None
    pairs: list[tuple[Number, Number]] = field(default_factory=list)

    @property
    def unbound(self) -> bool:
        return not self.names and self.config is None


def _readings(kind: str, value: float, tol: float, scale: float = 1.0) -> list[Reading]:
    value = abs(value)
    if kind == "frac" or (kind == "acc" and value <= 1):
        return [Reading("frac", value, tol), Reading("pct", 100 * value, 100 * tol)]
    if kind == "acc":
        return [Reading("pct", value, tol)]
    if kind == "dur":
        return [Reading("dur", value * scale, tol * scale), Reading("shown", value, tol)]
    return [Reading(kind, value, tol)]


def _key_kind(key: str, value: float) -> tuple[str, float]:
    """The kind of a JSON number from its key: the facts' own keys (`agent.facts.KEY_KINDS`) as
    declared there, any other key by its name's telling parts."""
    if key in KEY_KINDS:
        return KEY_KINDS[key], 1.0
    k = key.lower()
    if k.endswith("_pct") or k in ("pct", "percent", "base_value"):
        return "pct", 1.0
    if k in ("lr", "learning_rate"):
        return "lr", 1.0
    if k in ("weight_decay", "wd"):
        return "wd", 1.0
    if k in ("batch_size", "batch"):
        return "batch", 1.0
    if k in ("epochs", "epoch", "n_epochs"):
        return "epochs", 1.0
    if k in ("resolution", "resolution_px", "height", "width", "native_px", "image_size"):
        return "px", 1.0
    if "seconds" in k or k.endswith("_s") or k in ("time_s", "wall_s"):
        return "dur", 1.0
    if k.endswith("minutes"):
        return "dur", 60.0
    if k.endswith("hours"):
        return "dur", 3600.0
    if "points" in k or k == "contribution":
        return "points", 1.0
    if "acc" in k or "auc" in k or "f1" in k:
        return ("frac" if abs(value) <= 1 else "pct"), 1.0
    if k.endswith("_std"):
        return "pm", 1.0
    if k.startswith("n_") or k in ("rank", "k", "top_k", "candidates_scored", "class_counts") \
            or "class_size" in k:
        return "count", 1.0
    return "plain", 1.0


_IDENTITY = ("model", "pretrained", "scheme", "resolution", "optimizer", "lr", "weight_decay",
             "batch_size", "epochs", "augmentation")


def config_identity(config: dict[str, Any] | None) -> tuple | None:
    """A config (TrainConfig-like dict, or the answer facts' flat form) as a comparable tuple."""
    if not isinstance(config, dict):
        return None
    c = dict(config)
    if "resolution" not in c and "resolution_px" in c:
        c["resolution"] = c["resolution_px"]
    if not all(k in c for k in ("model", "resolution", "lr", "epochs")):
        return None

    def canon(v: Any) -> Any:
        return f"{float(v):.6g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return tuple((k, canon(c.get(k))) for k in _IDENTITY)


def _names(mentions: Iterable[Mention]) -> set[str]:
    out: set[str] = set()
    for m in mentions:
        if m.kind == "model":
            out.update(f"m:{a}" for a in model_aliases(m.key))
        elif m.kind == "dataset":
            out.add(f"d:{m.key}")
    return out


def _text_records(text: str, names: frozenset[str], config: tuple | None) -> list[Record]:
    """One record per line segment (split at ';'), about what it names plus `names`."""
    text = normalize_text(text)
    numbers = _find(text)
    mentions = find_mentions(text)
    records: list[Record] = []
    start = 0
    for piece in re.split(r"(\n|;)", text + "\n"):
        end = start + len(piece)
        if piece not in ("\n", ";") and piece.strip():
            inside = [n for n in numbers if start <= n.start < end]
            record = Record(names=frozenset(names | _names(m for m in mentions
                                                          if start <= m.start < end)),
                            config=config)
            for i, n in enumerate(inside):
                record.readings += _readings(n.kind, n.value, n.tolerance, n.scale)
                if n.kind == "pm" and i and _PAIR_GAP.fullmatch(text[inside[i - 1].end:n.start]):
                    record.pairs.append((inside[i - 1], n))
            if record.readings:
                records.append(record)
        start = end
    return records


def _json_records(value: Any, key: str, names: frozenset[str], config: tuple | None,
                  out: list[Record]) -> None:
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            record = Record(names=names, config=config)
            for v in value:
                kind, scale = _key_kind(key, v)
                record.readings += _readings(kind, float(v), 1e-9 * max(1.0, abs(v)), scale)
            out.append(record)
        else:
            for v in value:
                _json_records(v, key, names, config, out)
        return
    if isinstance(value, str):
        out.extend(_text_records(value, names, config))
        return
    if not isinstance(value, dict):
        return
    model = value.get("model") if isinstance(value.get("model"), str) else None
    inner = value.get("config") if isinstance(value.get("config"), dict) else None
    if model is None and inner is not None and isinstance(inner.get("model"), str):
        model = inner["model"]
    if model is not None:
        names = frozenset(_names(find_mentions(model)) or {f"m:{a}" for a in
                                                          model_aliases(re.sub(r"[^a-z0-9]", "",
                                                                               model.lower()))})
        config = config_identity(inner) or config_identity(value)
    for dkey in ("dataset", "dataset_id"):
        if isinstance(value.get(dkey), str):
            names = frozenset(names | _names(find_mentions(value[dkey])))
    record = Record(names=names, config=config)
    for k, v in value.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            kind, scale = _key_kind(k, v)
            record.readings += _readings(kind, float(v), 1e-9 * max(1.0, abs(v)), scale)
        else:
            _json_records(v, k, names, config, out)
    std = {k[:-4]: v for k, v in value.items() if k.endswith("_std") and isinstance(v, (int, float))}
    for base, spread in std.items():
        if isinstance(value.get(base), (int, float)):
            record.pairs.append((Number(float(value[base]), 1e-9, str(value[base])),
                                 Number(float(spread), 1e-9, str(spread))))
    if record.readings:
        out.append(record)


@functools.lru_cache(maxsize=512)
def source_records(source: str) -> tuple[Record, ...]:
    """The records of one source: parsed JSON when it is JSON, else text."""
    try:
        data = json.loads(source)
    except ValueError:
        data = None
    out: list[Record] = []
    if isinstance(data, (dict, list)):
        _json_records(data, "", frozenset(), None, out)
    else:
        out.extend(_text_records(source, frozenset(), None))
    return tuple(out)
