"""An answer in the user's language: the graph writes some answers itself (the card, the planned
follow-ups, the budget question) and a small model often answers in English whatever it is told,
so a final answer in another language than the user's is translated by the LLM, and the
translation is kept only when it keeps every number and name of the original.

    translated(model, "Train **ResNet-18** at 64 px: 81.3 %.", "fr")
    # "Entraînez **ResNet-18** à 64 px : 81.3 %."  (or None: the original stands)
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from agent.entities import find_mentions
from agent.language import NAMES, detect
from agent.toolcalls import message_text

log = logging.getLogger(__name__)

MAX_CHARS = 2500  # longer answers stay as they are (a translation would be cut by the reply cap)
SYSTEM = ("You translate an answer of a machine-learning advisor into {language}. Keep the "
          "Markdown, every number exactly as written (79.8 stays 79.8, never 79,8), every model "
          "name, command line and code block unchanged. Reply with the translation only.")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CODE = re.compile(r"```.*?```|`[^`]*`", re.DOTALL)


def needs_translation(text: str, lang: str | None) -> bool:
    """Whether `text` should be translated for a user writing in `lang`."""
    # a short English line ("Recommended: densenet121, ...") may read as no language at all
    return bool(lang) and lang != "en" and lang in NAMES and detect(text) != lang


def points(original: str, translation: str) -> str:
    """`translation` with decimal commas back to points where the original wrote the number with
    a point ("78,6 %" -> "78.6 %"): the grounding check reads numbers as the tools wrote them."""
    written = set(_NUMBER.findall(original))

    def fix(m: re.Match[str]) -> str:
        dotted = f"{m.group(1)}.{m.group(2)}"
        return dotted if dotted in written else m.group(0)

    return re.sub(r"(?<![\d,.])(\d+),(\d+)(?![\d,])", fix, translation)


def _essential(number: str) -> bool:
    """A number a translation must keep: a decimal, or one above 100 (px, counts, ...); a small
    integer may be reworded ("80 % interval" -> "intervalle de prédiction")."""
    return "." in number or float(number) > 100


def keeps_facts(original: str, translation: str) -> bool:
    """Every essential number (`_essential`), model name and code span of `original` is in
    `translation` (as many times), and the translation adds no number."""
    numbers = Counter(_NUMBER.findall(_CODE.sub(" ", original)))
    got = Counter(_NUMBER.findall(_CODE.sub(" ", translation)))
    if any(n not in numbers for n in got) or any(
            got[n] < k for n, k in numbers.items() if _essential(n)):
        return False
    if any(code not in translation for code in _CODE.findall(original)):
        return False
    models = Counter(m.key for m in find_mentions(original) if m.kind == "model")
    found = Counter(m.key for m in find_mentions(translation) if m.kind == "model")
    return all(found[k] >= n for k, n in models.items())


def translated(model: Any, text: str, lang: str | None) -> str | None:
    """`text` in the user's language `lang`, or None (not needed, too long, the LLM failed, or a
    number or name changed)."""
    if not needs_translation(text, lang) or len(text) > MAX_CHARS or model is None:
        return None
    try:
        reply = model.invoke([SystemMessage(SYSTEM.format(language=NAMES[lang])),
                              HumanMessage(text)])
    except Exception as exc:  # noqa: BLE001 - the original stands
        log.warning("translation failed: %s", exc)
        return None
    out = points(text, message_text(reply).strip())
    if not out or detect(out) != lang or not keeps_facts(text, out):
        log.info("translation to %s dropped (language %s, facts kept %s)", lang, detect(out),
                 keeps_facts(text, out) if out else False)
        return None
    return out


__all__ = ["MAX_CHARS", "keeps_facts", "needs_translation", "translated"]
