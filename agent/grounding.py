"""Grounding: every number in an answer must come from a tool output (or the user's own words).

    violations = ungrounded_numbers(answer, sources=[tool_output_json, markdown, user_text])
    if violations: ...  # retry once, listing them; else fall back to the deterministic report

A number matches a source number when it equals it up to the answer's own rounding (72 or 72.4
matches 72.43), also as a percentage of a fraction (72.4 % matches 0.724) and in any notation
(1e-2 matches 0.01, 3,000 matches 3000). Digits inside names are not numbers: ResNet-18,
MobileNetV3, ViT-B/16, efficientnet_b4, run ids. Integers up to `SMALL_INT` (list numbering,
"two alternatives", "top 5") are always allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

SMALL_INT = 10
_UNITS = r"(?:px|k|x|ep|epochs?|s|min|mins|h|d|pts?|%)?"
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])"                       # not the tail of a name, id or decimal
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"  # 3,000 / 72.4 / 1 / .5
    r"(?:[eE]([-+]?\d+))?"                      # 1e-04
    r"(" + _UNITS + r")"
    r"(?![A-Za-z0-9_])",                        # not followed by more name characters
)


@dataclass(frozen=True)
class Number:
    """A number found in text: its value, how precisely it was written, and the text."""

    value: float
    tolerance: float
    text: str


def _is_name_part(text: str, start: int) -> bool:
    """Digits after 'Net-' or 'B/' belong to a model name, not a quantity."""
    if start >= 2 and text[start - 1] in "-/" and text[start - 2].isalpha():
        return True
    return start >= 2 and text[start - 1] == "/" and text[start - 2].isalnum()


def find_numbers(text: str) -> list[Number]:
    """The numbers written in `text` (see the module docstring for what counts)."""
    found = []
    for m in _NUMBER.finditer(text):
        if _is_name_part(text, m.start()):
            continue
        mantissa, exponent, unit = m.group(1), m.group(2), m.group(3)
        digits = mantissa.replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        scale = 10.0 ** int(exponent) if exponent else 1.0
        if unit == "k":
            scale *= 1000
        value = float(digits) * scale
        tolerance = 0.5 * 10.0 ** (-decimals) * scale + 1e-12 * max(1.0, abs(value))
        found.append(Number(value, tolerance, m.group(0)))
    return found


def source_values(sources: Iterable[str]) -> list[float]:
    """Every number in the source texts (duplicates removed)."""
    return sorted({n.value for text in sources for n in find_numbers(text)})


def matches(number: Number, allowed: Iterable[float]) -> bool:
    """Whether `number` equals an allowed value up to its rounding (also x100 / /100)."""
    for a in allowed:
        for candidate in (a, a * 100.0, a / 100.0):
            if math.isclose(number.value, candidate, rel_tol=1e-9, abs_tol=number.tolerance):
                return True
    return False


def ungrounded_numbers(answer: str, sources: Iterable[str]) -> list[str]:
    """The numbers of `answer` found in none of `sources` (as written, each once, in order)."""
    allowed = source_values(sources)
    out: list[str] = []
    for number in find_numbers(answer):
        if number.value == int(number.value) and abs(number.value) <= SMALL_INT:
            continue
        if not matches(number, allowed) and number.text not in out:
            out.append(number.text)
    return out


__all__ = ["Number", "SMALL_INT", "find_numbers", "matches", "source_values", "ungrounded_numbers"]
