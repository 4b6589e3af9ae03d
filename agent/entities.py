"""Names in an answer — models, datasets, optimizers, training schemes, run ids — and whether the
tool outputs (or the user) named them first.

    ungrounded_names("ViT-L/16 beats DenseNet-121 on PneumoniaMNIST", sources)  # ["ViT-L/16"]

A small model asked to write up a recommendation invents names as readily as numbers ("a ViT-L
would do better", a made-up run id). Numbers are checked by `agent.grounding`; this module finds
the names: the labels and timm names of `knowledge.search_space.MODELS`, well-known architecture
families with their variant suffixes (ResNet-50, ViT-L/16, EfficientNetV2-S, ConvNeXt-T),
well-known datasets (*MNIST, CIFAR-10, ISIC, ...), optimizers, training schemes and run ids. A name
is grounded when a source mentions the same thing: a model when a source model's name, label or
family starts with it (so "ViT" and "ViT-B/16" are grounded by `vit_base_patch16_224`, "ViT-L"
is not), a dataset when a source dataset name contains it, an optimizer or scheme when a source
uses the same one ("Adam" is grounded by AdamW), a run id when a source run id starts with it.
"ImageNet" is always allowed: it is what pretrained weights were trained on.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from knowledge.search_space import MODELS

Kind = Literal["model", "dataset", "optimizer", "scheme", "run"]

# --- models --------------------------------------------------------------------------------------

# Architecture families, matched case-insensitively at a word start. A family must be followed by
# a non-letter, a plural "s", a "v2"-style version or an upper-case letter (so "vital" is no ViT).
_FAMILIES_CI = (
    "nasnetalarge", "wide_resnet", "wideresnet", "resnext", "resnetv2", "resnet", "res2net",
    "seresnet", "senet", "efficientnetv2", "efficientnet", "efficientformer", "mobilenet",
    "mobilevit", "mobileone", "densenet", "vgg", "alexnet", "xception", "pnasnet", "nasnet",
    "regnet", "mnasnet", "shufflenet", "squeezenet", "ghostnet", "googlenet", "convnext",
    "convmixer", "coatnet", "maxvit", "fastvit", "tinyvit", "levit", "samvit", "vit", "deit",
    "beit", "swin", "cait", "xcit", "poolformer", "mlp-mixer", "hrnet", "darknet", "nfnet",
    "edgenext", "lenet", "eva02", "dinov2", "yolo", "unet", "u-net", "medvit", "biomedclip",
)
# Families that are also ordinary words or acronyms: only as written here (upper case).
_FAMILIES_CS = ("Inception", "CLIP", "DINO", "EVA", "SAM", "BiT")
_AFTER_FAMILY = r"(?=$|[^a-z]|s\b|v\d)"
_VARIANT = r"(?:[-_/.]?[A-Za-z0-9]+)*"
# Variant words written after a space: "ResNet 50", "ViT Large", "ViT B/16".
_SPACED = r"(?:\s(?:Tiny|Small|Base|Large|Huge|Giant|[SBLTHG]/\d+|\d{2,3})(?![A-Za-z0-9]))?"
# A word after a separator that describes rather than names: "ViT-based", "DenseNet-121-style".
_DESCRIPTIVE = re.compile(r"[-_ ](?i:based|like|style|type|family|sized|models?|backbones?|"
                          r"pretrained|architecture)$")
_MODEL_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(f"(?i:{re.escape(f).replace(chr(92) + '-', '[-_ ]?')}){_AFTER_FAMILY}"
               for f in sorted(_FAMILIES_CI, key=len, reverse=True))
    + "|" + "|".join(rf"{f}(?![A-Za-z])" for f in _FAMILIES_CS)
    + rf"|(?i:inception)(?=[-_ ]?v\d))({_VARIANT}){_SPACED}(?![A-Za-z0-9])"
)

# --- datasets, optimizers, schemes, run ids ------------------------------------------------------

_DATASET_RE = re.compile(
    r"(?<![A-Za-z0-9])(?i:(?:[a-z]+[-_]?)?mnist(?:[-_ ]?\d+k?)?|cifar[-_ ]?1?00?|svhn|stl[-_ ]?10|"
    r"caltech[-_ ]?(?:101|256)|food[-_ ]?101|flowers[-_ ]?102|oxford[-_ ]?(?:iiit[-_ ]?)?pets?|"
    r"cub[-_ ]?200(?:[-_ ]?2011)?|chestx[-_ ]?ray[-_ ]?14|chexpert|mimic[-_ ]?cxr|"
    r"isic(?:[-_ ]?20\d\d)?|ham[-_ ]?10000|kvasir|aptos(?:[-_ ]?2019)?|eyepacs|"
    r"(?:patch)?camelyon(?:[-_ ]?1[67])?|pcam|breakhis|brats|lidc(?:[-_ ]?idri)?|coco|"
    r"pascal[-_ ]?voc|places[-_ ]?365|inaturalist|imagenet(?:[-_ ]?(?:1k|21k|22k))?)"
    r"(?![A-Za-z0-9])")
ALWAYS_ALLOWED_DATASETS = frozenset({"imagenet", "imagenet1k", "imagenet21k", "imagenet22k"})

_OPTIMIZER_RE = re.compile(
    r"(?<![A-Za-z0-9])((?i:sgd|adamw|adam|rmsprop|adagrad|adadelta|adamax|nadam|radam|adafactor|"
    r"adabelief)|LAMB|LARS|Lion|Shampoo|Sophia|Ranger)(?![A-Za-z0-9])")

_SCHEMES: tuple[tuple[str, str], ...] = (
    ("end_to_end", r"end[-_ ]to[-_ ]end|(?:full[-_ ])?fine[-_ ]?tun(?:e|ed|es|ing)"),
    ("linear_probing", r"linear[-_ ]prob(?:e|es|ed|ing)|linear[-_ ]classifier on (?:frozen|fixed)"
                       r"|frozen[-_ ](?:backbone|encoder|features)|feature[-_ ]extract(?:ion|or)"),
    ("knn", r"k[-_ ]?nn|k[-_ ]nearest[-_ ]neighbou?rs?"),
    ("lora", r"lora"),
    ("partial_finetuning", r"partial(?:ly)?[-_ ]fine[-_ ]?tun\w*|(?:layer|gradual)[-_ ]unfreez\w*"),
    ("distillation", r"(?:knowledge[-_ ])?distill(?:ation|ed)"),
    ("prompt_tuning", r"(?:visual[-_ ])?prompt[-_ ]tuning"),
)
_SCHEME_RE = re.compile(r"(?<![A-Za-z0-9])(?i:"
                        + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _SCHEMES)
                        + r")(?![A-Za-z0-9])")

# a hex id, not the digits of a number written in scientific notation ("1.7702415297158412e-05")
_RUN_RE = re.compile(r"(?<![A-Za-z0-9_.])((?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,40}(?![-+]\d)|"
                     r"run[-_](?=[A-Za-z0-9_-]*\d)[A-Za-z0-9][A-Za-z0-9_-]*)(?![A-Za-z0-9_])")


@dataclass(frozen=True)
class Mention:
    """One name found in a text: what kind of thing, as written, its normalized key, where."""

    kind: Kind
    text: str
    key: str
    start: int
    end: int


def normalize(name: str) -> str:
    """Lower-case letters and digits only: 'ViT-B/16' -> 'vitb16'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=1)
