"""Whether an answer number restates a source reading, and the Violation an unsupported one is."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from agent.grounding.numbers import _ACCEPTS, Number
from agent.grounding.sources import Reading


def _close(a: float, ta: float, b: float, tb: float) -> bool:
    """a (written to +-ta) restates b (written to +-tb): b rounded to a's precision is a. A
    source less precise than the answer (tb > ta) must then agree to a's precision."""
    slack = tb if tb <= ta else 0.0
    return abs(a - b) <= ta + slack + 1e-9 * max(1.0, abs(a))


def agrees(number: Number, reading: Reading) -> bool:
    """Whether an answer number may be this source reading (kind and value up to rounding)."""
    accepted = _ACCEPTS.get(number.kind)
    if accepted is not None and reading.cls not in accepted:
        return False
    if number.kind == "acc" and reading.cls == "pct" and abs(number.value) <= 1:
        return _close(100 * abs(number.value), 100 * number.tolerance, reading.value,
                      reading.tolerance)  # "accuracy 0.727" for 72.7 %
    if number.kind == "dur":  # a unit conversion: the two roundings may overlap
        return abs(abs(number.value) - reading.value / number.scale) <= (
            number.tolerance + reading.tolerance / number.scale) * (1 + 1e-9)
    return _close(abs(number.value), number.tolerance, reading.value, reading.tolerance)


def matches(number: Number, allowed: Iterable[float]) -> bool:
    """Whether `number` equals one of the plain values `allowed` up to its rounding (x100 too)."""
    return any(math.isclose(number.value, c, rel_tol=1e-9, abs_tol=number.tolerance)
               for a in allowed for c in (a, a * 100.0, a / 100.0))


@dataclass(frozen=True)
class Violation:
    """Something in an answer no source supports: the text as written and why."""

    text: str
    reason: str = ""
    number: str = ""  # a number's digits as written (without its unit); "" for a name

    def __str__(self) -> str:
        return f"{self.text} ({self.reason})" if self.reason else self.text


def _unique(found: list[tuple[int, Violation]]) -> list[Violation]:
    out: list[Violation] = []
    for _, v in sorted(found, key=lambda x: x[0]):
        if v not in out:
            out.append(v)
    return out
