"""A compute budget: which device (and how many), and how long training may take.

    parse_budget("one hour on a T4")      -> Budget(device="t4", max_seconds=3600)
    parse_budget("one RTX 4090 for 2 h")  -> Budget(device="rtx4090", max_seconds=7200)
    parse_budget("1 hour on 8xA100")      -> Budget(device="a100", n_devices=8, max_seconds=3600,
                                                    notes=("'A100' names no memory size: ...", ...))
    parse_budget("CPU only")              -> Budget(device="cpu", max_seconds=None)
    parse_budget("10 minutes")            -> Budget(device="cpu", max_seconds=600, notes=(...))
    parse_budget("CPU, offline")          -> Budget(device="cpu", offline=True): pretrained weights
                                             only where they are already on this machine
    parse_budget("on my Quadro K2200")    -> UnknownDeviceError (a ConfigError): never a silent CPU

Devices come from the catalogue `knowledge.metalearner.devices` (memory per card, throughput
relative to an RTX 3090: PUBLIC FIGURES, NOT MEASURED HERE). Every assumption the parser makes
("'GPU' names no model: assumed a T4", "Colab: the free tier's T4", "'laptop': this machine's
CPU", the multi-GPU rule) is recorded in `Budget.notes` so that a card can say what it assumed.

Training times are predicted in seconds on the CPU where our own runs were timed (a 2-core
development machine, AMD EPYC class; sweeps time each run on 1-2 threads) and converted to the
device by `Budget.speedup` = the device's `rel_3090 * SPEEDUP_3090` (x the multi-GPU factor).
Small models at 28-64 px gain less on a GPU than the ratio says (data loading and kernel launch
dominate), so GPU times are optimistic for tiny runs. A budget that names no device means this CPU
(and says so in `notes`).

MULTI-GPU RULE (an assumption, not measured): "8xA100", "2×A100", "two A100s" are counted as
data-parallel training on `n_devices` identical cards with `PARALLEL_EFFICIENCY` (0.9) per doubling:
speed-up = one card's x n x 0.9^log2(n) (2 cards 1.8x, 4 cards 3.24x, 8 cards 5.83x one card).
The time limit stays wall-clock; memory (`Device.memory_gb`) is per card, so a model must still
fit on one card. Our training code runs one process on one device: the rule says what a
data-parallel run of the same config would take.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.errors import ConfigError
from knowledge.metalearner.devices import DEVICES, KNOWN_TEXT, Device, get_device

PARALLEL_EFFICIENCY = 0.9  # data-parallel efficiency per doubling of the number of cards (assumed)
MAX_DEVICES = 64
MAX_SECONDS = 30 * 86400.0  # a budget over 30 days is a typo, not a plan

# Compatibility: speed-up over the 2-core timing CPU and a display label, per catalogue key.
DEVICE_SPEEDUP: dict[str, float] = {k: d.speedup for k, d in DEVICES.items()}
DEVICE_LABELS: dict[str, str] = {k: d.label for k, d in DEVICES.items()}


def parallel_factor(n_devices: int) -> float:
    """How many times one card's speed `n_devices` data-parallel cards give (see module doc)."""
    n = max(1, int(n_devices))
    return n * PARALLEL_EFFICIENCY ** math.log2(n)


class UnknownDeviceError(ConfigError):
    """A budget names a device the catalogue does not know (`supported` False: a TPU, an AMD or
    Intel accelerator, which this project cannot run on at all)."""

    def __init__(self, message: str, named: str, supported: bool = True) -> None:
        super().__init__(message)
        self.named = named
        self.supported = supported


