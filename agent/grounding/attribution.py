"""What each number of an answer is about, and the check of numbers and names against sources
(`check_answer`, `number_violations`, `name_violations`, `ungrounded_numbers`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.entities import (
    ALWAYS_ALLOWED_DATASETS,
    Mention,
    find_mentions,
    grounded,
    known_names,
    model_aliases,
)
from agent.grounding.comparisons import _comparison_violations
from agent.grounding.matching import Violation, _close, _unique, agrees
from agent.grounding.numbers import (
    _PAIR_GAP,
    BOUND_KINDS,
    SMALL_INT,
    Number,
    _find,
    normalize_text,
)
from agent.grounding.sources import Record, config_identity, source_records


@dataclass(frozen=True)
class Anchor:
    """What a number of the answer is about: a named model/dataset, or the recommended config."""

    label: str
    names: tuple[str, ...] = ()  # 'm:<normalized mention>' / 'd:<dataset>'
    pick: bool = False


_MARKERS = re.compile(r"alternative|faster|more accurate|similar|past run|previous run|instead|"
                      r"trade-?off|pareto|runner-up|compared|versus|\bvs\b|other option|"
                      r"\btop[- ]?\d|\brank", re.IGNORECASE)
_RESET = re.compile(r"^\s*(?:#|\*\*[^*]*\*\*\s*:?\s*$|.*:\s*(?:\*\*)?\s*$)")


def _anchor_of(mention: Mention) -> Anchor:
    if mention.kind == "dataset":
        return Anchor(mention.text, (f"d:{mention.key}",))
    return Anchor(mention.text, (f"m:{mention.key}",))


def _about(record: Record, anchor: Anchor, pick: tuple | None) -> bool:
    if anchor.pick:
        return record.config is not None and record.config == pick
    for name in anchor.names:
        kind, key = name.split(":", 1)
        if any(n.startswith(f"{kind}:") and (n[2:].startswith(key) if kind == "m" else key in n[2:])
               for n in record.names):
            return True
    return False


def _anchors(text: str, numbers: Sequence[Number], mentions: Sequence[Mention],
             pick: dict[str, Any] | None) -> list[Anchor | None]:
    """What each number of the answer is about (None: nothing in particular)."""
    # ImageNet is what pretrained weights were trained on: "ImageNet weights, 128 px" says nothing
    # about ImageNet's own numbers
    named = [m for m in mentions if m.kind == "model" or (
        m.kind == "dataset" and m.key not in ALWAYS_ALLOWED_DATASETS)]
    pick_model = None
    if pick:
        pick_model = re.sub(r"[^a-z0-9]", "", str(pick.get("model", "")).lower())
    head_end = len(text)
    if pick:
        marker = _MARKERS.search(text)
        head_end = marker.start() if marker else len(text)
    out: list[Anchor | None] = []
    for n in numbers:
        line_start = text.rfind("\n", 0, n.start) + 1
        before = [m for m in named if line_start <= m.start < n.start]
        anchor: Anchor | None = _anchor_of(before[-1]) if before else None
        if anchor is None:  # a "Model: X" line earlier in the same paragraph
            para = text.rfind("\n\n", 0, n.start) + 1
            for line_m in re.finditer(r"[^\n]+", text[para:line_start]):
                line = line_m.group(0)
                begin = para + line_m.start()
                if _RESET.match(line) and not any(begin <= m.start < begin + len(line)
                                                  for m in named):
                    anchor = None
                    continue
                in_line = [m for m in named if begin <= m.start < begin + len(line)]
                has_bound = any(begin <= x.start < begin + len(line) and x.kind in BOUND_KINDS
                                for x in numbers)
                # a model heading carries over ("Model: X"); a dataset named in passing does not
                # ("ImageNet-pretrained weights yes -> +9.3 points")
                if len(in_line) == 1 and in_line[0].kind == "model" and not has_bound:
                    anchor = _anchor_of(in_line[0])
        if pick and n.start < head_end:
            if anchor is None or (anchor.names and anchor.names[0].startswith("m:") and pick_model
                                  and any(a.startswith(anchor.names[0][2:])
                                          for a in model_aliases(pick_model))):
                anchor = Anchor("the recommended config", pick=True)
        out.append(anchor)
    return out


def _number_violations(text: str, sources: Sequence[str], pick: dict[str, Any] | None,
                       pick_sources: Sequence[str], attribute: bool = True
                       ) -> list[tuple[int, Violation]]:
    records = [r for s in sources for r in source_records(s)]
    pick_id = config_identity(pick) if pick else None
    current = [r for s in pick_sources for r in source_records(s)] if pick_sources else records
    numbers = _find(text)
    anchors = _anchors(text, numbers, find_mentions(text), pick if pick_id else None)
    out: list[tuple[int, Violation]] = _comparison_violations(text, numbers) if attribute else []
    for i, (n, anchor) in enumerate(zip(numbers, anchors)):
        if n.kind in ("plain", "count") and n.value == int(n.value) and abs(n.value) <= SMALL_INT:
            continue
        if n.kind == "level":  # "the 80 % interval": the level the answer prompt asks for
            continue
        if n.kind == "pm":
            base = numbers[i - 1] if i and _PAIR_GAP.fullmatch(text[numbers[i - 1].end:n.start]) \
                else None
            ok = any(_close(abs(b.value), b.tolerance + base.tolerance, abs(base.value), 0)
                     and _close(p.value, p.tolerance + n.tolerance, n.value, 0)
                     for r in records for b, p in r.pairs) if base is not None else any(
                agrees(n, x) for r in records for x in r.readings)
            if not ok:
                out.append((n.start, Violation(n.label, f"not the spread of {base.label}"
                                               if base is not None else "", n.text)))
            continue
        hits = [r for r in records if any(agrees(n, x) for x in r.readings)]
        if not hits:
            out.append((n.start, Violation(n.label, "", n.text)))
            continue
        if (not attribute or anchor is None or n.kind not in BOUND_KINDS
                or any(r.unbound for r in hits)):
            continue
        pool = current if anchor.pick else hits
        if not any(_about(r, anchor, pick_id) and any(agrees(n, x) for x in r.readings)
                   for r in pool):
            out.append((n.start, Violation(n.label, f"not {anchor.label}'s value", n.text)))
    return out


def _name_violations(text: str, sources: Sequence[str]) -> list[tuple[int, Violation]]:
    known = known_names(sources)
    return [(m.start, Violation(m.text, "named in no tool output"))
            for m in find_mentions(text) if not grounded(m, known)]


def number_violations(answer: str, sources: Sequence[str], *, pick: dict[str, Any] | None = None,
                      pick_sources: Sequence[str] = ()) -> list[Violation]:
    """The numbers of `answer` the sources do not support (see the module docstring)."""
    return _unique(_number_violations(normalize_text(answer), list(sources), pick,
                                      list(pick_sources)))


def name_violations(answer: str, sources: Sequence[str]) -> list[Violation]:
    """The models, datasets, optimizers, schemes and run ids of `answer` no source names."""
    return _unique(_name_violations(normalize_text(answer), list(sources)))


def check_answer(answer: str, sources: Sequence[str], *, pick: dict[str, Any] | None = None,
                 pick_sources: Sequence[str] = ()) -> list[Violation]:
    """Everything in `answer` the sources do not support: numbers (see the module docstring),
    names (`agent.entities`) and meaning (`agent.grounding.meaning`: comparisons of equal values,
    dataset traits attributed to models, "more accurate" / "faster" / "within the budget" against
    the predictions, a claimed recommendation that is not the pick), in order of appearance, each
    once. `pick`: the recommended config (a TrainConfig dict) when the answer presents it;
    `pick_sources`: the sources of the current recommendation (its numbers for the pick, its
    budget for "within the budget"; default all)."""
    from agent.grounding.meaning import _meaning  # lazy: meaning's rules build on this module

    text = normalize_text(answer)
    return _unique(_number_violations(text, list(sources), pick, list(pick_sources))
                   + _name_violations(text, list(sources))
                   + _meaning(text, list(sources), pick, list(pick_sources)))


def ungrounded_numbers(answer: str, sources: Iterable[str]) -> list[str]:
    """The numbers of `answer` of no matching kind and value in any source (as written, each once,
    in order); no attribution to models and no names (see `check_answer` for those)."""
    text = normalize_text(answer)
    out: list[str] = []
    for _, v in _number_violations(text, list(sources), None, (), attribute=False):
        if (v.number or v.text) not in out:
            out.append(v.number or v.text)
    return out
