"""Rules 3 and 4 of `agent.grounding.meaning`: "more accurate" / "faster" / "within the budget"
said of a config agree with the tools' numbers; a claimed recommendation is the pick."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.entities import Mention, model_aliases
from agent.grounding.matching import Violation
from agent.grounding.numbers import Number
from agent.grounding.sources import config_identity
from agent.grounding.text import LABEL_LINE, block_after, clauses, line_span, sentences
from agent.grounding.toolfacts import ToolConfig, ToolFacts
from knowledge.metalearner.budget import format_seconds
from knowledge.search_space import MODELS

# (pattern, what it compares, +1: the subject's value is higher)
_CLAIMS: tuple[tuple[re.Pattern[str], str, int], ...] = tuple(
    (re.compile(p, re.IGNORECASE), dim, sign) for p, dim, sign in (
        (r"\bmore\s+accurate\b|\bhigher\s+(?:predicted\s+)?accuracy\b|\bbetter\s+accuracy\b|"
         r"\bmore\s+accuracy\b|\boutperform\w*", "acc", 1),
        (r"\bless\s+accurate\b|\blower\s+(?:predicted\s+)?accuracy\b|\bworse\s+accuracy\b|"
         r"\bless\s+accuracy\b", "acc", -1),
        (r"\bslower\b|\blonger\s+(?:training\s+)?time\b|\bmore\s+(?:training\s+)?time\b|"
         r"\btakes?\s+longer\b|\btrains?\s+longer\b", "time", 1),
        (r"\bfaster\b|\bquicker\b|\bless\s+(?:training\s+)?time\b|\bshorter\s+(?:training\s+)?"
         r"time\b", "time", -1),
    ))
_BUDGET = re.compile(
    r"\b(?:within|fits?\s+(?:in(?:to|side)?|within|under)|fitting\s+(?:in(?:to)?|within)|"
    r"(?:is|are|stays?|remains?|well)\s+(?:well\s+)?(?:in|inside|under))\s+(?:the\s+|your\s+|its\s+|"
    r"a\s+|this\s+|our\s+)?(?:[\w-]+\s+){0,2}?budget\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:not|n't|no|never|nor|none|hardly|exceed\w*|beyond|outside|over)\b"
                      r"[^.,;]{0,24}$", re.IGNORECASE)
_RUNNER_UP = re.compile(r"runner[-\s]?up", re.IGNORECASE)
# What may stand between a claim and the config it is about ("faster alternative: X",
# "**More accurate** (runner-up): X", "a faster option would be X").
_LINK = re.compile(
    r"\s*(?:\*\*)?\s*(?:(?:alternative|option|choice|config(?:uration)?|model|variant|pick|"
    r"candidate|one|setup)s?\b)?\s*(?:\*\*)?\s*(?:\((?:[^()]|\([^()]*\))*\))?\s*(?:\*\*)?\s*"
    r"(?:(?:is|would\s+be|could\s+be|will\s+be|:|-|—|–|=|,)\s*)?(?:\*\*)?\s*"
    r"(?:(?:the|a|an|to\s+use|use|try)\s+)?(?:\*\*)?", re.IGNORECASE)
_THAN = re.compile(r"\s*(?:[\w-]+\s+){0,3}?(?:than|compared\s+(?:to|with)|vs\.?|versus)\s+"
                   r"(?:that\s+of\s+|the\s+|a\s+|an\s+)?", re.IGNORECASE)
# A model named as what another is compared with ("more accurate than X", "X vs Y") is no subject.
_OBJECT = re.compile(r"\b(?:than|vs\.?|versus|compared\s+(?:to|with)|over|unlike|like)\s+"
                     r"(?:that\s+of\s+|the\s+|a\s+|an\s+)?(?:\*\*)?$", re.IGNORECASE)
_OUTPERFORMS = re.compile(r"\s+(?:the\s+|a\s+)?")


def _named(mention: Mention, facts: ToolFacts) -> list[ToolConfig]:
    return [c for c in facts.configs if c.named_by(mention.key)]


def _fits(c: ToolConfig, n: Number) -> bool | None:
    """Whether config `c` has the value `n` (None: `n` says nothing about configs)."""
    v = n.value
    if n.kind == "px":
        return c.resolution is not None and abs(c.resolution - v) < 0.5
    if n.kind == "lr":
        return c.lr is not None and abs(c.lr - v) <= n.tolerance + 1e-12
    if n.kind == "epochs":
        return c.epochs is not None and abs(c.epochs - v) < 0.5
    if n.kind in ("pct", "acc"):
        pct = 100 * v if n.kind == "acc" and v <= 1 else v
        tol = (100 if n.kind == "acc" and v <= 1 else 1) * n.tolerance
        return c.acc is not None and abs(c.acc - pct) <= tol + 0.05
    if n.kind == "dur":
        return c.seconds is not None and abs(c.seconds - v * n.scale) <= (
            n.tolerance * n.scale + 0.1 * c.seconds + 1)
    return None


def _narrow(configs: list[ToolConfig], numbers: Sequence[Number]) -> list[ToolConfig]:
    """The configs the numbers written next to a name fit (a number no config fits is ignored:
    the number check reports it)."""
    for n in numbers:
        kept = [c for c in configs if _fits(c, n) is not False]
        if kept:
            configs = kept
    return configs


def _between(numbers: Sequence[Number], spans: Sequence[tuple[int, int]]) -> list[Number]:
    return [n for n in numbers if any(a <= n.start < b for a, b in spans)]


def _holds(dim: str, sign: int, c: ToolConfig, r: ToolConfig) -> bool | None:
    """Whether "c is <more/less accurate, slower/faster> than r" agrees with the predictions
    (None: a value is unknown). Rounded values (in words, one decimal) get their rounding."""
    if dim == "acc":
        if c.acc is None or r.acc is None:
            return None
        diff, tol = (c.acc - r.acc) * sign, 0.0 if c.exact_acc and r.exact_acc else 0.1
    else:
        if c.seconds is None or r.seconds is None:
            return None
        diff = (c.seconds - r.seconds) * sign
        tol = 0.0 if c.exact_seconds and r.exact_seconds else 0.1 * max(c.seconds, r.seconds)
    return diff > 0 if tol == 0 else diff > -tol


def _value(dim: str, c: ToolConfig) -> str:
    return f"{c.acc:.1f} %" if dim == "acc" else format_seconds(c.seconds)


def _subject(text: str, claim: re.Match[str], clause: tuple[int, int], models: list[Mention],
             numbers: Sequence[Number], stop: int) -> tuple[Mention, list[Number]] | None:
    """The model a claim is about and the numbers written with it: the one right after the claim
    ("a faster alternative is X"), else the last one before it in its clause ("X is faster"),
    else, for a label line ("**More accurate alternative:**"), the first one of its block."""
    begin, end = clause
    link = _LINK.match(text, claim.end())
    after = next((m for m in models if link and m.start == link.end() and m.start < stop), None)
    if after is not None:
        nxt = next((m.start for m in models if m.start > after.start), end)
        return after, _between(numbers, [(after.end, min(nxt, stop, end))])
    before = [m for m in models if begin <= m.start < claim.start()
              and not _OBJECT.search(text[max(begin, m.start - 24):m.start])]
    if before:
        m = before[-1]
        nxt = next((x.start for x in models if x.start > claim.end()), end)
        return m, _between(numbers, [(m.end, claim.start()), (claim.end(), min(nxt, stop, end))])
    line_start, line_end = line_span(text, claim.start())
    if LABEL_LINE.match(text[line_start:line_end]) and not any(
            line_start <= m.start < line_end for m in models):
        b_start, b_end = block_after(text, line_end)
        inside = [m for m in models if b_start <= m.start < b_end]
        if inside:
            nxt = inside[1].start if len(inside) > 1 else b_end
            return inside[0], _between(numbers, [(inside[0].end, nxt)])
    return None


def claim_violations(text: str, numbers: Sequence[Number], mentions: Sequence[Mention],
                     facts: ToolFacts, pick: dict[str, Any] | None
                     ) -> list[tuple[int, Violation]]:
    """Rule 3 (see `agent.grounding.meaning`): `mentions` are the answer's model mentions."""
    out: list[tuple[int, Violation]] = []
    if not facts.configs:
        return out
    models = list(mentions)
    picked = facts.find(config_identity(pick)) if pick else None
    for s_begin, s_end in sentences(text):
        for clause in clauses(text, s_begin, s_end):
            begin, end = clause
            for pattern, dim, sign in _CLAIMS:
                for claim in pattern.finditer(text, begin, end):
                    if _NEGATED.search(text[begin:claim.start()][-40:]) or (
                            dim == "acc" and _RUNNER_UP.search(text[s_begin:s_end])):
                        continue
                    than = _THAN.match(text, claim.end())
                    if claim.group(0).lower().startswith("outperform"):
                        than = _OUTPERFORMS.match(text, claim.end())
                    stop = than.start() if than else end
                    found = _subject(text, claim, clause, models, numbers, stop)
                    if found is None:
                        continue
                    subject, near = found
                    ref_mention = next((m for m in models if than and m.start == than.end()), None)
                    if ref_mention is not None:
                        nxt = next((m.start for m in models if m.start > ref_mention.start), end)
                        refs = _narrow(_named(ref_mention, facts),
                                       _between(numbers, [(ref_mention.end, min(nxt, end))]))
                        ref_label = f"{ref_mention.text}'s"
                    elif picked is not None:
                        refs, ref_label = [picked], "the recommended config's"
                    else:
                        continue
                    subjects = _narrow(_named(subject, facts), near)
                    if ref_mention is None:
                        subjects = [c for c in subjects if c.identity != picked.identity]
                    pairs = [(c, r) for c in subjects for r in refs if c.identity != r.identity]
                    verdicts = [_holds(dim, sign, c, r) for c, r in pairs]
                    if not verdicts or None in verdicts or any(verdicts):
                        continue
                    c, r = pairs[0]
                    what = "predicted accuracy" if dim == "acc" else "predicted time"
                    start = min(claim.start(), subject.start)
                    stop_at = max(claim.end(), subject.end)
                    said = " ".join(text[start:stop_at].split()) if begin <= subject.start < end \
                        else f"{claim.group(0)} {subject.text}"
                    out.append((start, Violation(
                        said,
                        f"{subject.text}'s {what} {_value(dim, c)} vs {ref_label} "
                        f"{_value(dim, r)}: the numbers say otherwise")))
            out += _budget_violations(text, clause, numbers, models, facts)
    return out


