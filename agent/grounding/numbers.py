"""Numbers written in text, with their kinds: `find_numbers` (the tokenizer) and `user_source`
(a user's message as a grounding source, without the outcomes it states)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.entities import find_mentions

SMALL_INT = 10
# The level of the prediction interval the answer prompt asks for ("80 % interval").
_INTERVAL_LEVEL = re.compile(r"\s*%?\s*(?:prediction\s+|confidence\s+)?interval", re.IGNORECASE)
# "intervalle à 80 %", "intervalo del 80 %", "intervallo dell'80 %" (the level after the word)
_INTERVAL_BEFORE = re.compile(r"interval\w*(?:\s+(?:à|de|del|do|da|di|von))?\s*(?:dell')?\s*$",
                              re.IGNORECASE)
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
        (r"\s*(?:percentage\s+)?(?:points?|pts?|pp|punkte?|puntos?|punti|pontos?)\b", "points", 1),
        (r"\s*-?(?:s|sec|secs|seconds?)\b", "dur", 1),
        (r"\s*-?(?:min|mins|minutes?|minuten|minutos|minuti)\b", "dur", 60),
        (r"\s*-?(?:h|hr|hrs|hours?|heures?|stunden?|horas?|ore|ora)\b", "dur", 3600),
        (r"\s*-?(?:d|days?|jours?|tage?|d[ií]as?|giorni)\b", "dur", 86400),
        (r"\s*(?:px|pixels?)\b", "px", 1),
        (r"\s*[x×]\s*\d", "px", 1),
        (r"\s*(?:epochs?|ep|epochen|[ée]poques?|[ée]pocas?|epoche)\b", "epochs", 1),
        (r"\s*(?:[A-Za-z][A-Za-z-]*\s+){0,2}?(?:images?|pictures?|photos?|samples?|scans?|"
         r"examples?|slides?|instances?|records?|runs?|configs?|datasets?|classes|class|"
         r"categories|labels|files?|patients?|factors)\b", "count", 1),
        (r"\s*(?:x|×|times)\b(?!\s*\d)", "ratio", 1),
        (r"\s*(?:x\s*)?of\s+(?:the\s+)?native\b", "ratio", 1),  # "224 px (3.5 of native)"
        (r"\s*(?:x\s*)?(?:der|von|vom|de\s+la|du|de|della|del|do|da)\s+(?:\w+\s+)?nati(?:v|f)\w*",
         "ratio", 1),  # "(0.44 der nativen)", "(0.44 de la taille native)"
    ))
# Words before a number that say what it is (the last one before it wins).
_CONTEXT = re.compile(
    r"(?P<lr>learning[\s_-]*rates?|\blrs?\b|lernrate|taux\s+d'apprentissage|"
    r"tasa\s+de\s+aprendizaje|tasso\s+di\s+apprendimento)|(?P<wd>weight[\s_-]*decay|\bwd\b)"
    r"|(?P<batch>\bbatch(?:[\s_-]*(?:sizes?|gr[öo](?:ß|ss)e))?\b|taille\s+de\s+lot|"
    r"tama[ñn]o\s+de\s+lote)|(?P<epochs>\bepochs?\b|\bepochen\b|[ée]poques?|[ée]pocas?)"
    r"|(?P<px>resolution|image[\s_-]*size|input[\s_-]*size|\bheight\b|\bwidth\b|\bpx\b|pixels?)"
    r"|(?P<acc>accurac(?:y|ies)|\bacc\b|\bauc\b|\bf1\b|genauigkeit|pr[ée]cisi[oó]n|"
    r"accuratezza)"
    r"|(?P<plain>imbalance|similarity|smoothing|ratio|entropy|\bseed\b)"
    r"|(?P<count>classes|images|instances|samples|configs|records|bilder|klassen?|im[aá]genes|"
    r"clases?|immagini|classi|imagens)", re.IGNORECASE)
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
            _INTERVAL_LEVEL.match(text, num_end) or _INTERVAL_BEFORE.search(before)):
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


_LIST_MARKER = re.compile(r"(?m)^[ \t>]*(?:[*-][ \t]+)?(\d{1,2})[.)](?=[ \t])")


def _find(text: str) -> list[Number]:
    """The numbers of an already normalized text (see `find_numbers`)."""
    spans = [(m.start, m.end) for m in find_mentions(text) if m.kind in ("model", "run")]
    markers = {m.start(1) for m in _LIST_MARKER.finditer(text)}  # "1. ..." numbers a list item
    headers = _table_headers(text)
    found: list[Number] = []
    prev_end = 0
    for m in _NUMBER.finditer(text):
        if _is_name_part(text, m.start()) or m.start() in markers \
                or any(s <= m.start() < e for s, e in spans):
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
