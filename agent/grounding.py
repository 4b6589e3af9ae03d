"""Is every number of an answer a tool output's number of the same kind, about the same thing?

    check_answer(answer, sources, pick=config)   # [] when grounded, else the violations

A small model copies numbers but also invents, recomputes or misplaces them ("71.9 % ± 0.3" where
71.9 came from one row and 0.3 from another run's card). So a number of the answer must match a
number of the sources (tool outputs, the user's messages, the recommendation)

- of the same KIND: a percentage matches a percentage (or a fraction x 100, or accuracy points),
  a duration a duration in any unit (76 min = 1.3 h), a learning rate a learning rate in any
  notation (3e-4 = 0.0003 = 3 x 10^-4), likewise weight decay, batch size, epochs, resolution
  (px), counts; the "± 0.3" after a value must be the spread written after that same value;
  a number written without a unit or a telling word matches any source number;
- up to its written precision (72.67 in a source is "72.7" or "73" in an answer; "72.8" is not);
- ABOUT the right thing, for the kinds that belong to one config (accuracy, time, resolution and
  the hyperparameters): a number attributed to a model (named before it on its line, or on a
  "Model: X" line of its paragraph) must come from a source about that model, and with `pick`
  (the recommended config) the numbers at the head of an answer, before any alternative or past
  run is mentioned, must be the pick's own; a number found in a source about no model in
  particular (the dataset's traits, the user's budget) is accepted anywhere.

Integers up to `SMALL_INT` without a unit ("two alternatives", "top 5") are always allowed, and
digits inside names (ResNet-18, ViT-B/16, efficientnet_b4, run ids) are not numbers.
`agent.entities` checks the names themselves; `check_answer` does both.

An answer that presents a recommendation must also STATE it, `unstated_pick(answer, pick, ...)`:
"I like turtles." has no number or name to refute, so it passes `check_answer`, yet says nothing.
The pick's model, pretrained / scratch, scheme, resolution, learning rate, epochs, predicted
accuracy and (when predicted) training time must each be in the answer, with the pick's values.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.entities import (
    ALWAYS_ALLOWED_DATASETS,
    Mention,
    find_mentions,
    grounded,
    known_names,
    model_aliases,
)

SMALL_INT = 10
# The level of the prediction interval the answer prompt asks for ("80 % interval").
_INTERVAL_LEVEL = re.compile(r"\s*%?\s*(?:prediction\s+|confidence\s+)?interval", re.IGNORECASE)
INTERVAL_LEVEL = 80

# --- numbers -------------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?:(?<=\d[x×])|(?<![A-Za-z0-9_.]))"                   # not the tail of a name, id, decimal
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"  # 3,000 / 72.4 / 1 / .5
    r"(?:[eE]([-+]?\d+))?"                                  # 1e-04
    r"(k|K|px|x|×|ep|epochs?|s|sec|secs|min|mins|h|hr|hrs|d|pts?|%)?"  # attached unit
    r"(?!(?![x×]\d)[A-Za-z0-9_]|\.\d)")                     # not followed by more name characters
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_POWER = re.compile(r"(\d+(?:\.\d+)?)\s*[x×·*]\s*10\s*\^\s*([-+]?\d+)")
_BARE_POWER = re.compile(r"(?<![\d.])10\s*\^\s*([-+]?\d+)")

_UNIT_AFTER: tuple[tuple[re.Pattern[str], str, float], ...] = tuple(
    (re.compile(p, re.IGNORECASE), kind, scale) for p, kind, scale in (
        (r"\s*%", "pct", 1),
        (r"\s*(?:percentage\s+)?(?:points?|pts?|pp)\b", "points", 1),
        (r"\s*-?(?:s|sec|secs|seconds?)\b", "dur", 1),
        (r"\s*-?(?:min|mins|minutes?)\b", "dur", 60),
        (r"\s*-?(?:h|hr|hrs|hours?)\b", "dur", 3600),
        (r"\s*-?(?:d|days?)\b", "dur", 86400),
        (r"\s*(?:px|pixels?)\b", "px", 1),
        (r"\s*[x×]\s*\d", "px", 1),
        (r"\s*(?:epochs?|ep)\b", "epochs", 1),
        (r"\s*(?:[A-Za-z][A-Za-z-]*\s+){0,2}?(?:images?|pictures?|photos?|samples?|scans?|"
         r"examples?|slides?|instances?|records?|runs?|configs?|datasets?|classes|class|"
         r"categories|labels|files?|patients?|factors)\b", "count", 1),
        (r"\s*(?:x|×|times)\b(?!\s*\d)", "ratio", 1),
        (r"\s*(?:x\s*)?of\s+(?:the\s+)?native\b", "ratio", 1),  # "224 px (3.5 of native)"
    ))
# Words before a number that say what it is (the last one before it wins).
_CONTEXT = re.compile(
    r"(?P<lr>learning[\s_-]*rates?|\blrs?\b)|(?P<wd>weight[\s_-]*decay|\bwd\b)"
    r"|(?P<batch>\bbatch(?:[\s_-]*sizes?)?\b)|(?P<epochs>\bepochs?\b)"
    r"|(?P<px>resolution|image[\s_-]*size|input[\s_-]*size|\bheight\b|\bwidth\b|\bpx\b|pixels?)"
    r"|(?P<acc>accurac(?:y|ies)|\bacc\b|\bauc\b|\bf1\b)"
    r"|(?P<plain>imbalance|similarity|smoothing|ratio|entropy|\bseed\b)"
    r"|(?P<count>classes|images|instances|samples|configs|records)", re.IGNORECASE)
_PLUS_MINUS = re.compile(r"(?:±|\+/-|\+-)\s*$")
_PAIR_GAP = re.compile(r"\s*%?\s*(?:±|\+/-|\+-)\s*$")

# Which source kinds an answer number of each kind may match (the source side's "readings").
_ACCEPTS: dict[str, frozenset[str]] = {
    "pct": frozenset({"pct", "points"}),
    "acc": frozenset({"pct", "frac"}),
    "points": frozenset({"points", "pct"}),
    "dur": frozenset({"dur"}),
    "lr": frozenset({"lr"}),
    "wd": frozenset({"wd"}),
    "batch": frozenset({"batch"}),
    "epochs": frozenset({"epochs"}),
    "px": frozenset({"px"}),
    "count": frozenset({"count", "plain", "batch", "epochs", "px"}),
    "ratio": frozenset({"ratio", "plain"}),
    "pm": frozenset({"pm"}),
}
# Kinds that belong to one config, so must be about the model / pick they are attributed to.
BOUND_KINDS = frozenset({"pct", "acc", "dur", "lr", "wd", "batch", "epochs", "px"})


@dataclass(frozen=True)
class Number:
    """A number found in text: its value as written (x1000 for '3k'), how precisely it was written
    (`tolerance`: half a unit of its last digit), the text, its kind and where it is. `scale`
    converts a duration to seconds."""

    value: float
    tolerance: float
    text: str
    kind: str = "plain"
    scale: float = 1.0
    start: int = 0
    end: int = 0
    label: str = ""  # the text with its unit ("3.6 h"), for messages


def normalize_text(text: str) -> str:
    """Unicode minus, superscripts and 'x 10^-4' written as plain e-notation."""
    text = text.replace("\u2212", "-")
    text = re.sub("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+", lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), text)
    text = _POWER.sub(lambda m: f"{m.group(1)}e{m.group(2)}", text)
    return _BARE_POWER.sub(lambda m: f"1e{m.group(1)}", text)


def _is_name_part(text: str, start: int) -> bool:
    """Digits after 'Net-' or 'B/' belong to a model name, not a quantity."""
    if start >= 2 and text[start - 1] in "-/" and text[start - 2].isalpha():
        return True
    return start >= 2 and text[start - 1] == "/" and text[start - 2].isalnum()


def _table_headers(text: str) -> dict[int, list[str]]:
    """Start offset of each Markdown table row -> the header cells of its table."""
    out: dict[int, list[str]] = {}
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    header: list[str] | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            continue
        if i + 1 < len(lines) and re.fullmatch(r"\|?[\s:|-]+\|?", lines[i + 1].strip() or "x"):
            header = [c.strip() for c in stripped.strip("|").split("|")]
        elif header is not None:
            out[offsets[i]] = header
    return out


def _context_kind(words: str) -> str | None:
    last = None
    for m in _CONTEXT.finditer(words):
        last = m.lastgroup
    return last


def _classify(text: str, start: int, num_end: int, prev_end: int,
              header: list[str] | None, row_start: int) -> tuple[str, float, int]:
    """The kind of the number text[start:num_end], the duration scale, and where its unit ends."""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[max(line_start, prev_end, start - 48):start]
    if text[start:num_end] == str(INTERVAL_LEVEL) and (
            _INTERVAL_LEVEL.match(text, num_end) or re.search(r"interval\s*$", before, re.I)):
        return "level", 1.0, num_end + (1 if text[num_end:num_end + 1] == "%" else 0)
    if _PLUS_MINUS.search(before):
        return "pm", 1.0, num_end
    if re.search(r"\d\s*[x×]\s*$", text[max(0, start - 8):start]):
        return "px", 1.0, num_end
    after = text[num_end:num_end + 60]
    for pattern, kind, scale in _UNIT_AFTER:
        if unit := pattern.match(after):
            spans_unit = kind != "count" and unit.group(0).strip()[:1] not in ("x", "×")
            return kind, scale, num_end + (unit.end() if spans_unit else 0)
    kind = _context_kind(before)
    if kind is None and header is not None:
        cell = text[row_start:start].count("|") - 1
        if 0 <= cell < len(header):
            kind = _context_kind(header[cell]) or ("dur" if "time" in header[cell].lower()
                                                   else None)
            if kind == "dur":  # a time column without a unit: "3.1" alone says nothing
                kind = None
    return kind or "plain", 1.0, num_end


def _find(text: str) -> list[Number]:
    """The numbers of an already normalized text (see `find_numbers`)."""
    spans = [(m.start, m.end) for m in find_mentions(text) if m.kind in ("model", "run")]
    headers = _table_headers(text)
    found: list[Number] = []
    prev_end = 0
    for m in _NUMBER.finditer(text):
        if _is_name_part(text, m.start()) or any(s <= m.start() < e for s, e in spans):
            continue
        mantissa, exponent, unit = m.group(1), m.group(2), m.group(3)
        digits = mantissa.replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        scale = 10.0 ** int(exponent) if exponent else 1.0
        num_end = m.end(2) if exponent else m.end(1)
        if unit in ("k", "K"):
            scale *= 1000
            num_end = m.end(3)
        value = float(digits) * scale
        tolerance = 0.5 * 10.0 ** (-decimals) * scale + 1e-12 * max(1.0, abs(value))
        row_start = text.rfind("\n", 0, m.start()) + 1
        kind, unit_scale, unit_end = _classify(text, m.start(), num_end, prev_end,
                                               headers.get(row_start), row_start)
        label = text[m.start():max(m.end(), unit_end)].strip() if kind != "count" else m.group(0)
        found.append(Number(value, tolerance, m.group(0), kind, unit_scale, m.start(), m.end(),
                            label))
        prev_end = m.end()
    return found


def find_numbers(text: str) -> list[Number]:
    """The numbers written in `text` with their kinds (positions refer to `normalize_text(text)`)."""
    return _find(normalize_text(text))


# Kinds a user's message cannot vouch for: outcomes (accuracies, their spreads) come from tools.
USER_UNTRUSTED = frozenset({"pct", "acc", "points", "pm", "frac"})


def user_source(text: str) -> str:
    """A user's message as a grounding source: its traits, sizes and budgets, but not the outcomes
    it states ("the README says it reaches 99.7 %"), so a number planted in pasted text cannot back
    a claim that something was trained or will reach that accuracy."""
    text = normalize_text(text)
    out, last = [], 0
    for n in _find(text):
        if n.kind in USER_UNTRUSTED:
            out.append(text[last:n.start])
            last = max(n.end, n.start + len(n.label)) if n.label.startswith(n.text) else n.end
    out.append(text[last:])
    return "".join(out)


# --- sources: values grouped in records about one model / config ---------------------------------

@dataclass(frozen=True)
class Reading:
    """One way a source value may be read: its kind class, the value in that class, tolerance."""

    cls: str
    value: float
    tolerance: float


@dataclass
class Record:
    """Values that belong together (one JSON object, one line of text) and what they are about:
    the names (model aliases 'm:...', datasets 'd:...') and the config identity, if any."""

    readings: list[Reading] = field(default_factory=list)
    names: frozenset[str] = frozenset()
    config: tuple | None = None
    pairs: list[tuple[Number, Number]] = field(default_factory=list)

    @property
    def unbound(self) -> bool:
        return not self.names and self.config is None


def _readings(kind: str, value: float, tol: float, scale: float = 1.0) -> list[Reading]:
    value = abs(value)
    if kind == "frac" or (kind == "acc" and value <= 1):
        return [Reading("frac", value, tol), Reading("pct", 100 * value, 100 * tol)]
    if kind == "acc":
        return [Reading("pct", value, tol)]
    if kind == "dur":
        return [Reading("dur", value * scale, tol * scale), Reading("shown", value, tol)]
    return [Reading(kind, value, tol)]


def _key_kind(key: str, value: float) -> tuple[str, float]:
    """The kind of a JSON number from its key."""
    k = key.lower()
    if k.endswith("_pct") or k in ("pct", "percent", "base_value"):
        return "pct", 1.0
    if k in ("lr", "learning_rate"):
        return "lr", 1.0
    if k in ("weight_decay", "wd"):
        return "wd", 1.0
    if k in ("batch_size", "batch"):
        return "batch", 1.0
    if k in ("epochs", "epoch", "n_epochs"):
        return "epochs", 1.0
    if k in ("resolution", "resolution_px", "height", "width", "native_px", "image_size"):
        return "px", 1.0
    if "seconds" in k or k.endswith("_s") or k in ("time_s", "wall_s"):
        return "dur", 1.0
    if k.endswith("minutes"):
        return "dur", 60.0
    if k.endswith("hours"):
        return "dur", 3600.0
    if "points" in k or k == "contribution":
        return "points", 1.0
    if "acc" in k or "auc" in k or "f1" in k:
        return ("frac" if abs(value) <= 1 else "pct"), 1.0
    if k.endswith("_std"):
        return "pm", 1.0
    if k.startswith("n_") or k in ("rank", "k", "top_k", "candidates_scored", "class_counts") \
            or "class_size" in k:
        return "count", 1.0
    return "plain", 1.0


_IDENTITY = ("model", "pretrained", "scheme", "resolution", "optimizer", "lr", "weight_decay",
             "batch_size", "epochs", "augmentation")


def config_identity(config: dict[str, Any] | None) -> tuple | None:
    """A config (TrainConfig-like dict, or the answer facts' flat form) as a comparable tuple."""
    if not isinstance(config, dict):
        return None
    c = dict(config)
    if "resolution" not in c and "resolution_px" in c:
        c["resolution"] = c["resolution_px"]
    if not all(k in c for k in ("model", "resolution", "lr", "epochs")):
        return None

    def canon(v: Any) -> Any:
        return f"{float(v):.6g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return tuple((k, canon(c.get(k))) for k in _IDENTITY)


def _names(mentions: Iterable[Mention]) -> set[str]:
    out: set[str] = set()
    for m in mentions:
        if m.kind == "model":
            out.update(f"m:{a}" for a in model_aliases(m.key))
        elif m.kind == "dataset":
            out.add(f"d:{m.key}")
    return out


def _text_records(text: str, names: frozenset[str], config: tuple | None) -> list[Record]:
    """One record per line segment (split at ';'), about what it names plus `names`."""
    text = normalize_text(text)
    numbers = _find(text)
    mentions = find_mentions(text)
    records: list[Record] = []
    start = 0
    for piece in re.split(r"(\n|;)", text + "\n"):
        end = start + len(piece)
        if piece not in ("\n", ";") and piece.strip():
            inside = [n for n in numbers if start <= n.start < end]
            record = Record(names=frozenset(names | _names(m for m in mentions
                                                          if start <= m.start < end)),
                            config=config)
            for i, n in enumerate(inside):
                record.readings += _readings(n.kind, n.value, n.tolerance, n.scale)
                if n.kind == "pm" and i and _PAIR_GAP.fullmatch(text[inside[i - 1].end:n.start]):
                    record.pairs.append((inside[i - 1], n))
            if record.readings:
                records.append(record)
        start = end
    return records


def _json_records(value: Any, key: str, names: frozenset[str], config: tuple | None,
                  out: list[Record]) -> None:
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            record = Record(names=names, config=config)
            for v in value:
                kind, scale = _key_kind(key, v)
                record.readings += _readings(kind, float(v), 1e-9 * max(1.0, abs(v)), scale)
            out.append(record)
        else:
            for v in value:
                _json_records(v, key, names, config, out)
        return
    if isinstance(value, str):
        out.extend(_text_records(value, names, config))
        return
    if not isinstance(value, dict):
        return
    model = value.get("model") if isinstance(value.get("model"), str) else None
    inner = value.get("config") if isinstance(value.get("config"), dict) else None
    if model is None and inner is not None and isinstance(inner.get("model"), str):
        model = inner["model"]
    if model is not None:
        names = frozenset(_names(find_mentions(model)) or {f"m:{a}" for a in
                                                          model_aliases(re.sub(r"[^a-z0-9]", "",
                                                                               model.lower()))})
        config = config_identity(inner) or config_identity(value)
    for dkey in ("dataset", "dataset_id"):
        if isinstance(value.get(dkey), str):
            names = frozenset(names | _names(find_mentions(value[dkey])))
    record = Record(names=names, config=config)
    for k, v in value.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            kind, scale = _key_kind(k, v)
            record.readings += _readings(kind, float(v), 1e-9 * max(1.0, abs(v)), scale)
        else:
            _json_records(v, k, names, config, out)
    std = {k[:-4]: v for k, v in value.items() if k.endswith("_std") and isinstance(v, (int, float))}
    for base, spread in std.items():
        if isinstance(value.get(base), (int, float)):
            record.pairs.append((Number(float(value[base]), 1e-9, str(value[base])),
                                 Number(float(spread), 1e-9, str(spread))))
    if record.readings:
        out.append(record)


@functools.lru_cache(maxsize=512)
def source_records(source: str) -> tuple[Record, ...]:
    """The records of one source: parsed JSON when it is JSON, else text."""
    try:
        data = json.loads(source)
    except ValueError:
        data = None
    out: list[Record] = []
    if isinstance(data, (dict, list)):
        _json_records(data, "", frozenset(), None, out)
    else:
        out.extend(_text_records(source, frozenset(), None))
    return tuple(out)


def source_values(sources: Iterable[str]) -> list[float]:
    """Every number in the source texts (as read in its own kind; duplicates removed)."""
    return sorted({r.value for s in sources for rec in source_records(s) for r in rec.readings})


# --- matching ------------------------------------------------------------------------------------

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


# --- comparisons in words ------------------------------------------------------------------------

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


def _unique(found: list[tuple[int, Violation]]) -> list[Violation]:
    out: list[Violation] = []
    for _, v in sorted(found, key=lambda x: x[0]):
        if v not in out:
            out.append(v)
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


# --- the pick stated ------------------------------------------------------------------------------

NOT_STATED = "not stated"  # the reason of a Violation: a fact of the pick the answer leaves out
_SEP = r"[-_ /.]?"
_SCHEME_STATED = {  # beyond `agent.entities`' scheme names: what else says "trained end to end"
    "end_to_end": re.compile(r"(?:all|whole|entire)\s+(?:the\s+)?(?:network|model|layers|weights)"
                             r"|from[-\s]+scratch", re.IGNORECASE),
}
_SCHEME_LABELS = {"end_to_end": "end-to-end training", "linear_probing": "linear probing",
                  "knn": "kNN on frozen features"}
_NEGATED = re.compile(r"(?:\bnot|\bno|\bwithout|\bnon)[-\s]+(?:\w+[-\s]+)?$", re.IGNORECASE)
_SCRATCH = re.compile(
    r"from[-\s]+scratch|\bscratch\b|random(?:ly)?[-\s]+init\w*|(?:\bnot|\bno|\bwithout|\bnon)[-\s]+"
    r"(?:\w+[-\s]+)?pre-?trained|pre-?trained(?:\s+weights)?\s*(?:\*\*)?\s*[:=]?\s*(?:\*\*)?\s*"
    r"(?:no|false)\b", re.IGNORECASE)
# Pretrained weights, said outright or implied (fine-tuning, a linear probe or kNN on frozen
# features start from pretrained weights).
_PRETRAINED = re.compile(r"pre-?trained|imagenet|fine[-_ ]?tun\w*|linear[-_ ]prob\w*|frozen|"
                         r"k[-_ ]?nn\b", re.IGNORECASE)
# Words near a number without a unit that say which fact it is ("1e-4 learning rate", "224-pixel").
_FACT_WORDS = {
    "px": re.compile(r"resolution|pixel|\bpx\b|image[\s_-]*size|input", re.IGNORECASE),
    "lr": re.compile(r"learning[\s_-]*rate|\blr\b", re.IGNORECASE),
    "epochs": re.compile(r"epoch", re.IGNORECASE),
    "acc": re.compile(r"accura|predict|expect|reach", re.IGNORECASE),
}
_AFTER_WORDS = re.compile(r"[^,;:(\n\d]{0,24}")


def _model_stated(text: str, mentions: Sequence[Mention], model: str) -> bool:
    """Whether `text` names the model `model` (a key of knowledge.search_space.MODELS) itself,
    not only its family: its label or timm name in any case and separators ('ResNet-18',
    'resnet18', 'DINO ViT-B/16', 'vit_base_patch16_224.dino'), or a shorter name that means it
    ('MobileNetV3 Small', 'ViT-Tiny')."""
    from agent.entities import normalize, resolve_model
    from knowledge.search_space import MODELS

    spec = MODELS.get(model)
    names = {normalize(model)} | ({normalize(spec.label)} if spec else set())
    for name in filter(None, names):
        pattern = r"(?<![A-Za-z0-9])" + _SEP.join(re.escape(c) for c in name) + r"(?![A-Za-z0-9])"
        if re.search(pattern, text, re.IGNORECASE):
            return True
    family = spec.family if spec else ""
    return any(m.kind == "model" and m.key != family and resolve_model(m.text) == model
               for m in mentions)


def _number_stated(text: str, numbers: Sequence[Number], anchors: Sequence[Anchor | None],
                   of_pick: Any, kind: str, readings: Sequence[Reading]) -> bool:
    """Whether a number of `kind` (or one without a unit that words around it say is one) is one
    of `readings` and is about the pick (not attributed to another model or a dataset)."""
    accepted = {"acc": ("acc", "pct")}.get(kind, (kind,))
    for n, anchor in zip(numbers, anchors):
        if not of_pick(anchor):
            continue
        as_kind = n
        if n.kind not in accepted:
            if kind not in _FACT_WORDS:
                continue
            # the words right after it, up to a comma or the next number ("a 0.01 learning rate"
            # after "128-pixel resolution," whose word gave it its kind); a number of no kind also
            # the words before it
            after = _AFTER_WORDS.match(text, n.end).group(0)
            before = "" if n.kind not in ("plain", "count") else \
                text[max(text.rfind("\n", 0, n.start) + 1, n.start - 32):n.start]
            if not _FACT_WORDS[kind].search(before + " " + after):
                continue
            as_kind = Number(n.value, n.tolerance, n.text, kind, n.scale, n.start, n.end, n.label)
        if any(agrees(as_kind, r) for r in readings):
            return True
    return False


def _fmt(value: float) -> str:
    return f"{value:g}"


def unstated_pick(answer: str, pick: dict[str, Any], *, accuracy_pct: float | None = None,
                  seconds: float | None = None) -> list[Violation]:
    """What of the recommended config an answer that presents it leaves out, each as a Violation
    with the reason `NOT_STATED` ("learning rate 0.0001 (not stated)"): the model itself, pretrained
    or from scratch (implied by 'fine-tuned', 'linear probe', 'ImageNet weights'), the scheme,
    the resolution, the learning rate, the epochs, the predicted accuracy (`accuracy_pct`, when
    given) and the training time (`seconds`; None when the recommendation has no predicted time).

    Each fact must be stated with the pick's own value, in any of the notations `check_answer`
    accepts ("lr 1e-4" / "learning rate of 0.0001", "224 px" / "224×224", "87 %" / "0.87", "12 min"
    / "0.2 h"), up to the precision it is written to, and not attributed to another model or a
    dataset ("a faster MobileNetV3 at 224 px" states no resolution of the pick). An answer that
    states a wrong value fails here too (the right one is missing) and in `check_answer` (the
    wrong one is not the pick's)."""
    text = normalize_text(answer)
    mentions = find_mentions(text)
    numbers = _find(text)
    anchors = _anchors(text, numbers, mentions, pick)
    model = str(pick.get("model", ""))
    pick_key = re.sub(r"[^a-z0-9]", "", model.lower())

    def of_pick(anchor: Anchor | None) -> bool:
        if anchor is None or anchor.pick:
            return True
        name = anchor.names[0] if anchor.names else ""
        return name.startswith("m:") and any(a.startswith(name[2:])
                                             for a in model_aliases(pick_key))

    out: list[Violation] = []

    def missing(what: str) -> None:
        out.append(Violation(what, NOT_STATED))

    from knowledge.search_space import MODELS

    label = MODELS[model].label if model in MODELS else model
    if not _model_stated(text, mentions, model):
        missing(f"the model {label}")
    scheme = str(pick.get("scheme", ""))
    if "pretrained" in pick:
        scratch = list(_SCRATCH.finditer(text))
        if pick["pretrained"]:
            said = any(not _NEGATED.search(text[max(0, m.start() - 24):m.start()])
                       and not any(s.start() <= m.start() < s.end() for s in scratch)
                       for m in _PRETRAINED.finditer(text))
            if not said:
                missing("pretrained weights")
        elif not scratch:
            missing("training from scratch")
    if scheme:
        said = any(m.kind == "scheme" and m.key == scheme for m in mentions) or bool(
            scheme in _SCHEME_STATED and _SCHEME_STATED[scheme].search(text))
        if not said:
            missing(_SCHEME_LABELS.get(scheme, scheme))

    def exact(kind: str, value: float) -> list[Reading]:
        return [Reading(kind, float(value), 1e-9 * max(1.0, abs(float(value))))]

    if pick.get("resolution") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "px", exact("px", pick["resolution"])):
        missing(f"resolution {pick['resolution']} px")
    if pick.get("lr") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "lr", exact("lr", pick["lr"])):
        missing(f"learning rate {_fmt(pick['lr'])}")
    if pick.get("epochs") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "epochs", exact("epochs", pick["epochs"])):
        missing(f"{pick['epochs']} epochs")
    if accuracy_pct is not None:
        shown = round(accuracy_pct, 1)  # as the facts and the card show it
        readings = [Reading("pct", shown, 0.05), *exact("pct", accuracy_pct)]
        if not _number_stated(text, numbers, anchors, of_pick, "acc", readings):
            missing(f"predicted accuracy {_fmt(shown)} %")
    if seconds is not None and not (isinstance(seconds, float) and math.isnan(seconds)):
        from knowledge.metalearner.budget import format_seconds

        shown_time = format_seconds(seconds)
        readings = [Reading("dur", n.value * n.scale, n.tolerance * n.scale)
                    for n in find_numbers(shown_time) if n.kind == "dur"]
        readings += exact("dur", seconds)
        if not _number_stated(text, numbers, anchors, of_pick, "dur", readings):
            missing(f"training time {shown_time}")
    return out


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


