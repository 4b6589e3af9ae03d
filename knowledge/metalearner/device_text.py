"""The device a budget text names: "on a T4", "one RTX 4090", "8xA100", "A100 80GB", "Colab",
"M2 Max", "CPU only", "laptop" (`knowledge.metalearner.budget` documents the rules, the multi-GPU
one included). An unknown device raises `UnknownDeviceError`, never a silent CPU."""

from __future__ import annotations

import math
import re

from knowledge.errors import ConfigError
from knowledge.metalearner.devices import DEVICES, KNOWN_TEXT

PARALLEL_EFFICIENCY = 0.9  # data-parallel efficiency per doubling of the number of cards (assumed)
MAX_DEVICES = 64


def parallel_factor(n_devices: int) -> float:
    """How many times one card's speed `n_devices` data-parallel cards give (`budget` module doc)."""
    n = max(1, int(n_devices))
    return n * PARALLEL_EFFICIENCY ** math.log2(n)


class UnknownDeviceError(ConfigError):
    """A budget names a device the catalogue does not know (`supported` False: a TPU, an AMD or
    Intel accelerator, which this project cannot run on at all)."""

    def __init__(self, message: str, named: str, supported: bool = True) -> None:
        super().__init__(message)
        self.named = named
        self.supported = supported


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
