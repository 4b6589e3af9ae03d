"""A compute budget: which device, and how long training may take.

    parse_budget("one hour on a T4")  -> Budget(device="t4", max_seconds=3600)
    parse_budget("CPU only")          -> Budget(device="cpu", max_seconds=None)
    parse_budget("10 minutes")        -> Budget(device="cpu", max_seconds=600)
    parse_budget("CPU, offline")      -> Budget(device="cpu", offline=True): pretrained weights only
                                         where they are already on this machine

Training times are predicted in seconds on the CPU where our own runs were timed (a 2-core
development machine, AMD EPYC class; sweeps time each run on 1-2 threads) and converted to another
device by `DEVICE_SPEEDUP`. Those factors are ROUGH PUBLIC
THROUGHPUT RATIOS (vendor FP32/mixed-precision figures and commonly reported ResNet training
throughputs, scaled to a 2-core CPU), NOT measured here; small models at 28-64 px gain less on a
GPU than the ratio says (data loading and kernel launch dominate), so GPU times are optimistic for
tiny runs. A budget that names no device means this CPU.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.errors import ConfigError

# Speed-up over the 2-core CPU the runs are timed on (time on device = CPU time / speed-up).
DEVICE_SPEEDUP: dict[str, float] = {
    "cpu": 1.0,
    "mps": 4.0,      # Apple-silicon GPU
    "t4": 15.0,
    "l4": 25.0,
    "a10": 30.0,
    "v100": 35.0,
    "a100": 70.0,
    "h100": 110.0,
}
DEVICE_LABELS: dict[str, str] = {
    "cpu": "CPU", "mps": "Apple GPU (MPS)", "t4": "NVIDIA T4", "l4": "NVIDIA L4",
    "a10": "NVIDIA A10", "v100": "NVIDIA V100", "a100": "NVIDIA A100", "h100": "NVIDIA H100",
}
# Words that name a device, in the order they are tried (longest spellings first).
_DEVICE_WORDS: list[tuple[str, str]] = [
    (r"\bh100\b", "h100"), (r"\ba100\b", "a100"), (r"\bv100\b", "v100"), (r"\ba10g?\b", "a10"),
    (r"\bl4\b", "l4"), (r"\bt4\b", "t4"), (r"\b(mps|apple|m[1-4](\s*(pro|max|ultra))?)\b", "mps"),
    (r"\b(cpu|cpus|laptop|no\s+gpu|without\s+(a\s+)?gpu)\b", "cpu"),
    (r"\b(gpu|cuda|colab)\b", "t4"),  # an unnamed GPU: assume the common, slow end (a T4)
]
_UNITS: dict[str, float] = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_WORD_NUMBERS: dict[str, float] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty-five": 45, "sixty": 60, "ninety": 90, "half an": 0.5, "half a": 0.5, "a half": 0.5,
    "a quarter of an": 0.25, "quarter of an": 0.25, "a couple of": 2, "couple of": 2,
    "a few": 3, "few": 3,
}
_WORDS = "|".join(re.escape(w) for w in sorted(_WORD_NUMBERS, key=len, reverse=True))
_UNIT = r"(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")(?![a-z])"
# "90 min", "1h30m", "1.5 hours" (digits, optional space) or "an hour", "two days" (words, a space);
# an optional "and a half" adds half of that unit.
_DURATION = re.compile(
    r"(?:(?<![0-9.])(\d+(?:[.,]\d+)?)\s*|(?<![a-z])(" + _WORDS + r")\s+)" + _UNIT
    + r"(\s+and\s+a\s+half)?",
    re.IGNORECASE,
)


# "offline", "no internet", "air-gapped": pretrained weights must already be on the machine
_OFFLINE = re.compile(r"\b(offline|no\s+internet|without\s+(an?\s+)?internet|air[-\s]?gapped)\b")


class Budget(BaseModel):
    """Where training runs and how long it may take (`None` = no time limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field("cpu", description="one of DEVICE_SPEEDUP: cpu, mps, t4, l4, a10, v100, "
                                           "a100, h100")
    max_seconds: float | None = Field(None, gt=0)
    offline: bool = Field(False, description="no internet: pretrained weights only where they are "
                                             "already on this machine (`pretrained_available`)")

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: object) -> object:
        key = str(value).strip().lower()
        if key not in DEVICE_SPEEDUP:
            raise ValueError(f"unknown device {value!r}; known: {', '.join(DEVICE_SPEEDUP)}")
        return key

    @property
    def cpu_only(self) -> bool:
        return self.device == "cpu"

    @property
    def speedup(self) -> float:
        """How many times faster than the CPU the runs were timed on (rough, see module doc)."""
        return DEVICE_SPEEDUP[self.device]

    def describe(self) -> str:
        """'1 h on NVIDIA T4', 'no time limit on CPU'."""
        where = DEVICE_LABELS[self.device]
        text = f"{format_seconds(self.max_seconds)} on {where}" if self.max_seconds else (
            f"no time limit on {where}")
        return text + (", offline" if self.offline else "")


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


def _number(text: str) -> float:
    text = text.lower()
    return _WORD_NUMBERS[text] if text in _WORD_NUMBERS else float(text.replace(",", "."))


def parse_budget(text: str) -> Budget:
    """A `Budget` from free text: a duration ("one hour", "90 min", "1h30m", "half an hour") and/or
    a device ("on a T4", "A100", "CPU only", "laptop"). No device named means the CPU.

    Raises ConfigError (one line) when the text names neither a time nor a device.
    """
    raw = " ".join(str(text).split())
    lowered = raw.lower()
    device = None
    for pattern, name in _DEVICE_WORDS:
        if re.search(pattern, lowered):
            device = name
            break
    seconds = 0.0
    found = False
    for match in _DURATION.finditer(lowered):
        value, unit = match.group(1) or match.group(2), match.group(3)
        if unit == "m" and device == "mps" and re.fullmatch(r"[1-4]", value):
            continue  # "M1" is a chip, not one minute
        seconds += (_number(value) + (0.5 if match.group(4) else 0.0)) * _UNITS[unit]
        found = True
    if not found and device is None and not _OFFLINE.search(lowered):
        raise ConfigError(
            f"cannot read a compute budget from {raw!r}: say a time (e.g. 'one hour', '10 minutes') "
            f"and/or a device ({', '.join(DEVICE_LABELS.values())}, e.g. 'one hour on a T4', "
            "'CPU only')"
        )
    if found and seconds <= 0:
        raise ConfigError(f"compute budget {raw!r}: the time limit must be more than 0 seconds")
    offline = bool(_OFFLINE.search(lowered))
    return Budget(device=device or "cpu", max_seconds=seconds if found else None, offline=offline)
