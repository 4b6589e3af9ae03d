"""Whether a user message states a trait value an LLM extracted from it (`supported`).

Every number must be written in the message *as that trait*, or follow from what is written:

- n_instances: a total ("10,000 images"), a number with no other role ("around 800 I think"),
  inside a written range or vague amount ("a few thousand" covers 2,000-5,000), or the sum of the
  class sizes listed; never a class size, a size in px, a duration, a ratio.
- n_classes: a number of classes, a number with no other role, a number word, "binary", the number
  of class names listed ("normal vs pneumonia vs covid") or of class sizes listed.
- class_counts: a multiset of the numbers written (115 written once fills one class, not seven);
  only largest/smallest sizes are not the class counts (unless that is every class).
- imbalance_ratio: a ratio as written ("1:20", "20 times more", "imbalance ratio 20"), largest /
  smallest, or max / min of the class sizes listed (a class size of 6,705 is not a ratio); 1 for
  "balanced".
- height / width: a size ("64 px", "600x450"), or a bare number in a message about image size;
  never "3 epochs".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from agent.grounding import find_numbers
from agent.traitparse import Counts, read_counts
from agent.traitwords import COLOUR as _COLOUR
from agent.traitwords import ENGLISH_WORD_INTS, VAGUE, modality_hints, vague_amount
from agent.traitwords import GRAY as _GRAY

_SCALED = re.compile(r"\b(" + "|".join(ENGLISH_WORD_INTS) + r"|a|one|\d+(?:\.\d+)?)\s+"
                     r"(hundred|thousand|million)\b", re.IGNORECASE)
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_SIZE_WORDS = re.compile(r"px|pixel|resolution|\bsize|wide|tall|high|big|large|small|dimension|"
                         r"\d\s*[x×]\s*\d", re.IGNORECASE)
_BALANCED = re.compile(r"\bbalanced\b|\bequal(?:ly)?\s+(?:sized|split|class)", re.IGNORECASE)
_UNBALANCED = re.compile(r"imbalanc|unbalanc|not\s+balanced|n't\s+balanced", re.IGNORECASE)
# roles a number may have for each trait (`agent.traitparse.read_counts`)
_ROLES: dict[str, frozenset[str]] = {
    "n_instances": frozenset({"instances", "other"}),
    "n_classes": frozenset({"classes", "other"}),
    "class_counts": frozenset({"count", "largest", "smallest", "other"}),
    "height": frozenset({"size"}),
    "width": frozenset({"size"}),
}


def scaled_words(text: str) -> set[float]:
    """Amounts written with a scale word: 'three thousand' -> 3000, '1.5 thousand' -> 1500."""
    out = set()
    for m in _SCALED.finditer(text):
        head = m.group(1).lower()
        base = 1 if head in ("a", "one") else ENGLISH_WORD_INTS.get(head) or float(head)
        out.add(base * _SCALES[m.group(2).lower()])
    return out


def _close(a: float, b: float, rel: float = 0.0) -> bool:
    return abs(a - b) <= max(0.5 if rel == 0 else 0.0, rel * max(abs(a), abs(b)), 1e-9)


def roles_of(value: float, counts: Counts, text: str) -> list[str]:
    """The roles `value` is written with in the message (one entry per occurrence)."""
    roles = [role for _, _, role, v in counts.roles if _close(v, value)]
    if not roles and any(abs(n.value - value) <= max(n.tolerance, 1e-9) for n in find_numbers(text)):
        roles = ["other"]  # a format the trait parser does not read ("1e3")
    return roles


def _ratio_supported(value: float, counts: Counts, text: str) -> bool:
    if value == 1 and _BALANCED.search(text) and not _UNBALANCED.search(text):
        return True
    if counts.ratio is not None and abs(counts.ratio - value) <= max(0.05, 0.01 * counts.ratio):
        return True  # as written (rounding only)
    derived = [counts.largest / counts.smallest if counts.extremes_ratio else None]
    if counts.counts and min(counts.counts) > 0:
        derived.append(max(counts.counts) / min(counts.counts))
    return any(d is not None and _close(d, value, 0.05) for d in derived)  # computed, rounded


def counts_supported(values: list[int], text: str, counts: Counts | None = None) -> bool:
    """Whether the class sizes `values` are written in `text`, as a multiset, and are not only the
    largest and smallest class of more classes."""
    counts = counts or read_counts(text)
    written: Counter[float] = Counter()
    for _, _, role, v in counts.roles:
        if role in _ROLES["class_counts"]:
            written[v] += 1
    for value, times in Counter(values).items():
        if written[float(value)] < times:
            return False
    extremes = {counts.largest, counts.smallest} - {None}
    if extremes and set(values) <= extremes:
        return counts.n_classes is not None and len(values) == counts.n_classes
    return True


def supported(key: str, value: Any, text: str, counts: Counts | None = None) -> bool:
    """Whether `text` states `value` for trait `key` (see the module docstring)."""
    counts = counts or read_counts(text)
    if key == "channels":
        return bool(_GRAY.search(text) or _COLOUR.search(text) or re.search(r"\bchannels?\b", text))
    if key == "class_counts" and isinstance(value, list):
        return counts_supported([int(v) for v in value], text, counts)
    if isinstance(value, list):
        return all(supported(key, v, text, counts) for v in value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    if abs(value) > 1e15:  # a run of digits no trait holds: written, or not
        return any(n.value == value for n in find_numbers(text))
    if key == "imbalance_ratio":
        return _ratio_supported(float(value), counts, text)
    roles = roles_of(value, counts, text)
    if key == "n_instances":
        amount = counts.instances
        return (bool(set(roles) & _ROLES[key]) or value in scaled_words(text)
                or (amount is not None and amount.lo <= value <= amount.hi)
                or any(a.lo <= value <= a.hi for a in map(vague_amount, VAGUE.finditer(text)))
                or (counts.counts is not None and _close(sum(counts.counts), value))
                or (counts.per_class is not None and counts.n_classes is not None
                    and _close(counts.per_class * counts.n_classes, value)))
    if key == "n_classes":
        words = {n for w, n in ENGLISH_WORD_INTS.items()
                 if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
        return (value == counts.n_classes or value in words or bool(set(roles) & _ROLES[key])
                or (counts.counts is not None and len(counts.counts) == value))
    if key in ("height", "width"):
        return "size" in roles or ("other" in roles and bool(_SIZE_WORDS.search(text)))
    words = {n for w, n in ENGLISH_WORD_INTS.items() if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
    return bool(roles) or value in words or value in scaled_words(text)


def modality_reading(llm: str, parsed: str | None, text: str) -> str | None:
    """The modality to keep of an LLM's `llm` for `text`: the one the parser read wins (the word
    the user wrote); else the LLM's, unless the message's words point elsewhere
    (`agent.traitwords.MODALITY_HINTS`: "blood-cell crops" are microscopy, not the x-ray a 1.5B
    model said) - then the one they point to, or None when they point to several."""
    if parsed is not None:
        return None  # the parser's own reading stands
    hints = modality_hints(text)
    if not hints or llm in hints:
        return llm
    return next(iter(hints)) if len(hints) == 1 else None


__all__ = ["counts_supported", "modality_reading", "roles_of", "scaled_words", "supported"]
