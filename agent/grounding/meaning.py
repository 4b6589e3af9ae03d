"""Whether an answer's sentences MEAN what the tool outputs say, not only quote their numbers.

    meaning_violations(answer, sources, pick=config, pick_sources=...)   # [] when they do

A small model writes nonsense with real numbers: "The class entropy is 2.81, which is higher than
the ResNet-18 model's 2.81"; "a more accurate alternative" that is predicted less accurate than the
pick; a 4.3 h config "within the budget" of one hour; "I recommend ResNet-18 at 1024 px" after
the user said the images are 1024 px when the ranked config is 64 px. Every number there is a
tool's (or the user's) number, so `check_answer`'s number check passes them. The rules here:

1. a comparison contrasts values that differ: "higher/lower/more/less/better/worse ... than" or
   "vs" between two equal numbers is a violation (`equal_comparisons`);
2. a dataset trait (the `knowledge.metafeatures.FEATURE_LABELS` / explanation group labels: class
   entropy, class imbalance, images per class, classes, training images, native image size,
   modality, ...) is never a model's: "ResNet-18's class entropy", "the imbalance of ResNet-18",
   "ResNet-18 has a class entropy", "the class entropy is 2.81, higher than ResNet-18's" are
   violations, and so is a comparison with a model that names no value ("X, which is lower than
   the ResNet-18 model's") (`trait_violations`, in `agent.grounding.traits`);
3. "more accurate" / "less accurate" / "faster" / "slower" said of a named config must agree with
   the tools' predicted accuracy / time of that config against the config it is compared with (the
   model after "than", else the pick); "within the budget" said of a config or a duration longer
   than the budget's time limit is a violation (`claim_violations`, in `agent.grounding.claims`);
4. a claimed recommendation is the pick: "I recommend / suggest / pick X at N px, lr L, E epochs",
   "Recommended: ...", and the "Resolution: / Learning rate: / Epochs: / Model:" lines at the
   head of a recommendation name the pick's model, resolution, lr and epochs — also where the
   wrong value is the user's own ("1024 px") or a dataset trait, which the number check accepts
   (`recommendation_violations`, in `agent.grounding.claims`).

5. a setting is called by its own name: a percentage after "learning rate" / "taux
   d'apprentissage" / "Lernrate" is an accuracy given the wrong name, and "pretrained or from
   scratch" / "préentraîné ou non" leaves the weights unsaid (`mislabelled`).

A config named in a sentence is every ranked config of that model the tools gave, narrowed by the
numbers written next to it (its px, lr, epochs, accuracy, time); a claim fails only when no such
config makes it true, so an ambiguous name never fails a good answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.entities import find_mentions
from agent.grounding.claims import claim_violations, recommendation_violations
from agent.grounding.matching import Violation, _unique
from agent.grounding.numbers import Number, _find, normalize_text
from agent.grounding.text import sentences
from agent.grounding.toolfacts import tool_facts
from agent.grounding.traits import trait_violations

_COMPARATIVE = re.compile(r"\b(higher|lower|greater|more|less|larger|smaller|bigger|fewer|better|"
                          r"worse|faster|slower|quicker|longer|shorter)\b", re.IGNORECASE)
_THAN = re.compile(r"\b(?:than|compared\s+(?:to|with)|versus)\b|\bvs\b\.?", re.IGNORECASE)
_VS = re.compile(r"\b(?:vs\b\.?|versus\b|compared\s+(?:to|with)\b)", re.IGNORECASE)
_TIME_WORDS = frozenset({"faster", "slower", "quicker", "longer", "shorter"})
_ACC_WORDS = frozenset({"better", "worse"})
_PCT = frozenset({"pct", "acc", "points"})
# The noun after a comparative says what is compared ("higher accuracy", "more epochs").
_NOUN_KINDS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), frozenset(k)) for p, k in (
        (r"accura|\bacc\b|predict", _PCT),
        (r"\btime\b|training|minutes?|hours?|seconds?", {"dur"}),
        (r"resolution|\bpx\b|pixels?|input", {"px"}),
        (r"learning\s*rate|\blr\b", {"lr"}),
        (r"epochs?", {"epochs"}),
        (r"batch", {"batch"}),
        (r"entropy|imbalance|classes|images|instances|samples", {"plain", "count", "ratio"}),
    ))


def _kind_class(n: Number) -> str:
    return "pct" if n.kind in ("pct", "acc") else n.kind


def _canonical(n: Number) -> float:
    if n.kind == "dur":
        return abs(n.value) * n.scale
    if n.kind == "acc" and abs(n.value) <= 1:
        return 100 * abs(n.value)
    return abs(n.value)


def _equal(a: Number, b: Number) -> bool:
    x, y = _canonical(a), _canonical(b)
    return _kind_class(a) == _kind_class(b) and abs(x - y) <= 1e-9 * max(1.0, abs(x))


def _compared_kinds(text: str, word: re.Match[str], than_start: int) -> frozenset[str] | None:
    """The kinds of number a comparative compares (None: any): its word ("faster": times), else
    the noun right after it ("higher accuracy", "more epochs")."""
    w = word.group(1).lower()
    if w in _TIME_WORDS:
        return frozenset({"dur"})
    if w in _ACC_WORDS:
        return _PCT
    after = text[word.end():min(than_start, word.end() + 32)]
    head = " ".join(after.split()[:3])
    for pattern, kinds in _NOUN_KINDS:
        if pattern.search(head):
            return kinds
    return None


def equal_comparisons(text: str, numbers: Sequence[Number]) -> list[tuple[int, Violation]]:
    """Rule 1: a comparison in words, or "A vs B", between two equal numbers (a normalized text and
    its numbers, `agent.grounding.numbers._find`)."""
    out: list[tuple[int, Violation]] = []
    for begin, end in sentences(text):
        inside = [n for n in numbers if begin <= n.start < end]
        if len(inside) < 2:
            continue
        flagged: set[int] = set()
        for word in _COMPARATIVE.finditer(text, begin, end):
            than = _THAN.search(text, word.end(), end)
            if than is None:
                continue
            kinds = _compared_kinds(text, word, than.start())

            def fits(n: Number, kinds: frozenset[str] | None = kinds) -> bool:
                return kinds is None or n.kind in kinds

            between = [n for n in inside if word.end() <= n.start < than.start() and fits(n)]
            first = between[0] if between else next(
                (n for n in reversed(inside) if n.start < word.start() and fits(n)), None)
            if first is None:
                continue
            second = next((n for n in inside if n.start >= than.end()
                           and _kind_class(n) == _kind_class(first)), None)
            if second is not None and _equal(first, second) and first.start not in flagged:
                flagged.add(first.start)
                out.append((word.start(), Violation(
                    f"{first.label} {word.group(1)} than {second.label}",
                    "compares two equal values")))
        for a, b in zip(inside, inside[1:]):
            between = text[a.end:b.start]
            if (len(between) <= 48 and _VS.search(between) and not _COMPARATIVE.search(between)
                    and _equal(a, b) and a.start not in flagged):
                flagged.add(a.start)
                out.append((a.start, Violation(f"{a.label} vs {b.label}",
                                               "compares two equal values")))
    return out


_LR_BEFORE = re.compile(r"(?:learning[\s_-]*rate|\blr\b|lernrate|taux\s+d'apprentissage|"
                        r"tasa\s+de\s+aprendizaje|tasso\s+di\s+apprendimento|taxa\s+de\s+"
                        r"aprendizagem)\s*(?:of|de|von|di|:|=)?\s*$", re.IGNORECASE)
_EITHER_WEIGHTS = re.compile(
    r"\bpr[ée]-?\w{0,4}train\w*\s+(?:or|ou|o|oder)\s+(?:not|non|no|nicht|from\s+scratch|depuis\s+"
    r"z[ée]ro|desde\s+cero|da\s+zero|ohne\s+vortraining)\b|\bfrom\s+scratch\s+or\s+pre-?trained\b|"
    r"\bpre-?trained\s+or\s+not\b", re.IGNORECASE)


def mislabelled(text: str, numbers: Sequence[Number]) -> list[tuple[int, Violation]]:
    """Rule 5: an accuracy called a learning rate, the weights left as either."""
    out = [(n.start, Violation(f"{m.group(0).strip()} {n.label}", "an accuracy called a learning rate",
                               n.text))
           for n in numbers
           if n.kind == "pct" and (m := _LR_BEFORE.search(text[max(0, n.start - 40):n.start]))]
    out += [(m.start(), Violation(m.group(0), "pretrained or not: say which"))
            for m in _EITHER_WEIGHTS.finditer(text)]
    return out


def _meaning(text: str, sources: Sequence[str], pick: dict[str, Any] | None,
             pick_sources: Sequence[str]) -> list[tuple[int, Violation]]:
    numbers = _find(text)
    mentions = [m for m in find_mentions(text) if m.kind == "model"]
    facts = tool_facts(tuple(sources), tuple(pick_sources))
    return [*equal_comparisons(text, numbers),
            *trait_violations(text, numbers, mentions, facts),
            *claim_violations(text, numbers, mentions, facts, pick),
            *recommendation_violations(text, numbers, mentions, pick),
            *mislabelled(text, numbers)]


def meaning_violations(answer: str, sources: Sequence[str], *,
                       pick: dict[str, Any] | None = None,
                       pick_sources: Sequence[str] = ()) -> list[Violation]:
    """The sentences of `answer` whose meaning the sources contradict (rules 1-4 of the module
    docstring), in order, each once. `pick`: the recommended config (a TrainConfig dict) when
    the answer presents it (rules 3 without "than" and 4 need it); `pick_sources`: the current
    recommendation's sources (its budget is the one "within the budget" is checked against)."""
    return _unique(_meaning(normalize_text(answer), list(sources), pick, list(pick_sources)))


__all__ = ["equal_comparisons", "meaning_violations", "mislabelled"]
