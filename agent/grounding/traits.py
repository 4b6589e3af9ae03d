"""Rule 2 of `agent.grounding.meaning`: a dataset trait is never attributed to a model."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from agent.entities import Mention
from agent.grounding.matching import Violation
from agent.grounding.numbers import Number
from agent.grounding.text import clauses, sentences
from agent.grounding.toolfacts import ToolFacts
from knowledge.metafeatures import FEATURE_LABELS
from knowledge.metalearner.features import FEATURE_GROUPS, GROUP_LABELS

# Trait words besides the labels of `knowledge.metafeatures.FEATURE_LABELS` and the explanation's
# trait groups: what people and small models call the same traits.
_EXTRA_TRAITS = ("entropy", "imbalance", "imbalance ratio", "class distribution",
                 "number of classes", "number of images", "number of training images",
                 "dataset size", "image size", "class size", "class sizes", "images per class")
_POSSESSIVE = re.compile(r"(?:\s+model)?\s*['’]s\b", re.IGNORECASE)
_COMPARATIVE = re.compile(r"\b(higher|lower|greater|more|less|larger|smaller|bigger|fewer|better|"
                          r"worse)\b", re.IGNORECASE)
_THAN_MODEL = re.compile(r"\s+than\s+(?:that\s+of\s+|those\s+of\s+)?(?:the\s+|a\s+|an\s+)?",
                         re.IGNORECASE)
_COPULA = re.compile(r"\s*(?:\([^)]*\)\s*)?(?:\*\*)?\s*(?:is|are|was|were|of|=|:)(?![A-Za-z])",
                     re.IGNORECASE)
_OF_MODEL = re.compile(r"\s*(?:\([^)]*\)\s*)?\s+(?:of|for)\s+(?:the\s+|a\s+|an\s+)?",
                       re.IGNORECASE)
_HAS = re.compile(r"(?:\s+model)?\s+(?:has|have|had)\s+(?:a\s+|an\s+|the\s+)?(?:[\w-]+\s+)?",
                  re.IGNORECASE)
# Words that say what a comparison between models is about (a config's outcome or setting).
_QUANTITY = re.compile(r"accura|\btime\b|resolution|\bpx\b|pixel|learning\s*rate|\blr\b|epoch|batch|"
                       r"weight\s*decay|param|size|memory|point|score|perform|speed|cost|interval|"
                       r"value|number|%|\d|faster|slower|predict", re.IGNORECASE)
# Words that may stand between a possessive and a trait ("ResNet-18's high class entropy"); a
# preposition or a quantity breaks the link ("ResNet-18's accuracy on imbalanced data").
_NEAR = re.compile(r"\s+(?:(?:high|low|higher|lower|large|small|larger|smaller|own|native|"
                   r"measured|reported|mean|average|estimated|total|overall)\s+){0,2}",
                   re.IGNORECASE)
_END = re.compile(r"\s*(?:\*\*)?\s*(?:[.!?;,)]|$)")


@functools.lru_cache(maxsize=1)
def trait_pattern() -> re.Pattern[str]:
    """The trait phrases: the meta-feature labels (without their parenthesised units), the
    explanation's trait groups ("images per class", "native image size") and `_EXTRA_TRAITS`."""
    labels = {re.sub(r"\s*\(.*?\)", "", label).strip() for label in FEATURE_LABELS.values()}
    labels |= {GROUP_LABELS[g] for g, cols in FEATURE_GROUPS.items()
               if g in GROUP_LABELS and all(c in FEATURE_LABELS for c in cols)}
    labels |= set(_EXTRA_TRAITS)
    words = sorted((r"[\s_-]+".join(map(re.escape, label.split())) for label in labels if label),
                   key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(words) + r")(?![A-Za-z])", re.IGNORECASE)


def _mention_at(mentions: Sequence[Mention], pos: int) -> Mention | None:
    return next((m for m in mentions if m.start == pos), None)


def _config_value(n: Number, model: Mention, facts: ToolFacts) -> bool:
    """Whether `n` is a setting or outcome of a config of the model `model` names."""
    for c in facts.configs:
        if not c.named_by(model.key):
            continue
        for v in (c.resolution, c.lr, c.epochs, c.acc, c.seconds):
            if v is not None and abs(v - n.value * n.scale) <= n.tolerance * n.scale + 1e-9:
                return True
    return False