def _budget_violations(text: str, clause: tuple[int, int], numbers: Sequence[Number],
                       models: list[Mention], facts: ToolFacts) -> list[tuple[int, Violation]]:
    """"Within the budget" said of a duration or a config longer than the budget's time limit."""
    out: list[tuple[int, Violation]] = []
    budget = facts.budget_seconds
    if budget is None:
        return out
    begin, end = clause
    limit = format_seconds(budget)
    for claim in _BUDGET.finditer(text, begin, end):
        if _NEGATED.search(text[begin:claim.start()][-40:]):
            continue
        # the budget's own duration ("your 1 h budget", "budget of 1 h") is no config's time
        own = re.match(r"\s*(?:of|is|:)?\s*", text[claim.end():end])
        durations = [n for n in numbers if begin <= n.start < end and n.kind == "dur"
                     and not (claim.start() <= n.start < claim.end())
                     and not (own and n.start == claim.end() + own.end())]
        long = [n for n in durations
                if n.value * n.scale > budget + n.tolerance * n.scale + 1e-9 * budget]
        if long:
            n = long[0]
            out.append((n.start, Violation(f"{n.label} {claim.group(0)}",
                                           f"longer than the budget's {limit}")))
            continue
        if durations:
            continue
        found = _subject(text, claim, clause, models, numbers, end)
        if found is None:
            continue
        subject, near = found
        configs = [c for c in _narrow(_named(subject, facts), near) if c.seconds is not None]
        tol = lambda c: 0.0 if c.exact_seconds else 0.1 * budget  # noqa: E731
        if configs and all(c.seconds > budget + tol(c) for c in configs):
            c = min(configs, key=lambda x: x.seconds or 0.0)
            out.append((subject.start, Violation(
                f"{subject.text} {claim.group(0)}",
                f"{subject.text}'s predicted time {format_seconds(c.seconds)} is longer than the "
                f"budget's {limit}")))
    return out


