"""What a user message says about the dataset and the constraints: LLM extraction + regex fallback.

    found = extract_turn(model, "about 3,000 chest X-rays, 3 classes, CPU only", pending="n_classes")
    found.traits    # {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}
    found.budget    # "CPU only"

The LLM fills `TurnExtraction` (structured output; invalid output is retried with the validation
errors fed back). Each number it extracts must be written in the message *as that trait* or follow
from what is written (`agent.traitsupport.supported`: class counts as a multiset, an imbalance
only from a ratio, largest/smallest or the class sizes), so an invented or misplaced value is
dropped; the regexes (`agent.traitparse`: totals, ranges, vague amounts, class sizes, ratios, class
names, in five languages) fill in what it missed, and carry everything when the LLM fails.
`agent.traitcheck.merge_traits` then merges the traits into the state and asks when they disagree.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent import prompts
from agent.structured import _error_text, invoke_structured  # noqa: F401 - re-exported
from agent.traitparse import (
    CLASSES,
    INSTANCES,
    NUM,
    SCALED_RANGE,
    SIZE_1D,
    SIZE_2D,
    read_counts,
    scaled_range,
    vague_count,
)
from agent.traitsupport import modality_reading, supported
from agent.traitwords import (
    COLOUR as _COLOUR,
)
from agent.traitwords import (
    ENGLISH_WORD_INTS,
    VAGUE,
    WORD_INTS,
    amount_at,
    foreign_modality,
    to_int,
)
from agent.traitwords import (
    GRAY as _GRAY,
)
from knowledge.errors import ConfigError
from knowledge.metafeatures import (
    MODALITIES,
    MODALITY_ALIASES,
    MetaFeatures,
    normalize_modality,
    reject_bool,
)
from knowledge.metalearner.budget import UnknownDeviceError, names_device, parse_budget
from knowledge.metalearner.devices import KNOWN_TEXT
from tools.schemas import derive_traits_model

log = logging.getLogger(__name__)

REQUIRED_TRAITS: tuple[str, ...] = ("n_instances", "n_classes", "modality")
_WORD_INTS = ENGLISH_WORD_INTS


# MetaFeatures traits a user message is not asked for: class statistics a user rarely knows, and
# the task type (it follows from n_classes). Every other MetaFeatures trait is extracted.
NOT_EXTRACTED: tuple[str, ...] = ("class_entropy", "class_size_mean", "class_size_std",
                                  "class_size_min", "class_size_max", "task")
# How the extraction prompt's schema words each trait (`{vocab}`: the allowed words); a trait not
# named here is described by MetaFeatures itself (`tools.schemas.trait_fields`).
EXTRACT_DESCRIPTIONS: dict[str, str] = {
    "n_instances": "number of training images",
    "n_classes": "number of classes",
    "imbalance_ratio": "largest class / smallest",
    "height": "image height in pixels",
    "width": "image width in pixels",
    "channels": "1 grayscale, 3 colour",
    "modality": "imaging modality: {vocab}",
}
# What a message states besides the dataset's traits (not MetaFeatures).
_CONSTRAINTS: dict[str, Any] = {
    "budget": (str | None, Field(None, description="compute budget in the user's words, e.g. "
                                                   "'one hour on a T4', 'CPU only'")),
    "preference": (Literal["accuracy", "speed", "balanced"] | None, Field(
        None, description="what the user favours: accuracy, speed, or balanced")),
    "dataset_path": (str | None, Field(None, description="a dataset file/folder path the user gave")),
}


class _TurnBase(BaseModel):
    """What the latest user message states. Every field is null unless the message says it."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    @field_validator("modality", check_fields=False)
    @classmethod
    def _modality(cls, value: str | None) -> str | None:
        return normalize_modality(value) if value is not None else None

    @field_validator("class_counts", mode="before", check_fields=False)
    @classmethod
    def _counts_not_bool(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            for v in value:
                reject_bool(v)
        return value

    def traits(self) -> dict[str, Any]:
        """The dataset traits stated (None left out)."""
        return {k: v for k in type(self).model_fields
                if k not in _CONSTRAINTS and (v := getattr(self, k)) is not None}


# The MetaFeatures traits (less NOT_EXTRACTED), class_counts, then budget, preference, dataset_path.
def make_turn_extraction(model: type[BaseModel] = MetaFeatures) -> type[BaseModel]:
    """The `TurnExtraction` schema derived from `model` (`tools.schemas.derive_traits_model`)."""
    return derive_traits_model(
        "TurnExtraction", _TurnBase, EXTRACT_DESCRIPTIONS, exclude=NOT_EXTRACTED, model=model,
        extra={"class_counts": (list[int] | None, Field(None, description="images per class"))},
        tail=_CONSTRAINTS)


TurnExtraction = make_turn_extraction()


# --- regex fallback ------------------------------------------------------------------------------

_INSTANCES, _CLASSES, _SIZE_2D, _SIZE_1D = INSTANCES, CLASSES, SIZE_2D, SIZE_1D
_PATH = re.compile(r"(?:(?<=\s)|^|(?<=[\"'`(]))("
                   r"(?:~|\.{1,2})?/[^\s\"'`,;()]+"                 # /abs, ./rel, ~/home
                   r"|[^\s\"'`,;()/]+(?:/[^\s\"'`,;()]+)*\.npz(?:\?[^\s\"'`,;()]*)?"  # x/y.npz
                   r"|medmnist:[a-z0-9_]+(?:\?[^\s\"'`,;()]*)?)", re.IGNORECASE)
_TIME_HINT = re.compile(
    r"\b(\d+(?:[.,]\d+)?\s*(?:h|hrs?|hours?|min|mins|minutes?|days?|heures?|horas?|stunden?|"
    r"minuten|minutos|minuti|ore|jours?|d[ií]as?|giorni)|(?:an?|one|two|three|four|five|six|ten|"
    r"twenty|thirty|half an?|une?|deux|trois|quatre|demi|una?|dos|tres|cuatro|media|eine?|zwei|"
    r"drei|vier|halbe|anderthalb|eineinhalb|due|tre|quattro|mezz)[\s'-]*(?:hours?|minutes?|days?|"
    r"heures?|horas?|stunden?|minuten|minutos|minuti|ora|ore|jours?|d[ií]as?|giorni))\b|"
    r"\bovernight\b|\btoute\s+la\s+nuit\b|\btoda\s+la\s+noche\b|\b(?:die\s+ganze|über)\s+nacht\b|"
    r"\btutta\s+la\s+notte\b",
    re.IGNORECASE)


def _budget_hint(clause: str) -> bool:
    """Whether `clause` may state a budget: a time, or a device word (known or not; see
    knowledge.metalearner.budget.names_device)."""
    return bool(_TIME_HINT.search(clause) or names_device(clause) or _FOREIGN_DEVICE.search(clause))


_FOREIGN_DEVICE = re.compile(r"port[áa]til|portatile|ordinateur|ordenador|rechner|processeur|"
                             r"procesador|prozessor|processore", re.IGNORECASE)
_SPEED = re.compile(r"\b(faster|quicker|speed|fast|quick|less time|cheaper)\b", re.IGNORECASE)
_ACCURACY = re.compile(r"\b(more accurate|most accurate|best accuracy|higher accuracy|"
                       r"accuracy matters|maximi[sz]e accuracy)\b", re.IGNORECASE)
# Aliases too ambiguous in free text ("let us", "rgb", "photo") are left to the LLM.
_MODALITY_WORDS = sorted([*(m for m in MODALITIES if m not in ("other", "natural")),
                          *(a for a in MODALITY_ALIASES if a not in ("us", "mr", "rgb", "photo",
                                                                      "cell", "skin"))],
                         key=len, reverse=True)
_MODALITY = re.compile(r"\b(" + "|".join(re.escape(w).replace(r"\-", r"[- ]?")
                                          for w in _MODALITY_WORDS) + r")s?\b", re.IGNORECASE)


def _budget_clauses(text: str) -> list[str]:
    """The clauses of `text` that may state a budget; dataset paths are taken out first (an
    upload folder such as `.../b40e9c86/x.npz` is not a device)."""
    text = _PATH.sub(" ", text)
    clauses = [c.strip() for c in re.split(r"\.(?!\d)|[;!?\n…]|,(?!\d)", text) if c.strip()]
    return [c for c in clauses if _budget_hint(c) and not _SIZE_1D.search(c)]


def unknown_device(text: str) -> Any:
    """The `UnknownDeviceError` of the first clause of `text` that names a device the catalogue
    does not know ("2 hours on my Quadro K2200", "a TPU v4"), or None: the advisor asks which
    device it is instead of assuming a CPU."""
    for clause in _budget_clauses(text):
        try:
            parse_budget(clause)
        except UnknownDeviceError as exc:
            exc.clause = clause
            return exc
        except ConfigError:  # other unreadable clauses are skipped (as in budget_phrase)
            pass
    return None


def device_question(error: Any) -> str:
    """What the advisor asks when a budget names an unknown (or unsupported) device."""
    if not getattr(error, "supported", True):
        head = (f"I cannot plan for {error.named!r}: training here runs on NVIDIA GPUs, Apple GPUs "
                "or a CPU, not on TPUs, AMD or Intel accelerators.")
    else:
        head = f"Which GPU is that? I don't know {error.named!r}."
    return (f"{head} I know: {KNOWN_TEXT}. Which one will you train on (the closest is fine), "
            "e.g. '2 hours on an RTX 4090', or 'CPU only'?")


def budget_phrase(text: str) -> str | None:
    """The clauses of `text` that state a compute budget ('one hour on a T4', 'CPU only'), or None."""
    picked = []
    for clause in _budget_clauses(text):
        try:
            parse_budget(clause)
        except ConfigError:
            continue
        picked.append(clause)
    return ", ".join(picked) or None


_BARE = re.compile(r"\s*(?:it'?s\s+|about\s+|around\s+|roughly\s+)?(\d{1,3}(?:[,.]\d{3})+|\d+"
                   r"(?:\s*k)?|" + "|".join(WORD_INTS) + r")\s*[.!]?\s*", re.IGNORECASE)


def bare_answer(text: str, pending: str) -> int | None:
    """The answer `text` gives to the question for `pending` without naming the trait: "12",
    "about 1,500", "a few thousand", "2,000-3,000", "Hard to say, maybe 3k?" (its one number)."""
    if bare := _BARE.fullmatch(text):
        return to_int(bare.group(1))
    if pending == "n_instances":
        text = SCALED_RANGE.sub(scaled_range, text)  # "3 or 4 thousand" -> "3000-4000"
        if (m := VAGUE.search(text)) is not None:
            return amount_at(m.group(0)).value  # type: ignore[union-attr]
        ranges = [a for m in re.finditer(r"(?<![\w.,])" + NUM + r"\s*(?:-|–|to|à|a|bis)\s*" + NUM,
                                         text, re.IGNORECASE) if (a := amount_at(m.group(0)))]
        if ranges and ranges[0].is_range:
            return ranges[0].value
    words = [w for w in re.findall(r"[^\W\d_]+", text.lower()) if w in WORD_INTS]
    if pending == "n_classes" and len(words) == 1:
        return WORD_INTS[words[0]]  # "Eight cell types, give or take"
    budget = budget_phrase(text) or ""
    numbers = [v for _, _, role, v in read_counts(text.replace(budget, " ") if budget else text).roles
               if role == "other"]
    return int(numbers[0]) if len(numbers) == 1 else None


def regex_extract(text: str, pending: str | None = None) -> TurnExtraction:
    """What the regexes find in `text`; a bare number answers the `pending` question."""
    found: dict[str, Any] = read_counts(text, pending).traits()
    if m := _SIZE_2D.search(text):
        found["width"], found["height"] = int(m.group(1)), int(m.group(2))
    elif m := _SIZE_1D.search(text):
        found["height"] = int(m.group(1))
    if _GRAY.search(text):
        found["channels"] = 1
    elif _COLOUR.search(text):
        found["channels"] = 3
    if m := _MODALITY.search(text):
        try:
            found["modality"] = normalize_modality(m.group(1))
        except ValueError:
            pass
    elif modality := foreign_modality(text):
        found["modality"] = modality
    if pending in ("n_instances", "n_classes", "height") and pending not in found:
        found[pending] = bare_answer(text, pending)
    if pending == "modality" and "modality" not in found:
        try:
            found["modality"] = normalize_modality(text.strip().rstrip(".!"))
        except ValueError:
            pass
    found = {k: v for k, v in found.items() if v is not None}  # a number too long to read
    found["budget"] = budget_phrase(text)
    if _ACCURACY.search(text):
        found["preference"] = "accuracy"
    elif _SPEED.search(text):
        found["preference"] = "speed"
    if m := _PATH.search(text):
        found["dataset_path"] = m.group(1).rstrip(".:;!?")  # "…/scans.npz: chest x-rays"
    try:
        return TurnExtraction.model_validate(found)
    except ValidationError as exc:  # e.g. "1 class": drop the bad fields, keep the rest
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        return TurnExtraction.model_validate({k: v for k, v in found.items() if k not in bad})


# --- when the regexes are enough ------------------------------------------------------------------

_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_WORD_INTS) + r"|hundred|thousand|million|dozens?|"
                          r"half|one|a few|several)\b", re.IGNORECASE)
