"""A compute budget: which device (and how many), and how long training may take.

    parse_budget("one hour on a T4")      -> Budget(device="t4", max_seconds=3600)
    parse_budget("one RTX 4090 for 2 h")  -> Budget(device="rtx4090", max_seconds=7200)
    parse_budget("1 hour on 8xA100")      -> Budget(device="a100", n_devices=8, max_seconds=3600,
                                                    notes=("'A100' names no memory size: ...", ...))
    parse_budget("CPU only")              -> Budget(device="cpu", max_seconds=None)
    parse_budget("un GPU T4 pendant une heure") -> Budget(device="t4", max_seconds=3600)
    parse_budget("overnight on my laptop")      -> Budget(device="cpu", max_seconds=28800, notes=(...))
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

import os
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.errors import ConfigError
from knowledge.metalearner.device_text import (
    DEVICE_HINT,
    MAX_DEVICES,
    PARALLEL_EFFICIENCY,
    UnknownDeviceError,
    _find_device,
    _spaced,
    names_device,
    parallel_factor,
)
from knowledge.metalearner.devices import DEVICES, KNOWN_TEXT, Device, get_device
from knowledge.metalearner.duration import (
    MAX_SECONDS,
    OVERNIGHT,
    OVERNIGHT_SECONDS,
    format_seconds,
    parse_duration,
)

# Compatibility: speed-up over the 2-core timing CPU and a display label, per catalogue key.
DEVICE_SPEEDUP: dict[str, float] = {k: d.speedup for k, d in DEVICES.items()}
DEVICE_LABELS: dict[str, str] = {k: d.label for k, d in DEVICES.items()}


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
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads training uses (None: "
                                "all of this machine's cores, as the launcher trains by default)")

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
    def cpu_threads(self) -> int | None:
        """On a CPU, the threads training uses (`threads`, or this machine's cores); None on a GPU
        (its times come from the timm-benchmark model, not from the CPU time model's threads)."""
        return (self.threads or cpu_threads_default()) if self.cpu_only else None

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


# Device phrases in French, Spanish, German, Italian that the device reader knows in English
# ("un GPU T4", "une RTX 4090", "eine A100" need nothing: the names are the same).
_FOREIGN_DEVICE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), english) for p, english in (
        (r"\b(?:sans|sin|ohne|senza)\s+(?:(?:de|una?|eine?|la|le|el)\s+)?(?:gpus?|carte\s+graphique|"
         r"tarjeta\s+gr[áa]fica|grafikkarte|scheda\s+grafica)\b", "no gpu"),
        (r"\b(?:ordinateur\s+portable|mon\s+portable|(?:mi\s+)?port[áa]til|(?:il\s+mio\s+)?portatile|"
         r"(?:mein(?:em)?\s+)?laptop)\b", "laptop"),
        (r"\b(?:mon|mi|mein(?:em)?|il\s+mio)\s+(?:ordinateur|ordenador|computadora|rechner|computer|pc)\b",
         "my computer"),
        (r"\b(?:processeur|procesador|prozessor|processore)\b", "cpu"),
    ))
_FOREIGN_COUNTS = {"deux": "two", "dos": "two", "zwei": "two", "due": "two", "quatre": "four",
                   "cuatro": "four", "vier": "four", "quattro": "four", "huit": "eight",
                   "ocho": "eight", "acht": "eight", "otto": "eight"}
_FOREIGN_COUNT = re.compile(r"\b(" + "|".join(_FOREIGN_COUNTS) + r")\b(?=\s+(?:cartes?\s+|tarjetas\s+|"
                            r"schede\s+)?(?:nvidia\s+)?(?:rtx|gtx|[ahvlt]\d|gpus?))", re.IGNORECASE)

# "offline", "no internet", "air-gapped": pretrained weights must already be on the machine
_OFFLINE = re.compile(r"\b(offline|no\s+internet|without\s+(an?\s+)?internet|air[-\s]?gapped)\b")


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
    for pattern, english in _FOREIGN_DEVICE:
        lowered = pattern.sub(english, lowered)
    lowered = _FOREIGN_COUNT.sub(lambda m: _FOREIGN_COUNTS[m.group(1).lower()], lowered)
    device, n_devices, notes = _find_device(raw, _spaced(lowered))
    seconds = parse_duration(raw)
    if seconds is not None and OVERNIGHT.search(lowered):
        notes.append(f"'overnight': counted as {OVERNIGHT_SECONDS / 3600:.0f} hours (say the hours "
                     "if you have more or less)")
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


def cpu_threads_default() -> int:
    """The threads a CPU run uses unless told otherwise: all cores (`knowledge.training.device`)."""
    return max(1, os.cpu_count() or 1)