def _known_models() -> dict[str, tuple[str, ...]]:
    """Normalized label / timm name of each known model -> its aliases (name, label, the label
    without its 'DINO '-style qualifier, family)."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in MODELS.values():
        aliases = {normalize(spec.name), normalize(spec.label), normalize(spec.label.split()[-1]),
                   normalize(spec.name.split(".")[0]), spec.family}
        for key in (normalize(spec.name), normalize(spec.label)):
            out[key] = tuple(sorted(a for a in aliases if a))
    return out


@functools.lru_cache(maxsize=1)
def _label_re() -> re.Pattern[str]:
    """Multi-word labels and timm names of known models ('DINO ViT-B/16', 'NASNet-A Large')."""
    names = {s for m in MODELS.values() for s in (m.label, m.name) if " " in s or "." in s}
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(
        re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?![A-Za-z0-9])",
        re.IGNORECASE)


def model_aliases(key: str) -> tuple[str, ...]:
    """What a model mention (normalized) is also called: a known model's aliases, else itself."""
    return _known_models().get(key, (key,))


def resolve_model(name: str) -> str | None:
    """The key of `knowledge.search_space.MODELS` a model name means: its timm name or label
    ('ViT-B/16', 'densenet121'), else the first trainable model of the family or prefix it names
    ('ViT' -> vit_tiny_patch16_224, 'MobileNetV3' -> mobilenetv3_small_100); None if unknown."""
    key = _model_key(name)
    if not key:
        return None
    specs = list(MODELS.values())
    for spec in specs:
        if key in (normalize(spec.name), normalize(spec.label)):
            return spec.name
    for spec in specs:
        if key in model_aliases(normalize(spec.name)) and key != spec.family:
            return spec.name
    for spec in specs:
        if spec.trainable and (spec.family == key or any(
                a.startswith(key) for a in model_aliases(normalize(spec.name)))):
            return spec.name
    return None


