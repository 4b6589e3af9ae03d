"""Comparisons in words whose two numbers say the opposite ("lower ... than")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.grounding.matching import Violation
from agent.grounding.numbers import Number

_UP = ("higher", "greater", "more", "larger", "bigger", "longer", "slower", "better")
_DOWN = ("lower", "less", "smaller", "fewer", "shorter", "faster", "quicker", "worse")
_COMPARATIVE = re.compile(r"\b(" + "|".join(_UP + _DOWN) + r")\b", re.IGNORECASE)
_THAN = re.compile(r"\b(?:than|compared (?:to|with)|versus|vs\.?)(?![A-Za-z])", re.IGNORECASE)
_COMPARABLE = frozenset({"pct", "acc", "dur", "points", "lr", "wd", "batch", "epochs", "px"})


def _canonical(n: Number) -> float:
    return abs(n.value) * (n.scale if n.kind == "dur" else 1.0)


def _comparison_violations(text: str, numbers: Sequence[Number]) -> list[tuple[int, Violation]]:
    """'X has a lower training time of 2.4 days compared to 83 minutes': a comparison in words
    whose two numbers say the opposite (a small model writes these readily, with real numbers)."""
    out: list[tuple[int, Violation]] = []
    for sentence in re.finditer(r"(?:[^\n.!?;]|\.(?=\d))+", text):
        begin, end = sentence.start(), sentence.end()
        inside = [n for n in numbers if begin <= n.start < end and n.kind in _COMPARABLE]
        for word in _COMPARATIVE.finditer(text, begin, end):
            than = _THAN.search(text, word.end(), end)
            if than is None:
                continue
            between = [n for n in inside if word.end() <= n.start < than.start()]
            first = between[0] if between else next(
                (n for n in reversed(inside) if n.start < word.start()), None)
            second = next((n for n in inside if n.start >= than.end()), None)
            if first is None or second is None or first.kind != second.kind:
                continue
            if word.group(1).lower() in ("better", "worse") and first.kind not in ("pct", "acc"):
                continue
            a, b = _canonical(first), _canonical(second)
            up = word.group(1).lower() in _UP
            if a != b and (a > b) != up:
                out.append((word.start(), Violation(
                    f"{word.group(1)} {first.label} than {second.label}",
                    "the numbers say the opposite")))
    return out