def _without(text: str, begin: int, end: int, mentions: Sequence[Mention]) -> str:
    """text[begin:end] without the model names in it (their digits are no values)."""
    out, pos = [], begin
    for m in mentions:
        if begin <= m.start < end:
            out.append(text[pos:m.start])
            pos = min(m.end, end)
    out.append(text[pos:end])
    return " ".join(out)


def _trait_value(n: Number, facts: ToolFacts) -> str | None:
    for key, v in facts.traits.items():
        if abs(v - n.value) <= n.tolerance + 1e-9 * max(1.0, abs(v)):
            return key.replace("_", " ")
    return None


def trait_violations(text: str, numbers: Sequence[Number], mentions: Sequence[Mention],
                     facts: ToolFacts) -> list[tuple[int, Violation]]:
    """Rule 2 (see `agent.grounding.meaning`): `mentions` are the answer's model mentions."""
    traits = trait_pattern()
    out: list[tuple[int, Violation]] = []

    def flag(start: int, end: int, trait: str, model: Mention) -> None:
        out.append((start, Violation(" ".join(text[start:end].split()),
                                     f"{trait.lower()} is the dataset's, not {model.text}'s")))

    for s_begin, s_end in sentences(text):
        in_sentence = [m for m in mentions if s_begin <= m.start < s_end]
        if not in_sentence:
            continue
        found = list(traits.finditer(text, s_begin, s_end))
        for m in in_sentence:
            poss = _POSSESSIVE.match(text, m.end)
            if poss:  # "ResNet-18's class entropy", "the ResNet-18 model's 2.81"
                trait = next((t for t in found if t.start() >= poss.end() and _NEAR.fullmatch(
                    text, poss.end(), t.start())), None)
                if trait is not None:
                    flag(m.start, trait.end(), trait.group(0), m)
                    continue
                value = next((n for n in numbers if poss.end() < n.start <= poss.end() + 2), None)
                if value is not None and value.kind in ("plain", "count", "ratio") and not \
                        _config_value(value, m, facts):
                    trait_name = _trait_value(value, facts)
                    if trait_name:
                        flag(m.start, value.end, trait_name, m)
                        continue
            has = _HAS.match(text, m.end)  # "ResNet-18 has a class entropy of 2.81"
            if has and (t := traits.match(text, has.end())):
                flag(m.start, t.end(), t.group(0), m)
        for t in found:
            of = _OF_MODEL.match(text, t.end())  # "the class entropy of ResNet-18"
            if of and (m := _mention_at(in_sentence, of.end())):
                flag(t.start(), m.end, t.group(0), m)
        for c_begin, c_end in clauses(text, s_begin, s_end):
            for word in _COMPARATIVE.finditer(text, c_begin, c_end):
                than = _THAN_MODEL.match(text, word.end())
                model = _mention_at(in_sentence, than.end()) if than else None
                if model is None:
                    continue
                before = [t for t in found if c_begin <= t.start() < word.start()]
                trait = before[-1] if before else None
                # "the class entropy is 2.81, which is higher than ResNet-18('s)"
                if trait is not None and _COPULA.match(text, trait.end()) and not any(
                        trait.end() <= m.start < word.start() for m in in_sentence) and not \
                        _QUANTITY.search(re.sub(r"\d", "", text[trait.end():word.start()])
                                         .replace("%", "")):
                    end = _POSSESSIVE.match(text, model.end)
                    flag(trait.start(), end.end() if end else model.end, trait.group(0), model)
                    continue
                # "X, which is lower than the ResNet-18 model's." - no value compared at all
                poss = _POSSESSIVE.match(text, model.end)
                if poss and _END.match(text, poss.end()) and not _QUANTITY.search(
                        _without(text, c_begin, word.start(), in_sentence)) and not before:
                    out.append((word.start(), Violation(
                        " ".join(text[word.start():poss.end()].split()),
                        "compares with no value: name what is compared")))
    return out


__all__ = ["trait_pattern", "trait_violations"]