_IMBALANCE = re.compile(r"imbalanc|balanced|skew|largest|smallest|majority|minority|rare|"
                        r"times (?:more|fewer|as)|ratio|per class", re.IGNORECASE)
_CORRECTION = re.compile(r"\b(?:not|no|instead|rather|actually|wrong|correction|except)\b|n't", re.I)


def regex_covers(text: str, found: TurnExtraction, known: dict[str, Any] | None = None,
                 pending: str | None = None) -> bool:
    """Whether an LLM extraction could add nothing to the regexes' `found`: every number of the
    message is inside something the regexes read (a count, classes, a size, a budget clause, a
    path), the question asked was answered, the modality is known and not being corrected ("not
    X-ray but CT"). Saves an LLM call on most turns ("Why not a ViT?", a plain message)."""
    rest = text
    for pattern in (_PATH, _INSTANCES, _CLASSES, _SIZE_2D, _SIZE_1D):
        rest = pattern.sub(" ", rest)
    if found.budget:
        for clause in found.budget.split(", "):
            rest = rest.replace(clause, " ")
    if pending and getattr(found, pending, None) is not None:  # a bare answer: "about 2,000"
        rest = re.sub(r"\d[\d,.]*\s*k?\b", " ", rest)
    if re.search(r"\d", rest) or _NUMBER_WORD.search(rest) or _IMBALANCE.search(text):
        return False
    if pending and getattr(found, pending, None) is None:
        return False
    modality_known = found.modality is not None or (known or {}).get("modality") is not None
    if not modality_known and len(text.split()) >= 3:
        return False  # "skin lesion photos": the LLM may recognise a modality the regex does not
    words = {normalize_modality(m.group(1)) for m in _MODALITY.finditer(text)
             if _safe_modality(m.group(1))}
    return not (len(words) > 1 or (words and _CORRECTION.search(text)))


