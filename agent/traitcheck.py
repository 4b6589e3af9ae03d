"""The dataset traits after a user message: what it states merged into what was known, checked
against each other; a conflict becomes one question instead of a silent overwrite.

    update = merge_traits(known, found, text)
    update.traits       # {"n_instances": {"value": 10000, "source": "stated"}, ...}
    update.question     # None, or the one question a conflict needs ("10,000 or 4,700?")
    update.pending      # the trait that question asks for

Rules:
- A vague amount ("a few thousand") is recorded with source "vague" and its "range" ([2000, 5000]);
  a written range ("2,000-3,000 images") with source "stated" and its range. Either fills the trait
  (it is not asked for again); a vague amount does not replace a precise value it covers.
- Measured traits (source "measured", from analyze_dataset) change only when the message corrects
  them explicitly ("actually the images are 512 px", "no, there are 5 classes"); a resolution edit
  ("use 64 px") is about the model's input, never the image size.
- Class sizes imply the total, the number of classes and the imbalance. When they disagree with a
  total (beyond 5 %, or outside a vague range), a number of classes or an imbalance stated now or
  earlier, nothing is overwritten: ONE question names both values, `pending` is the trait asked
  for, and the trait carries "asked" until the next message, which resolves it (a number, "the
  class sizes are right", "the total"). Unanswered, the value stated for the trait stays and the
  class sizes are dropped (noted in `dropped`); nothing is asked twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.traitparse import read_counts, round_ratio
from agent.traitwords import VAGUE, Amount, amount_at, vague_amount

# Traits a dataset analysis measures: a message changes them only when it corrects them
# explicitly ("actually the images are 512 px").
MEASURABLE = ("n_instances", "n_classes", "imbalance_ratio", "class_counts", "height", "width",
              "channels")
TOTAL_TOLERANCE = 0.05  # class sizes that add up to within 5 % of the total agree with it
RATIO_TOLERANCE = 0.10  # a stated imbalance within 10 % of the class sizes' agrees with them
_CORRECTION = re.compile(
    r"^\W*(?:no|nope|nah|non|nein)\b|\b(?:actually|in fact|correction|wrong|mistake|i meant|"
    r"sorry|rather|not\s+\d[\d,.]*|isn'?t|aren'?t|wasn'?t|weren'?t|en fait|en realidad|de hecho|"
    r"eigentlich|tats[äa]chlich|in realt[àa]|in effetti)\b", re.IGNORECASE)
_MEANS_COUNTS = re.compile(r"\b(?:class(?:es)?|counts?|sizes?|list(?:ed)?|second|latter|add(?:s|ed)?"
                           r"\s+up|sum|breakdown|per\s+class)\b", re.IGNORECASE)
_MEANS_STATED = re.compile(r"\b(?:total|first|former|overall|in\s+all|altogether|the\s+ratio|"
                           r"the\s+number)\b", re.IGNORECASE)


@dataclass
class TraitUpdate:
    """The merged traits, and the question a conflict needs (None when there is none)."""

    traits: dict[str, dict[str, Any]]
    question: str | None = None
    pending: str | None = None
    dropped: list[str] = field(default_factory=list)  # stated values not taken (and why)


def _amount_for(text: str, value: Any) -> Amount | None:
    """The range or vague amount of `text` that `value` was read from (None: written exactly)."""
    candidates = [read_counts(text).instances, *(vague_amount(m) for m in VAGUE.finditer(text))]
    if not isinstance(value, (int, float)):
        return None
    for m in re.finditer(r"(?:between\s+)?\d[\d,.]*\s*k?\s*(?:-|–|to|and|à|a|bis)\s*\d[\d,.]*\s*k?",
                         text, re.IGNORECASE):
        candidates.append(amount_at(m.group(0)))
    for amount in candidates:
        if amount is not None and amount.is_range and amount.lo <= value <= amount.hi:
            return amount
    return None


def _fmt(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def _listed(counts: list[int]) -> str:
    parts = [_fmt(c) for c in counts]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _total_agrees(entry: dict[str, Any], total: int) -> bool:
    if entry.get("range"):
        lo, hi = entry["range"]
        return lo * (1 - TOTAL_TOLERANCE) <= total <= hi * (1 + TOTAL_TOLERANCE)
    value = float(entry["value"])
    return abs(total - value) <= max(1.0, TOTAL_TOLERANCE * value)


def _ratio(counts: list[int]) -> float | None:
    return round_ratio(max(counts) / min(counts)) if counts and min(counts) > 0 else None


def _conflict(traits: dict[str, dict[str, Any]], approx: bool) -> tuple[str, str] | None:
    """(question, trait asked for) when the class sizes disagree with another trait."""
    counts = (traits.get("class_counts") or {}).get("value")
    if not counts:
        return None
    total = sum(counts)
    n, k, r = (traits.get(key) for key in ("n_instances", "n_classes", "imbalance_ratio"))
    if n is not None and not _total_agrees(n, total):
        about = "about " if approx or n.get("range") or n.get("source") == "vague" else ""
        return (f"You said {about}{_fmt(n['value'])} images, but the class sizes you listed "
                f"({_listed(counts)}) do not add up to that: which is right, the total or the "
                "class sizes?", "n_instances")
    if k is not None and k["value"] != len(counts):
        return (f"You said {_fmt(k['value'])} classes, but you listed {len(counts)} class sizes "
                f"({_listed(counts)}): how many classes are there?", "n_classes")
    derived = _ratio(counts)
    if r is not None and derived is not None and abs(float(r["value"]) - derived) > max(
            0.5, RATIO_TOLERANCE * derived):
        return (f"You said the largest class is {_fmt(r['value'])} times the smallest, but the "
                f"class sizes you listed (largest {_fmt(max(counts))}, smallest "
                f"{_fmt(min(counts))}) give another ratio: which is right?", "imbalance_ratio")
    return None


def _resolve(traits: dict[str, dict[str, Any]], found: dict[str, Any], text: str,
             dropped: list[str]) -> None:
    """Settle the conflict the last question asked about, with this message (`found`)."""
    key = next((k for k, t in traits.items() if t.get("asked")), None)
    if key is None:
        return
    traits[key] = {k: v for k, v in traits[key].items() if k != "asked"}
    counts = (traits.get("class_counts") or {}).get("value")
    if not counts or "class_counts" in found:
        return  # new class sizes: checked afresh
    implied = {"n_instances": sum(counts), "n_classes": len(counts), "imbalance_ratio": _ratio(counts)}
    if key in found:
        entry = {"value": found[key], "source": "stated"}
        agrees = (_total_agrees(entry, implied["n_instances"]) if key == "n_instances"
                  else found[key] == implied[key] if key == "n_classes"
                  else abs(float(found[key]) - (implied[key] or 0)) <= max(
                      0.5, RATIO_TOLERANCE * (implied[key] or 0)))
        if agrees:
            return
    elif _MEANS_COUNTS.search(text) and not _MEANS_STATED.search(text):
        found[key] = implied[key]  # "the class sizes are right"
        return
    elif not _MEANS_STATED.search(text):
        dropped.append(f"class_counts: the question about {key} was not answered; kept "
                       f"{_fmt(traits[key]['value'])}")
    traits.pop("class_counts", None)
    dropped.append(f"class_counts: {_listed(counts)} disagree with the {key} confirmed")
    if key == "n_instances" and "imbalance_ratio" not in traits and implied["imbalance_ratio"]:
        traits["imbalance_ratio"] = {"value": implied["imbalance_ratio"], "source": "stated"}


def merge_traits(known: dict[str, dict[str, Any]], found: dict[str, Any], text: str, *,
                 edits: dict[str, Any] | None = None) -> TraitUpdate:
    """`known` (trait -> {"value", "source"[, "range"]}) with the traits `found` in the message
    `text` (see the module docstring).

    `edits`: the config edits of the same message (`agent.intents.plan_edits`): a resolution
    edit ("use 64 px") is about the model's input, not the images, so it does not change the
    image size."""
    traits = {k: dict(v) for k, v in known.items()}
    found = {k: v for k, v in found.items() if v is not None}
    dropped: list[str] = []
    if edits and "resolution" in edits:
        for key in ("height", "width"):
            if found.pop(key, None) is not None:
                dropped.append(f"{key}: the px is the model's input size")
    explicit = bool(_CORRECTION.search(text))
    for key in list(found):
        old = traits.get(key)
        if (old and old.get("source") == "measured" and key in MEASURABLE
                and old["value"] != found[key] and not explicit):
            found.pop(key)
            dropped.append(f"{key}: {old['value']!r} was measured; not changed without an "
                           "explicit correction")
    if explicit and "height" in found and "width" not in found and \
            (traits.get("width") or {}).get("source") == "measured":
        traits.pop("width")  # "actually the images are 512 px": the measured width is stale too
    _resolve(traits, found, text, dropped)
    for key, value in found.items():
        if (traits.get(key) or {}).get("value") == value and key != "n_instances":
            continue  # restated as it was: its provenance (a measurement) stays
        entry: dict[str, Any] = {"value": value, "source": "stated"}
        amount = _amount_for(text, value) if key == "n_instances" else None
        if amount is not None:
            entry["range"] = [amount.lo, amount.hi]
            if amount.vague:
                entry["source"] = "vague"
                old = traits.get(key)
                if old and old.get("source") in ("stated", "measured") \
                        and amount.lo <= old["value"] <= amount.hi:
                    continue  # "a few thousand" does not replace the 3,400 stated before
        traits[key] = entry
    counts_stated = "class_counts" in found
    if counts_stated or (traits.get("class_counts") and {"n_instances", "n_classes",
                                                         "imbalance_ratio"} & set(found)):
        if (conflict := _conflict(traits, approx=_approx(text))) is not None:
            question, pending = conflict
            if not counts_stated and explicit:  # "actually it's 3,000 images": a correction
                counts = traits.pop("class_counts")["value"]
                dropped.append(f"class_counts: {_listed(counts)} replaced by the corrected {pending}")
            else:
                traits[pending]["asked"] = {"against": "class_counts"}
                return TraitUpdate(traits=traits, question=question, pending=pending,
                                   dropped=dropped)
    if counts_stated and "class_counts" in traits:
        counts = traits["class_counts"]["value"]
        implied = {"n_instances": sum(counts), "n_classes": len(counts),
                   "imbalance_ratio": _ratio(counts)}
        for key, value in implied.items():
            if key not in found and value is not None:
                traits[key] = {"value": value, "source": "stated"}
    return TraitUpdate(traits=traits, dropped=dropped)


def _approx(text: str) -> bool:
    counts = read_counts(text)
    return counts.instances is not None and counts.instances.approx


__all__ = ["MEASURABLE", "TraitUpdate", "merge_traits"]