def check_answer(answer: str, sources: Sequence[str], *, pick: dict[str, Any] | None = None,
                 pick_sources: Sequence[str] = ()) -> list[Violation]:
    """Everything in `answer` the sources do not support: numbers (see the module docstring) and
    names (`agent.entities`), in order of appearance, each once. `pick`: the recommended config
    (a TrainConfig dict) when the answer presents it; `pick_sources`: the sources of the current
    recommendation (its numbers for the pick; default all)."""
    text = normalize_text(answer)
    return _unique(_number_violations(text, list(sources), pick, list(pick_sources))
                   + _name_violations(text, list(sources)))


def ungrounded_numbers(answer: str, sources: Iterable[str]) -> list[str]:
    """The numbers of `answer` of no matching kind and value in any source (as written, each once,
    in order); no attribution to models and no names (see `check_answer` for those)."""
    text = normalize_text(answer)
    out: list[str] = []
    for _, v in _number_violations(text, list(sources), None, (), attribute=False):
        if (v.number or v.text) not in out:
            out.append(v.number or v.text)
    return out


__all__ = ["BOUND_KINDS", "NOT_STATED", "Number", "Reading", "Record", "SMALL_INT",
           "USER_UNTRUSTED", "Violation", "agrees", "launch_violations", "launched_ok",
           "check_answer", "config_identity", "find_numbers", "matches", "name_violations",
           "normalize_text", "number_violations", "source_records", "source_values",
           "ungrounded_numbers", "unstated_pick", "user_source"]