def _safe_modality(word: str) -> bool:
    try:
        return bool(normalize_modality(word))
    except ValueError:
        return False


# --- combining -----------------------------------------------------------------------------------

_PREFERENCE_WORDS = re.compile(r"\b(?:accura\w*|fast\w*|quick\w*|speed|balanced?|trade-?off|"
                               r"pr[ée]cis\w*|rapid\w*|schnell\w*|genau\w*)\b", re.IGNORECASE)


def merge(llm: TurnExtraction | None, regex: TurnExtraction, text: str) -> TurnExtraction:
    """The LLM's extraction where the message supports it, else the regexes'."""
    if llm is None:
        return regex
    data = regex.model_dump()
    counts = read_counts(text)
    proposed = llm.model_dump()
    if proposed.get("class_counts") and not supported("class_counts", proposed["class_counts"],
                                                      text, counts):
        log.info("dropping extracted class_counts=%r: not the sizes written", proposed["class_counts"])
        proposed["class_counts"] = None
    for key, value in proposed.items():
        if value is None:
            continue
        if key == "imbalance_ratio" and (listed := proposed.get("class_counts")) and min(listed) > 0 \
                and abs(max(listed) / min(listed) - value) <= max(0.5, 0.05 * value):
            pass  # follows from the class sizes written
        elif key in TurnExtraction.model_fields and key not in ("budget", "preference",
                                                                "dataset_path", "modality"):
            if not supported(key, value, text, counts):
                log.info("dropping extracted %s=%r: not stated in the message", key, value)
                continue
        if key == "dataset_path" and (value not in text or re.search(r"\s", str(value).strip())):
            continue  # a path or a named source ("digits") written in the message, not a sentence
        if key == "n_instances" and regex.n_instances is not None and VAGUE.search(text):
            continue  # "a few thousand" reads as ~3,000 (its range kept), not the LLM's guess
        if key in ("height", "width") and regex.height is not None:
            continue  # "600x450" is width x height: the regex read the order the user wrote
        if key == "modality" and (value := modality_reading(value, regex.modality, text)) is None:
            continue
        if key == "preference" and (regex.preference is not None
                                    or not _PREFERENCE_WORDS.search(text)):
            continue  # the parser's reading wins; one the message does not state would re-rank
        if key == "budget":
            # the user's words win; an LLM budget is kept only when readable and every word of it
            # is in the message (a 1.5B model copied the prompt's "one hour on a T4")
            words = re.findall(r"[a-z0-9]+", str(value).lower())
            if regex.budget is not None or not all(w in text.lower() for w in words):
                continue
            if not budget_phrase(value):
                continue
        data[key] = value
    return TurnExtraction.model_validate(data)