class Budget(BaseModel):
    """Where training runs and how long it may take (`None` = no time limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field("cpu", description="a key of knowledge.metalearner.devices.DEVICES: cpu, "
                                           "t4, rtx4090, a100, a100-80gb, h100, m2max, ...")
    max_seconds: float | None = Field(None, gt=0)
    offline: bool = Field(False, description="no internet: pretrained weights only where they are "
                                             "already on this machine (`pretrained_available`)")
    n_devices: int = Field(1, ge=1, le=MAX_DEVICES, description="identical cards, data-parallel "
                                                                "(see PARALLEL_EFFICIENCY)")
    notes: tuple[str, ...] = Field((), description="every assumption made reading the budget")

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: object) -> object:
        try:
            return get_device(str(value)).key
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @property
    def device_info(self) -> Device:
        return DEVICES[self.device]

    @property
    def cpu_only(self) -> bool:
        return self.device == "cpu"

    @property
    def memory_gb(self) -> float | None:
        """Memory per card (Apple: unified memory of the typical configuration; CPU: None)."""
        return self.device_info.memory_gb

    @property
    def device_speedup(self) -> float:
        """One card: how many times faster than the CPU the runs were timed on (rough)."""
        return self.device_info.speedup

    @property
    def speedup(self) -> float:
        """All `n_devices` cards (data-parallel, see module doc) vs the timing CPU (rough)."""
        return self.device_speedup * parallel_factor(self.n_devices)

    def where(self) -> str:
        label = self.device_info.label
        return label if self.n_devices == 1 else f"{self.n_devices}× {label}"

    def describe(self, notes: bool = False) -> str:
        """'60 min on NVIDIA T4', 'no time limit on CPU'; with `notes`, the assumptions after it:
        '60 min on NVIDIA T4 (assumed: Colab: the free tier's T4 ...)'."""
        where = self.where()
        text = f"{format_seconds(self.max_seconds)} on {where}" if self.max_seconds else (
            f"no time limit on {where}")
        text += ", offline" if self.offline else ""
        if notes and self.notes:
            text += " (assumed: " + "; ".join(self.notes) + ")"
        return text


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


# --- durations -------------------------------------------------------------------------------------

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
_NUM = r"\d+(?:[.,]\d+)?(?:e[+-]?\d+)?"
# "90 min", "1.5 hours" (digits, optional space; not inside a name like "L40s" or "M2 Max") or
# "an hour", "two days" (words, a space); an optional "and a half" adds half of that unit.
_DURATION = re.compile(
    r"(?:(?<![0-9.a-z])(" + _NUM + r")\s*|(?<![a-z])(" + _WORDS + r")\s+)" + _UNIT
    + r"(\s+and\s+a\s+half)?",
    re.IGNORECASE,
)
# "1h30", "1h30m", "1 hour 30 minutes", "2 h and 15 min"
_HOURS_MINUTES = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*h(?:ours?|rs?)?\s*(?:and\s+)?(\d{1,2})\s*"
    r"(?:m(?:in(?:ute)?s?)?)?(?![a-z\d])", re.IGNORECASE)
_NEGATIVE = re.compile(r"(?:^|[\s(,:=])(?:-|minus\s+)(\d)", re.IGNORECASE)

# "offline", "no internet", "air-gapped": pretrained weights must already be on the machine
_OFFLINE = re.compile(r"\b(offline|no\s+internet|without\s+(an?\s+)?internet|air[-\s]?gapped)\b")


def _number(text: str) -> float:
    text = text.lower()
    return _WORD_NUMBERS[text] if text in _WORD_NUMBERS else float(text.replace(",", "."))


def parse_duration(text: str) -> float | None:
    """Seconds in `text` ("1.5 hours", "90 min", "1h30", "an hour and a half"; summed), None when
    it states no time. Raises ConfigError for a negative, zero or absurd (> 30 days) time."""
    raw = " ".join(str(text).split())
    lowered = raw.lower()
    if _NEGATIVE.search(lowered):
        raise ConfigError(f"compute budget {raw!r}: a time limit cannot be negative")
    seconds, found = 0.0, False
    for match in _HOURS_MINUTES.finditer(lowered):
        seconds += _number(match.group(1)) * 3600 + float(match.group(2)) * 60
        found = True
    rest = _HOURS_MINUTES.sub(" ", lowered)
    for match in _DURATION.finditer(rest):
        value, unit = match.group(1) or match.group(2), match.group(3)
        seconds += (_number(value) + (0.5 if match.group(4) else 0.0)) * _UNITS[unit]
        found = True
    if not found:
        return None
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ConfigError(f"compute budget {raw!r}: {format_seconds(seconds) if math.isfinite(seconds) else 'that'} "
                          f"is not a plausible time limit (at most {MAX_SECONDS / 86400:.0f} days)")
    if seconds <= 0:
        raise ConfigError(f"compute budget {raw!r}: the time limit must be more than 0 seconds")
    return seconds


