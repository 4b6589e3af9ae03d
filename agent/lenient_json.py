"""Tolerant JSON for tool calls written as text: single quotes, Python literals, trailing commas.

    loads_lenient("{'name': 'rank_configs', 'arguments': {'k': 3,},}")
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from typing import Any


def _outside_strings(text: str) -> Iterable[tuple[int, str, bool]]:
    """(index, char, inside_a_string) for each character; strings are '...' or "..."."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            yield i, ch, True
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        else:
            if ch in "\"'":
                quote = ch
                yield i, ch, True
            else:
                yield i, ch, False


def _pythonize(text: str) -> str:
    """JSON's true/false/null as Python literals, outside strings (for `ast.literal_eval`)."""
    out: list[str] = []
    word = ""
    mapping = {"true": "True", "false": "False", "null": "None"}
    for _, ch, in_string in _outside_strings(text + " "):
        if not in_string and (ch.isalnum() or ch == "_"):
            word += ch
            continue
        if word:
            out.append(mapping.get(word, word))
            word = ""
        out.append(ch)
    return "".join(out)[:-1]


def loads_lenient(text: str) -> Any:
    """Parse JSON, or failing that a JSON-like literal: single quotes, trailing commas, Python's
    True/False/None. Only literals are ever evaluated (`ast.literal_eval`). ValueError if neither."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        value = ast.literal_eval(_pythonize(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not JSON: {text[:60]!r}") from exc
    if not isinstance(value, (dict, list, str, int, float, bool, type(None))):
        raise ValueError(f"not JSON: {text[:60]!r}")
    return value


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes the one at `start`, or None if it never closes."""
    pairs = {"{": "}", "[": "]"}
    stack: list[str] = []
    for i, ch, in_string in _outside_strings(text[start:]):
        if in_string:
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or ch != stack.pop():
                return None
            if not stack:
                return start + i + 1
    return None


__all__ = ["loads_lenient"]