def extract_turn(model: BaseChatModel | None, text: str, *, pending: str | None = None,
                 known: dict[str, Any] | None = None, retries: int = 2,
                 always_llm: bool = True) -> TurnExtraction:
    """The traits and constraints `text` (one user message) states; see the module docstring.
    With `always_llm=False` the LLM is asked only when the regexes may have missed something
    (`regex_covers`)."""
    regex = regex_extract(text, pending)
    if regex.n_instances is None and "n_instances" not in (known or {}) and (n := vague_count(text)):
        regex = regex.model_copy(update={"n_instances": n})  # "3 or 4 thousand", whatever was asked
    if model is None or (not always_llm and regex_covers(text, regex, known, pending)):
        return regex
    messages = [SystemMessage(prompts.EXTRACT_SYSTEM),
                HumanMessage(prompts.extract_user(text, pending, json.dumps(known or {})))]
    try:
        llm = invoke_structured(model, TurnExtraction, messages, retries=retries)
    except Exception as exc:  # noqa: BLE001 - any LLM failure: the regexes carry the turn
        log.warning("LLM extraction failed (%s); using the regex extraction", _error_text(exc))
        llm = None
    return merge(llm, regex, text)


__all__ = ["NOT_EXTRACTED", "REQUIRED_TRAITS", "TurnExtraction", "budget_phrase", "device_question",
           "extract_turn", "invoke_structured", "make_turn_extraction", "merge", "regex_covers",
           "regex_extract", "supported", "unknown_device"]