# --- devices ---------------------------------------------------------------------------------------

_COUNT_WORDS = {"one": 1, "single": 1, "two": 2, "dual": 2, "a pair of": 2, "three": 3, "four": 4,
                "quad": 4, "six": 6, "eight": 8, "sixteen": 16}
_COUNT_BEFORE = re.compile(r"(?:^|[\s(,:])(\d{1,3}|" + "|".join(sorted(_COUNT_WORDS, key=len, reverse=True))
                           + r")\s*(?:[x×*]\s*)?(?:nvidia\s+)?(?:geforce\s+)?$")
_COUNT_AFTER = re.compile(r"^s?\s*(?:gpus?\s*)?[x×*]\s*(\d{1,3})\b")
_NOT_A_CARD = (r"(?!\s*(?:k\b|images|pictures|photos|samples|examples|scans|slides|files|classes|"
               r"px|pixels|x\s*\d|×))")

# A TPU, an AMD or an Intel accelerator: no PyTorch CUDA/MPS, so not supported at all.
_UNSUPPORTED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(tpus?(?:\s*v\d\w*)?)\b"), "Google TPUs"),
    (re.compile(r"\b((?:amd\s+)?radeon(?:\s+\w+)?|(?:amd\s+)?rx\s*\d{3,4}\s*(?:xtx|xt)?|"
                r"(?:amd\s+)?instinct(?:\s+mi\d+\w*)?|mi\d{2,3}x?|rocm|amd\s+gpus?)\b"), "AMD GPUs"),
    (re.compile(r"\b((?:intel\s+)?gaudi\s*\d?|habana|intel\s+arc(?:\s+\w+)?|arc\s+[ab]\d{3}|"
                r"intel\s+(?:gpus?|xe\w*|max)|xpu)\b"), "Intel GPUs and Gaudi accelerators"),
]
# NVIDIA (or NVIDIA-like) names outside the catalogue: ask which card it is.
_UNKNOWN_CARD = re.compile(
    r"\b(quadro(?:\s+\w+)?|tesla\s+\w+|titan(?:\s+\w+)?|jetson(?:\s+\w+)?|"
    r"(?:rtx|gtx|gt)\s*-?\s*\w+(?:\s+(?:ti|super))?|[kmpabhlv]\d{2,4}\w*|gb?\d{3}|dgx\s*\w*)\b")

_GEFORCE = re.compile(
    r"\b(?:(?:rtx|gtx|geforce)\s*-?\s*(\d{4})|(?<![\d.,])([3-5]0[6-9]0))(?:\s*-?\s*(ti|super))?s?\b"
    + _NOT_A_CARD)
_APPLE_CHIP = re.compile(r"\bm([1-9])(?:\s*-?\s*(pro|max|ultra))?\b(?![.,]?\d)")
_NAMED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:rtx\s*)?pro\s*6000\b"), "rtxpro6000"),
    (re.compile(r"\b(?:rtx\s*)?a6000s?\b"), "rtxa6000"),
    (re.compile(r"\btitan\s*v\b"), "titanv"),
    (re.compile(r"\btitan\s*rtx\b"), "titanrtx"),
    (re.compile(r"\bh200s?\b"), "h200"),
    (re.compile(r"\bh100s?\b"), "h100"),
    (re.compile(r"\ba100s?\b"), "a100"),
    (re.compile(r"\bv100s?\b"), "v100"),
    (re.compile(r"\ba10gs?\b"), "a10g"),
    (re.compile(r"\ba10s?\b"), "a10"),
    (re.compile(r"\bl40s\b"), "l40s"),
    (re.compile(r"\bl4s?\b"), "l4"),
    (re.compile(r"\bt4s?\b"), "t4"),
    (re.compile(r"\bp100s?\b"), "p100"),
]
_MEMORY = re.compile(r"\b(16|32|40|80)\s*-?\s*gb?\b")
_COLAB = re.compile(r"\bcolab\b")
_KAGGLE = re.compile(r"\bkaggle\b")
_APPLE = re.compile(r"\b(mps|apple(?:\s+silicon)?|mac|macbook(?:\s+(?:pro|air))?|imac|mac\s*mini|"
                    r"mac\s*studio|mac\s*pro)\b")