# --- rule 4: a claimed recommendation is the pick ------------------------------------------------

_RECOMMEND = re.compile(
    r"\bI(?:'d|\s+would|\s+will|'ll)?\s+(?:strongly\s+)?(?:recommend|suggest|propose|pick|choose|"
    r"go\s+with|advise)(?:ing)?\b|\b(?:my|the|our)\s+(?:top\s+|final\s+)?(?:recommendation|pick|"
    r"choice|suggestion)\s*(?:\*\*)?\s*(?:is|would\s+be|:)|\brecommended\s*(?:config(?:uration)?|"
    r"model|setup|choice|settings?)?\s*(?:\*\*)?\s*(?:is|:)", re.IGNORECASE)
# A sentence about something else than the pick ("if you need speed, I'd suggest X").
_NOT_THE_PICK = re.compile(r"\b(?:if|alternative\w*|instead|faster|slower|more\s+accurate|option|"
                           r"runner[-\s]?up|similar|past|previous|otherwise|could\s+also)\b",
                           re.IGNORECASE)
_FIELD_LINE = re.compile(
    r"^\s*(?:[-*•]\s*)?(?:\*\*)?\s*(?P<field>input\s+resolution|resolution|input\s+size|"
    r"learning\s+rate|lr|epochs?|model)\s*(?:\*\*)?\s*[:=]\s*(?:\*\*)?", re.IGNORECASE)