def _model_key(text: str) -> str:
    key = normalize(text)
    if re.search(r"[a-zA-Z][^s]s$", text) and len(key) >= 4:  # a plural: 'ViTs', 'ResNets'
        key = key[:-1]
    return key


def find_mentions(text: str) -> list[Mention]:
    """The names written in `text`, in order (a model name's digits are not also numbers)."""
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []

    def add(kind: Kind, start: int, end: int, key: str) -> None:
        if any(start < e and s < end for s, e in taken) or not key:
            return
        taken.append((start, end))
        found.append(Mention(kind, text[start:end], key, start, end))

    for m in _label_re().finditer(text):
        add("model", m.start(1), m.end(1), normalize(m.group(1)))
    for m in _MODEL_RE.finditer(text):
        cut = _DESCRIPTIVE.search(m.group(0))
        end = m.start() + (cut.start() if cut else len(m.group(0)))
        add("model", m.start(), end, _model_key(text[m.start():end]))
    for m in _DATASET_RE.finditer(text):
        add("dataset", m.start(), m.end(), normalize(m.group(0)))
    for m in _OPTIMIZER_RE.finditer(text):
        add("optimizer", m.start(1), m.end(1), normalize(m.group(1)))
    for m in _SCHEME_RE.finditer(text):
        add("scheme", m.start(), m.end(), m.lastgroup or "")
    for m in _RUN_RE.finditer(text):
        add("run", m.start(1), m.end(1), m.group(1).lower())
    return sorted(found, key=lambda x: x.start)


# --- sources -------------------------------------------------------------------------------------

def _strings(value: object) -> Iterable[str]:
    """Every string (keys' values) inside parsed JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@dataclass(frozen=True)
class Known:
    """The names the sources mention, by kind (models as their aliases)."""

    models: frozenset[str]
    datasets: frozenset[str]
    optimizers: frozenset[str]
    schemes: frozenset[str]
    runs: frozenset[str]


@functools.lru_cache(maxsize=512)
def _known_in(source: str) -> Known:
    try:
        texts = list(_strings(json.loads(source)))
    except ValueError:
        texts = [source]
    buckets: dict[str, set[str]] = {k: set() for k in ("model", "dataset", "optimizer", "scheme",
                                                        "run")}
    for text in texts:
        for m in find_mentions(text):
            buckets[m.kind].update(model_aliases(m.key) if m.kind == "model" else (m.key,))
    return Known(*(frozenset(buckets[k]) for k in ("model", "dataset", "optimizer", "scheme",
                                                  "run")))


def known_names(sources: Iterable[str]) -> Known:
    """The union of the names every source mentions."""
    parts = [_known_in(s) for s in sources]
    return Known(*(frozenset().union(*(getattr(p, f) for p in parts)) for f in
                   ("models", "datasets", "optimizers", "schemes", "runs")))


def grounded(mention: Mention, known: Known) -> bool:
    """Whether the sources (`known`) name what `mention` names (see the module docstring)."""
    key = mention.key
    if mention.kind == "model":
        return any(a.startswith(key) for a in known.models)
    if mention.kind == "dataset":
        return key in ALWAYS_ALLOWED_DATASETS or any(key in d for d in known.datasets)
    if mention.kind == "optimizer":
        return key in known.optimizers or (key == "adam" and "adamw" in known.optimizers)
    if mention.kind == "scheme":
        return key in known.schemes
    return any(r.startswith(key) for r in known.runs)


def ungrounded_names(answer: str, sources: Iterable[str]) -> list[str]:
    """The names in `answer` that no source mentions (as written, each once, in order)."""
    known = known_names(sources)
    out: list[str] = []
    for mention in find_mentions(answer):
        if not grounded(mention, known) and mention.text not in out:
            out.append(mention.text)
    return out


__all__ = ["ALWAYS_ALLOWED_DATASETS", "Known", "Mention", "find_mentions", "grounded",
           "known_names", "model_aliases", "normalize", "resolve_model", "ungrounded_names"]
