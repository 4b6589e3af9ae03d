"""What a user message says about the dataset and the constraints: LLM extraction + regex fallback.

    found = extract_turn(model, "about 3,000 chest X-rays, 3 classes, CPU only", pending="n_classes")
    found.traits    # {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}
    found.budget    # "CPU only"

The LLM fills `TurnExtraction` (structured output; invalid output is retried with the validation
errors fed back). Each number it extracts must be written in the message (or be implied by a
word like "binary"), so an invented value is dropped; the regexes fill in what it missed, and
carry everything when the LLM fails. A later statement overwrites an earlier one, which is how
corrections ("actually it's 5 classes") work.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.grounding import find_numbers
from agent.structured import _error_text, invoke_structured  # noqa: F401 - re-exported
from knowledge.metafeatures import (
    MODALITIES,
    MODALITY_ALIASES,
    MetaFeatures,
    normalize_modality,
    reject_bool,
)
from tools.schemas import derive_traits_model

log = logging.getLogger(__name__)

REQUIRED_TRAITS: tuple[str, ...] = ("n_instances", "n_classes", "modality")
_WORD_INTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
              "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20}


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

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?\s*k?)"
_APPROX = r"(?:about|around|roughly|approximately|approx\.?|~|some|nearly|almost|over)?\s*"
_INSTANCES = re.compile(_APPROX + r"(?<![x×\d,.])" + _NUM + r"\s+(?:[a-z-]+\s+){0,3}?"
                        r"(?:images|pictures|photos|scans|slides|samples|examples|radiographs|"
                        r"x-?rays|crops|patches|frames)\b", re.IGNORECASE)
_CLASSES = re.compile(r"\b(\d+|" + "|".join(_WORD_INTS) + r")\s+(?:[a-z-]+\s+)?"
                      r"(?:classes|categories|labels|class|diagnoses|conditions)\b", re.IGNORECASE)
_SIZE_2D = re.compile(r"\b(\d{2,5})\s*[x×]\s*(\d{2,5})\b", re.IGNORECASE)
_SIZE_1D = re.compile(r"\b(\d{2,5})\s*(?:px|pixels?)\b", re.IGNORECASE)
_PATH = re.compile(r"(?:(?<=\s)|^|(?<=[\"'`(]))("
                   r"(?:~|\.{1,2})?/[^\s\"'`,;()]+"                 # /abs, ./rel, ~/home
                   r"|[^\s\"'`,;()/]+(?:/[^\s\"'`,;()]+)*\.npz(?:\?[^\s\"'`,;()]*)?"  # x/y.npz
                   r"|medmnist:[a-z0-9_]+(?:\?[^\s\"'`,;()]*)?)", re.IGNORECASE)
_TIME_HINT = re.compile(
    r"\b(\d+(?:\.\d+)?\s*(?:h|hrs?|hours?|min|mins|minutes?|days?)|"
    r"(?:an?|one|two|three|four|five|six|ten|twenty|thirty|half an?)\s+(?:hours?|minutes?|days?))\b",
    re.IGNORECASE)


def _budget_hint(clause: str) -> bool:
    """Whether `clause` may state a budget: a time, or a device word (known or not; see
    knowledge.metalearner.budget.names_device)."""
    from knowledge.metalearner.budget import names_device

    return bool(_TIME_HINT.search(clause) or names_device(clause))
_SPEED = re.compile(r"\b(faster|quicker|speed|fast|quick|less time|cheaper)\b", re.IGNORECASE)
_ACCURACY = re.compile(r"\b(more accurate|most accurate|best accuracy|higher accuracy|"
                       r"accuracy matters|maximi[sz]e accuracy)\b", re.IGNORECASE)
_GRAY = re.compile(r"\b(gr[ae]y\s*-?scale|gr[ae]y|monochrome|single[- ]channel)\b", re.IGNORECASE)
_COLOUR = re.compile(r"\b(rgb|colou?r(ed)?)\b", re.IGNORECASE)
# Aliases too ambiguous in free text ("let us", "rgb", "photo") are left to the LLM.
_MODALITY_WORDS = sorted([*(m for m in MODALITIES if m not in ("other", "natural")),
                          *(a for a in MODALITY_ALIASES if a not in ("us", "mr", "rgb", "photo",
                                                                      "cell", "skin"))],
                         key=len, reverse=True)
_MODALITY = re.compile(r"\b(" + "|".join(re.escape(w).replace(r"\-", r"[- ]?")
                                          for w in _MODALITY_WORDS) + r")s?\b", re.IGNORECASE)


def _to_int(text: str) -> int | None:
    """'3,000' -> 3000, '1.5k' -> 1500, 'three' -> 3; None for a number no int can hold (a run of
    thousands of digits: Python refuses to read it, a float of it is infinite)."""
    text = text.strip().lower()
    if text in _WORD_INTS:
        return _WORD_INTS[text]
    mult = 1000 if text.endswith("k") else 1
    digits = text.rstrip("k").strip().replace(",", "")
    try:
        if "." not in digits:
            return int(digits) * mult  # exact, however large (the limits are checked downstream)
        return int(round(float(digits) * mult))
    except (ValueError, OverflowError):
        return None


def _budget_clauses(text: str) -> list[str]:
    """The clauses of `text` that may state a budget; dataset paths are taken out first (an
    upload folder such as `.../b40e9c86/x.npz` is not a device)."""
    text = _PATH.sub(" ", text)
    clauses = [c.strip() for c in re.split(r"[.;!?\n]|,(?!\d{3})", text) if c.strip()]
    return [c for c in clauses if _budget_hint(c) and not _SIZE_1D.search(c)]


def unknown_device(text: str) -> Any:
    """The `UnknownDeviceError` of the first clause of `text` that names a device the catalogue
    does not know ("2 hours on my Quadro K2200", "a TPU v4"), or None: the advisor asks which
    device it is instead of assuming a CPU."""
    from knowledge.errors import ConfigError
    from knowledge.metalearner.budget import UnknownDeviceError, parse_budget

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
    from knowledge.metalearner.devices import KNOWN_TEXT

    if not getattr(error, "supported", True):
        head = (f"I cannot plan for {error.named!r}: training here runs on NVIDIA GPUs, Apple GPUs "
                "or a CPU, not on TPUs, AMD or Intel accelerators.")
    else:
        head = f"Which GPU is that? I don't know {error.named!r}."
    return (f"{head} I know: {KNOWN_TEXT}. Which one will you train on (the closest is fine), "
            "e.g. '2 hours on an RTX 4090', or 'CPU only'?")


def budget_phrase(text: str) -> str | None:
    """The clauses of `text` that state a compute budget ('one hour on a T4', 'CPU only'), or None."""
    from knowledge.errors import ConfigError
    from knowledge.metalearner.budget import parse_budget

    picked = []
    for clause in _budget_clauses(text):
        try:
            parse_budget(clause)
        except ConfigError:
            continue
        picked.append(clause)
    return ", ".join(picked) or None


def regex_extract(text: str, pending: str | None = None) -> TurnExtraction:
    """What the regexes find in `text`; a bare number answers the `pending` question."""
    found: dict[str, Any] = {}
    if m := _INSTANCES.search(text):
        found["n_instances"] = _to_int(m.group(1))
    if m := _CLASSES.search(text):
        found["n_classes"] = _to_int(m.group(1))
    elif re.search(r"\bbinary\b", text, re.IGNORECASE):
        found["n_classes"] = 2
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
    if pending in ("n_instances", "n_classes", "height") and pending not in found:
        bare = re.fullmatch(r"\s*(?:it'?s\s+|about\s+|around\s+|roughly\s+)?(\d{1,3}(?:,\d{3})+|\d+"
                            r"(?:\s*k)?|" + "|".join(_WORD_INTS) + r")\s*[.!]?\s*", text,
                            re.IGNORECASE)
        if bare:
            found[pending] = _to_int(bare.group(1))
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
_CORRECTION = re.compile(r"\b(?:not|no|n't|instead|rather|actually|wrong|correction|except)\b|n't",
                         re.IGNORECASE)


def regex_covers(text: str, found: TurnExtraction, known: dict[str, Any] | None = None,
                 pending: str | None = None) -> bool:
    """Whether an LLM extraction could add nothing to the regexes' `found`: every number of the
    message is inside something the regexes read (a count, classes, a size, a budget clause, a
    path), the question just asked was answered, the modality is known, and no modality is being
    corrected ("not X-ray but CT"). Saves one LLM call on most turns ("What if I only have a
    CPU?", "Why not a ViT?", a message stating everything plainly)."""
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
        normalize_modality(word)
    except ValueError:
        return False
    return True


# --- combining -----------------------------------------------------------------------------------

def supported(key: str, value: Any, text: str) -> bool:
    """Whether `text` states `value` for trait `key` (numbers must be written in it)."""
    if key == "n_classes" and value == 2 and re.search(r"\bbinary\b", text, re.IGNORECASE):
        return True
    if key == "channels":
        return bool(_GRAY.search(text) or _COLOUR.search(text) or re.search(r"\bchannels?\b", text))
    if isinstance(value, list):
        return all(supported(key, v, text) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        words = {w: n for w, n in _WORD_INTS.items() if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
        if value in words.values() or value in _scaled_words(text):
            return True
        return any(abs(n.value - value) <= max(n.tolerance, 1e-9) for n in find_numbers(text))
    return True


_SCALED = re.compile(r"\b(" + "|".join(_WORD_INTS) + r"|a|one|\d+(?:\.\d+)?)\s+"
                     r"(hundred|thousand|million)\b", re.IGNORECASE)
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def _scaled_words(text: str) -> set[float]:
    """Amounts written with a scale word: 'three thousand' -> 3000, '1.5 thousand' -> 1500."""
    out = set()
    for m in _SCALED.finditer(text):
        head = m.group(1).lower()
        base = 1 if head in ("a", "one") else _WORD_INTS.get(head) or float(head)
        out.add(base * _SCALES[m.group(2).lower()])
    return out


def merge(llm: TurnExtraction | None, regex: TurnExtraction, text: str) -> TurnExtraction:
    """The LLM's extraction where the message supports it, else the regexes'."""
    if llm is None:
        return regex
    data = regex.model_dump()
    for key, value in llm.model_dump().items():
        if value is None:
            continue
        if key in TurnExtraction.model_fields and key not in ("budget", "preference",
                                                              "dataset_path", "modality"):
            if not supported(key, value, text):
                log.info("dropping extracted %s=%r: not stated in the message", key, value)
                continue
        if key == "dataset_path" and value not in text:
            continue  # a path must be written in the message
        if key == "budget":
            # the user's own words win; an LLM budget is kept only when every word of it is in the
            # message (a 1.5B model copied the prompt's example "one hour on a T4" into a turn that
            # named no budget) and it is readable
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
    from agent import prompts

    regex = regex_extract(text, pending)
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