_FIELD_KIND = {"resolution": "px", "size": "px", "rate": "lr", "lr": "lr", "epoch": "epochs",
               "epochs": "epochs"}
_DATASET_SECTION = re.compile(r"dataset|your\s+data|your\s+images|traits", re.IGNORECASE)
# "your 1024 px images", "resized from 1024 px": the dataset's size, not the config's.
_DATASET_BEFORE = re.compile(r"\b(?:your|native|original|from|dataset|images?\s+(?:are|of))\b"
                             r"[^,;]{0,16}$", re.IGNORECASE)
_DATASET_AFTER = re.compile(r"\s*(?:images?|photos?|pictures?|scans?|slides?|originals?)\b",
                            re.IGNORECASE)
_PICK_KEYS = {"px": "resolution", "lr": "lr", "epochs": "epochs"}


def _is_pick_model(mention: Mention, pick: dict[str, Any]) -> bool:
    key = re.sub(r"[^a-z0-9]", "", str(pick.get("model", "")).lower())
    return any(a.startswith(mention.key) for a in model_aliases(key))


def _wrong_value(text: str, n: Number, kind: str, pick: dict[str, Any]) -> bool:
    want = pick.get(_PICK_KEYS[kind])
    if not isinstance(want, (int, float)) or isinstance(want, bool):
        return False
    if _DATASET_BEFORE.search(text[max(0, n.start - 40):n.start]) or _DATASET_AFTER.match(
            text, n.start + len(n.label)):
        return False
    # up to the precision it is written to ("lr 8e-03" is 0.00764 as the card writes it)
    return abs(n.value - float(want)) > n.tolerance + 1e-9 * max(1.0, abs(float(want)))


def _pick_label(pick: dict[str, Any]) -> str:
    model = str(pick.get("model", ""))
    return MODELS[model].label if model in MODELS else model


def recommendation_violations(text: str, numbers: Sequence[Number], mentions: Sequence[Mention],
                              pick: dict[str, Any] | None) -> list[tuple[int, Violation]]:
    """Rule 4 (see `agent.grounding.meaning`): the model, resolution, lr and epochs a claimed
    recommendation names are the pick's."""
    if not pick:
        return []
    from agent.grounding.attribution import _MARKERS  # the head of an answer ends at its first

    out: list[tuple[int, Violation]] = []
    label = _pick_label(pick)

    def check_model(m: Mention) -> None:
        if not _is_pick_model(m, pick):
            out.append((m.start, Violation(m.text, f"not the recommended model {label}")))

    def check_number(n: Number, kind: str) -> None:
        if kind in _PICK_KEYS and _wrong_value(text, n, kind, pick):
            out.append((n.start, Violation(n.label, "not the recommended config's value",
                                           n.text)))

    for s_begin, s_end in sentences(text):
        for verb in _RECOMMEND.finditer(text, s_begin, s_end):
            if _NOT_THE_PICK.search(text[s_begin:s_end]):
                break
            models = [m for m in mentions if verb.end() <= m.start < s_end]
            stop = s_end
            if models:
                if not _is_pick_model(models[0], pick):  # another model claimed: its values too
                    check_model(models[0])
                    break
                stop = next((m.start for m in models[1:] if not _is_pick_model(m, pick)), s_end)
            for n in numbers:
                if verb.end() <= n.start < stop:
                    check_number(n, n.kind)
            break
    marker = _MARKERS.search(text)
    head = text[:marker.start() if marker else len(text)]
    section = ""
    pos = 0
    for line in head.split("\n"):
        begin, pos = pos, pos + len(line) + 1
        field = _FIELD_LINE.match(line)
        if field is None:
            if LABEL_LINE.match(line) and line.strip():
                section = line
            continue
        if _DATASET_SECTION.search(section):
            continue
        name = field.group("field").lower().split()[-1]
        if name == "model":
            first = next((m for m in mentions if begin + field.end() <= m.start < begin + len(line)),
                         None)
            if first is not None:
                check_model(first)
            continue
        value = next((n for n in numbers if begin + field.end() <= n.start < begin + len(line)),
                     None)
        if value is not None and value.kind in (_FIELD_KIND[name], "plain", "count"):
            check_number(value, _FIELD_KIND[name])
    return out


__all__ = ["claim_violations", "recommendation_violations"]
