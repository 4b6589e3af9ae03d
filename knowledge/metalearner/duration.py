"""Time limits in free text: `parse_duration` ("1.5 hours", "90 min", "1h30", "an hour and a
half") and `format_seconds` (seconds as '12 min', '1.5 h').

Durations are also read in French, Spanish, German and Italian ("pendant une heure", "deux heures",
"une demi-heure", "una hora y media", "media hora", "zwei Stunden", "eine halbe Stunde", "un'ora",
"mezz'ora"); "overnight" ("toute la nuit", "toda la noche", "über Nacht", "tutta la notte") counts
as `OVERNIGHT_SECONDS` (8 hours: an assumption, which `parse_budget` notes)."""

from __future__ import annotations

import math
import re

from knowledge.errors import ConfigError

MAX_SECONDS = 30 * 86400.0  # a budget over 30 days is a typo, not a plan
OVERNIGHT_SECONDS = 8 * 3600.0  # "overnight": assumed 8 hours


def format_seconds(seconds: float | None) -> str:
    """'45 s', '12 min', '1.5 h', '2.0 d'; 'unknown' for None/NaN."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


_UNITS: dict[str, float] = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    # French, Spanish, German, Italian
    "seconde": 1, "secondes": 1, "segundo": 1, "segundos": 1, "sekunde": 1, "sekunden": 1,
    "secondo": 1, "secondi": 1, "minuto": 60, "minutos": 60, "minuten": 60, "minuti": 60,
    "heure": 3600, "heures": 3600, "hora": 3600, "horas": 3600, "stunde": 3600, "stunden": 3600,
    "ora": 3600, "ore": 3600, "jour": 86400, "jours": 86400, "día": 86400, "días": 86400,
    "dia": 86400, "dias": 86400, "tage": 86400, "tagen": 86400, "giorno": 86400, "giorni": 86400,
}
_WORD_NUMBERS: dict[str, float] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty-five": 45, "sixty": 60, "ninety": 90, "half an": 0.5, "half a": 0.5, "a half": 0.5,
    "a quarter of an": 0.25, "quarter of an": 0.25, "a couple of": 2, "couple of": 2,
    "a few": 3, "few": 3,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "dix": 10, "quinze": 15,
    "vingt": 20, "trente": 30, "quarante-cinq": 45, "una": 1, "uno": 1, "dos": 2, "tres": 3,
    "cuatro": 4, "cinco": 5, "seis": 6, "diez": 10, "quince": 15, "veinte": 20, "treinta": 30,
    "ein": 1, "eine": 1, "einer": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
    "sechs": 6, "zehn": 10, "fünfzehn": 15, "zwanzig": 20, "dreißig": 30, "un'": 1, "due": 2,
    "tre": 3, "quattro": 4, "cinque": 5, "sei": 6, "dieci": 10, "quindici": 15, "venti": 20,
    "trenta": 30, "zweieinhalb": 2.5, "dreieinhalb": 3.5, "anderthalb": 1.5, "eineinhalb": 1.5,
}
_WORDS = "|".join(re.escape(w) for w in sorted(_WORD_NUMBERS, key=len, reverse=True))
# not "H&E", nor the "h" of "an H100" ("an h" would read as an hour)
_UNIT = r"(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")(?![a-z&\d])"
# a decimal comma ("1,5 heures"), not a thousands separator ("1,500 H&E tiles")
_NUM = r"\d+(?:\.\d+|,(?!\d{3}(?!\d))\d+)?(?:e[+-]?\d+)?"
# "90 min", "1.5 hours" (digits, optional space; not inside a name like "L40s" or "M2 Max") or
# "an hour", "two days" (words, a space); an optional "and a half" adds half of that unit.
_DURATION = re.compile(
    r"(?:(?<![0-9.a-z])(" + _NUM + r")\s*|(?<![a-zà-ÿ'])(" + _WORDS + r")(?:\s+|(?<=')))" + _UNIT
    + r"(\s+(?:and\s+a\s+half|et\s+demie?|y\s+media|e\s+mezz[ao]|und\s+eine\s+halbe))?",
    re.IGNORECASE,
)
# Fixed phrases: half an hour and overnight in the five languages.
_PHRASES: tuple[tuple[re.Pattern[str], float], ...] = tuple(
    (re.compile(p, re.IGNORECASE), s) for p, s in (
        (r"(?<![a-z])(?:une\s+)?demi[-\s]heure\b|(?<![a-z])(?:una\s+)?media\s+hora\b|"
         r"(?<![a-z])(?:eine\s+)?halbe\s+stunde\b|(?<![a-z])mezz'?\s*ora\b|\bmezza\s+ora\b", 1800.0),
        (r"\bovernight\b|\btoute\s+la\s+nuit\b|\btoda\s+la\s+noche\b|\b(?:die\s+ganze|über)\s+nacht\b|"
         r"\b(?:tutta|durante)\s+la\s+notte\b|\ball\s+night\b", OVERNIGHT_SECONDS),
    ))
OVERNIGHT = _PHRASES[1][0]
# "1h30", "1h30m", "1 hour 30 minutes", "2 h and 15 min"
_HOURS_MINUTES = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*h(?:ours?|rs?)?\s*(?:and\s+)?(\d{1,2})\s*"
    r"(?:m(?:in(?:ute)?s?)?)?(?![a-z\d])", re.IGNORECASE)
_NEGATIVE = re.compile(r"(?:^|[\s(,:=])(?:-|minus\s+)(\d)", re.IGNORECASE)


def _number(text: str) -> float:
    text = " ".join(text.lower().split())
    return _WORD_NUMBERS[text] if text in _WORD_NUMBERS else float(text.replace(",", "."))


def parse_duration(text: str) -> float | None:
    """Seconds in `text` ("1.5 hours", "90 min", "1h30", "an hour and a half"; summed), None when
    it states no time. Raises ConfigError for a negative, zero or absurd (> 30 days) time."""
    raw = " ".join(str(text).split())
    lowered = raw.lower()
    if _NEGATIVE.search(lowered):
        raise ConfigError(f"compute budget {raw!r}: a time limit cannot be negative")
    seconds, found = 0.0, False
    for pattern, value in _PHRASES:
        for _ in pattern.finditer(lowered):
            seconds += value
            found = True
        lowered = pattern.sub(" ", lowered)
    for match in _HOURS_MINUTES.finditer(lowered):
        seconds += _number(match.group(1)) * 3600 + float(match.group(2)) * 60
        found = True
    rest = _HOURS_MINUTES.sub(" ", lowered)
    for match in _DURATION.finditer(rest):
        value, unit = match.group(1) or match.group(2), match.group(3)
        seconds += (_number(value) + (0.5 if match.group(4) else 0.0)) * _UNITS[unit.lower()]
        found = True
    if not found:
        return None
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ConfigError(f"compute budget {raw!r}: {format_seconds(seconds) if math.isfinite(seconds) else 'that'} "
                          f"is not a plausible time limit (at most {MAX_SECONDS / 86400:.0f} days)")
    if seconds <= 0:
        raise ConfigError(f"compute budget {raw!r}: the time limit must be more than 0 seconds")
    return seconds