_CPU = re.compile(r"\b(cpu|cpus|cpu[-\s]only|no\s+gpus?|without\s+(?:a\s+)?gpus?|no\s+cuda)\b")
_THIS_MACHINE = re.compile(r"\b(laptop|desktop|workstation|pc|(?:my|this)\s+(?:own\s+)?"
                           r"(?:machine|computer|server|box))\b")
_ANY_GPU = re.compile(r"\b(gpus?|cuda|nvidia)\b")

# Any word that names a device, known or not (for finding budget clauses in a message).
DEVICE_HINT = re.compile(
    "|".join([_GEFORCE.pattern, _APPLE_CHIP.pattern, _COLAB.pattern, _KAGGLE.pattern,
              _APPLE.pattern, _CPU.pattern, _THIS_MACHINE.pattern, _ANY_GPU.pattern,
              _UNKNOWN_CARD.pattern, *(p.pattern for p, _ in _NAMED),
              *(p.pattern for p, _ in _UNSUPPORTED)]), re.IGNORECASE)


def _spaced(lowered: str) -> str:
    """'8xa100' -> '8x a100', 't4x2' -> 't4 x2': the count apart from the name."""
    spaced = re.sub(r"(?<![\w.])(\d{1,2})\s*[x×*]\s*(?=[a-z])", r"\1x ", lowered)
    return re.sub(r"(?<=[a-z]\d)[x×*](?=\d{1,3}\b)|(?<=[a-z]\d\d\d)[x×*](?=\d{1,3}\b)", " x",
                  spaced)


def names_device(text: str) -> bool:
    """Whether `text` has a word that names a device, known or not (`DEVICE_HINT`)."""
    return bool(DEVICE_HINT.search(_spaced(" ".join(str(text).split()).lower())))


def _unknown(raw: str, named: str) -> UnknownDeviceError:
    return UnknownDeviceError(f"compute budget {raw!r}: unknown device {named!r}; known devices: "
                              f"{KNOWN_TEXT}. Name one of them (or the closest)", named)


def _count(lowered: str, start: int, end: int) -> int:
    before = _COUNT_BEFORE.search(lowered[:start])
    after = _COUNT_AFTER.match(lowered[end:])
    if after:
        return int(after.group(1))
    if before:
        word = before.group(1)
        return _COUNT_WORDS[word] if word in _COUNT_WORDS else int(word)
    return 1


