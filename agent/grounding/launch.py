"""Claims that a model was trained or a run started, in a conversation that launched none."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from agent.grounding.matching import Violation

# "Training finished with 99.7 %", "I have launched the run": a claim that something was trained.
_TRAINING_CLAIM = re.compile(
    r"\b(?:training\s+(?:has\s+|is\s+|was\s+)?(?:finished|completed|complete|done|started|"
    r"launched|running)|(?:finished|completed)\s+(?:the\s+)?training|I(?:\s+have|'ve)?\s+"
    r"(?:trained|launched|started)\b)", re.IGNORECASE)
_CONDITIONAL = re.compile(r"\b(?:when|once|after|until|if|before|as soon as)\b[^.!?\n]{0,12}$",
                          re.IGNORECASE)


def launch_violations(answer: str, launched: bool) -> list[Violation]:
    """A claim that a model was trained or a run started, in a conversation where no training run
    was launched (`launched`: a `launch_training` call that did not fail)."""
    if launched:
        return []
    for m in _TRAINING_CLAIM.finditer(answer):
        if not _CONDITIONAL.search(answer[max(0, m.start() - 40):m.start()]):
            return [Violation(m.group(0), "no training run was launched in this conversation")]
    return []


def launched_ok(tool_outputs: Iterable[dict[str, Any]]) -> bool:
    """Whether one of the logged tool outputs ({"tool", "output"}) is a launch that did not fail."""
    for o in tool_outputs:
        if o.get("tool") != "launch_training":
            continue
        try:
            data = json.loads(str(o.get("output", "")))
        except ValueError:
            continue
        if isinstance(data, dict) and not data.get("error"):
            return True
    return False