def _find_device(raw: str, lowered: str) -> tuple[str | None, int, list[str]]:
    """(catalogue key or None, number of cards, notes); raises UnknownDeviceError."""
    for pattern, what in _UNSUPPORTED:
        if m := pattern.search(lowered):
            raise UnknownDeviceError(
                f"compute budget {raw!r}: {m.group(1)!r} is not supported ({what} are not: training "
                f"here runs on NVIDIA CUDA GPUs, Apple GPUs (MPS) or a CPU); known devices: "
                f"{KNOWN_TEXT}", m.group(1), supported=False)
    notes: list[str] = []
    key, span = None, None
    if m := _GEFORCE.search(lowered):
        number, variant = m.group(1) or m.group(2), m.group(3) or ""
        base = ("gtx" if number.startswith("10") else "rtx") + number
        if base + variant in DEVICES:
            key = base + variant
        elif base in DEVICES:
            key = base
            notes.append(f"no figures for the {variant.title()} variant of the {DEVICES[base].label}: "
                         "used the plain card's figures")
        else:
            raise _unknown(raw, m.group(0).strip())
        span = m.span()
    else:
        for pattern, name in _NAMED:
            if m := pattern.search(lowered):
                key, span = name, m.span()
                break
    if key in ("a100", "v100", "h100"):
        memory = _MEMORY.search(lowered)
        size = memory.group(1) if memory else None
        if key == "a100" and size == "80":
            key = "a100-80gb"
        elif key == "v100" and size == "32":
            key = "v100-32gb"
        elif key in ("a100", "v100") and size is None:
            notes.append(f"'{key.upper()}' names no memory size: assumed the "
                         f"{DEVICES[key].memory_gb:.0f} GB card")
        if key == "h100" and "pcie" in lowered:
            notes.append("H100 PCIe: the SXM card's figures were used (the PCIe card is ~30 % slower)")
    if key is None and (m := _APPLE_CHIP.search(lowered)):
        chip = f"m{m.group(1)}{m.group(2) or ''}"
        if chip not in DEVICES:
            raise _unknown(raw, m.group(0))
        key, span = chip, m.span()
    if key is None and _COLAB.search(lowered):
        key = "t4"
        notes.append("Colab: assumed the free tier's T4 (Colab Pro may give an L4 or A100: name it)")
    if key is None and _KAGGLE.search(lowered):
        key = "p100"
        notes.append("Kaggle: assumed its single P100 16 GB (its 'T4 x2' option needs "
                     "multi-GPU code; say 'T4x2' to count it as two T4s)")
    if key is None and (m := _UNKNOWN_CARD.search(lowered)):
        raise _unknown(raw, m.group(0).strip())
    if key is None and _APPLE.search(lowered):
        key = "m1"
        notes.append("an Apple GPU without a chip name: assumed an M1, the slow end")
    if key is None and _CPU.search(lowered):
        key = "cpu"
    if key is None and (m := _THIS_MACHINE.search(lowered)):
        key = "cpu"
        notes.append(f"'{m.group(1)}': assumed this machine's CPU (name its GPU if it has one)")
    if key is None and (m := _ANY_GPU.search(lowered)):
        key, span = "t4", m.span()
        notes.append(f"'{m.group(1)}' names no model: assumed a T4, the slow end")
    if key is None:
        return None, 1, notes
    device = DEVICES[key]
    if device.kind == "apple":
        notes.append(f"{device.label.split(' (')[0]}: unified memory shared with the CPU; assumed "
                     f"the typical {device.memory_gb:.0f} GB configuration")
    n = _count(lowered, *span) if span and device.kind == "gpu" else 1
    if not 1 <= n <= MAX_DEVICES:
        raise ConfigError(f"compute budget {raw!r}: {n} cards is not a plausible number "
                          f"(1 to {MAX_DEVICES})")
    if n > 1:
        notes.append(f"{n} cards counted as data-parallel training at {PARALLEL_EFFICIENCY:.0%} "
                     f"efficiency per doubling ({parallel_factor(n):.2f}× one card); memory is "
                     "per card")
    return key, n, notes


def parse_budget(text: str) -> Budget:
    """A `Budget` from free text: a duration ("one hour", "90 min", "1h30", "half an hour") and/or
    a device ("on a T4", "one RTX 4090", "8xA100", "A100 80GB", "Colab", "M2 Max", "CPU only",
    "laptop"). No device named means this CPU (noted). Every assumption goes to `notes`.

    Raises ConfigError (one line) when the text names neither a time nor a device, a time that is
    negative, zero or absurd, and `UnknownDeviceError` (a ConfigError) for a device the catalogue
    does not know or a TPU / AMD / Intel accelerator: an unknown device is never a silent CPU.
    """
    raw = " ".join(str(text).split())
    lowered = raw.lower()
    device, n_devices, notes = _find_device(raw, _spaced(lowered))
    seconds = parse_duration(raw)
    offline = bool(_OFFLINE.search(lowered))
    if seconds is None and device is None and not offline:
        raise ConfigError(
            f"cannot read a compute budget from {raw!r}: say a time (e.g. 'one hour', '10 minutes') "
            f"and/or a device (e.g. 'one hour on a T4', '2 hours on an RTX 4090', 'CPU only'; "
            f"known: {KNOWN_TEXT})"
        )
    if device is None:
        device = "cpu"
        notes.append("no device named: assumed this machine's CPU")
    return Budget(device=device, max_seconds=seconds, offline=offline, n_devices=n_devices,
                  notes=tuple(notes))


__all__ = [
    "DEVICE_HINT",
    "DEVICE_LABELS",
    "DEVICE_SPEEDUP",
    "MAX_SECONDS",
    "PARALLEL_EFFICIENCY",
    "Budget",
    "UnknownDeviceError",
    "format_seconds",
    "names_device",
    "parallel_factor",
    "parse_budget",
    "parse_duration",
]
