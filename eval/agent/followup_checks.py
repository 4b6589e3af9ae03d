"""Deterministic checks that a follow-up reply answers its question, one per kind, and the reply
language heuristic.

    passed, detail = check_answer("why_not", reply, turn, previous, other="ViT")
    passed, detail = language_check(reply, "fr")

Each check is a small pure function of (reply text, turn record, previous plan) -> (passed,
detail). `previous` is the config the advisor presented BEFORE the turn (the previous turn's
`TurnRecord.plan`: the recommendation's presented config, or a launch waiting for a yes), i.e. the
"picked" model the follow-up is about; `turn` is the turn's `TurnRecord` (its `plan` is the
config after the turn, `new_recommendation` whether the turn made one).

- `why_not` (other): names the other model and the picked one, gives >= 2 distinct percentages,
  and no sentence compares a DATASET trait across models (a sentence with a trait word -
  entropy, imbalance, classes, images, instances, resolution, modality - and "than" / "higher" /
  "lower" and a model name: "The class entropy is 2.81, higher than the ResNet-18 model's");
- `why_pick`: names the picked model and gives at least one reason with a number;
- `hyperparameter` (model, param): names the model and states a value for lr (1e-4, 3e-4,
  0.001 near "learning rate" / "lr"), batch_size (an integer near "batch") or epochs (an
  integer near "epoch");
- `device_time` (device): names the device and a duration, and names the SAME model as the
  previous plan (the config is re-costed, not replaced; when the turn has a plan its model must
  be that model too);
- `command`: contains `metallmix train` and the recommended model's timm name, never `train.py`;
- `out_of_scope`: no recommendation this turn, no predicted-accuracy percentage, and says what
  the advisor does (contains "classif").

Language (`language_check`): the words of the reply (letters only, so numbers go; model names of
the search space, timm names and config words taken out first) are counted against a short
stop-word list per language (en, fr, de, es); the reply is in language L when L has the most
hits, strictly more than any other, and at least 3. Good enough to tell a French reply from an
English one; not a language identifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Result = tuple[bool, str]

_PCT = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*%")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?:e-?\d+)?")
_DURATION = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?\s*(?:s|sec|secs|seconds?|min|mins|minutes?|h|hr|hrs|"
                       r"hours?|days?|minuten|minutos|minuti|heures?|stunden?|horas?|ore|jours?|"
                       r"tage?|d[ií]as?|giorni)\b", re.IGNORECASE)  # also in the user's language
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
TRAIT_WORDS = re.compile(r"\b(entropy|imbalance|imbalanced|class(?:es)?|images?|instances?|"
                         r"samples?|resolution|image size|modality)\b", re.IGNORECASE)
COMPARE_WORDS = re.compile(r"\b(than|higher|lower)\b", re.IGNORECASE)
GENERIC_MODELS = ("vit", "convnext", "resnet", "efficientnet", "mobilenet", "densenet", "vgg",
                  "alexnet", "inception", "xception", "swin", "deit", "clip", "dino", "eva")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@lru_cache(maxsize=1)
def _models() -> dict[str, str]:
    """timm name -> label of every model of the search space."""
    from knowledge.search_space import MODELS

    return {name: str(getattr(spec, "label", name)) for name in MODELS for spec in [MODELS[name]]}


def names_model(reply: str, model: str) -> bool:
    """Whether `reply` names `model`: a timm name, a label ("ResNet-18") or the user's words
    ("a ViT", "ConvNeXt"), compared without case, spaces and punctuation."""
    flat = _norm(reply)
    wanted = {_norm(model)}
    labels = _models()
    if model in labels:
        wanted.add(_norm(labels[model]))
        wanted.add(_norm(model.split(".")[0]))
    for name, label in labels.items():
        if _norm(label) == _norm(model):
            wanted.add(_norm(name))
    wanted.discard("")
    tokens = re.findall(r"[a-z0-9]+", reply.lower())
    # short names ("vit") must start a word (not "inevitable"); longer ones may span separators
    return any(any(t.startswith(w) for t in tokens) if len(w) <= 4 else w in flat for w in wanted)


def _any_model(sentence: str, extra: tuple[str, ...] = ()) -> bool:
    flat = _norm(sentence)
    names = [_norm(x) for x in (*_models(), *_models().values(), *GENERIC_MODELS, *extra)]
    return any(n and n in flat for n in names)


def percentages(reply: str) -> list[str]:
    """The distinct percentages of `reply`, in order."""
    out: list[str] = []
    for m in _PCT.finditer(reply):
        value = m.group(1).replace(",", ".")
        if value not in out:
            out.append(value)
    return out


def trait_comparisons(reply: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The sentences of `reply` that compare a dataset trait with a model (nonsense)."""
    return [s.strip() for s in _SENTENCE.split(reply)
            if TRAIT_WORDS.search(s) and COMPARE_WORDS.search(s) and _any_model(s, extra)]


def _picked(previous: dict[str, Any] | None) -> str | None:
    return (previous or {}).get("model")


# --- the checks ----------------------------------------------------------------------------------

def why_not(reply: str, turn: Any, previous: dict[str, Any] | None, *, other: str,
            **_: Any) -> Result:
    problems = []
    if not names_model(reply, other):
        problems.append(f"does not name {other!r}")
    picked = _picked(previous)
    if picked is None:
        problems.append("no previous recommendation")
    elif not names_model(reply, picked):
        problems.append(f"does not name the picked {picked}")
    pcts = percentages(reply)
    if len(pcts) < 2:
        problems.append(f"{len(pcts)} distinct percentage(s), needs 2")
    bad = trait_comparisons(reply, (other,))
    if bad:
        problems.append(f"compares a dataset trait with a model: {bad[0][:160]!r}")
    return not problems, "; ".join(problems)


def why_pick(reply: str, turn: Any, previous: dict[str, Any] | None, **_: Any) -> Result:
    picked = _picked(previous)
    problems = []
    if picked is None:
        problems.append("no previous recommendation")
    elif not names_model(reply, picked):
        problems.append(f"does not name the picked {picked}")
    rest = reply
    for name, label in _models().items():  # digits of model names are no reasons
        rest = re.sub(re.escape(label), " ", re.sub(re.escape(name), " ", rest, flags=re.I), flags=re.I)
    if not _NUMBER.search(rest):
        problems.append("no reason with a number")
    return not problems, "; ".join(problems)


_PARAM_WORDS = {"lr": r"learning[- ]rate|\blr\b", "batch_size": r"batch", "epochs": r"epoch"}
_PARAM_VALUE = {"lr": r"(?<![\w.])(?:\d+(?:\.\d+)?e-?\d+|0?\.\d+|\d+(?:\.\d+)?\s*[x×]\s*10\^?-\d+)",
                "batch_size": r"(?<![\w.])\d{1,4}(?![\w.%])", "epochs": r"(?<![\w.])\d{1,3}(?![\w.%])"}
_WINDOW = 40  # characters between the parameter's word and its value


def stated_value(reply: str, param: str) -> str | None:
    """A value `reply` states for `param` (within 40 characters of its word), or None."""
    for name, label in _models().items():  # the digits of "ResNet-50" are no value
        for text in (label, name):
            reply = re.sub(re.escape(text), lambda m: " " * len(m.group(0)), reply, flags=re.I)
    for word in re.finditer(_PARAM_WORDS[param], reply, re.IGNORECASE):
        lo, hi = max(0, word.start() - _WINDOW), min(len(reply), word.end() + _WINDOW)
        near = reply[lo:hi]
        m = re.search(_PARAM_VALUE[param], near, re.IGNORECASE)
        if m:
            return m.group(0)
    return None


def hyperparameter(reply: str, turn: Any, previous: dict[str, Any] | None, *, model: str,
                   param: str, **_: Any) -> Result:
    problems = []
    if not names_model(reply, model):
        problems.append(f"does not name {model!r}")
    if stated_value(reply, param) is None:
        problems.append(f"states no value for {param}")
    return not problems, "; ".join(problems)


def names_device(reply: str, device: str) -> bool:
    from knowledge.metalearner.devices import get_device

    flat = _norm(reply)
    try:
        entry = get_device(device)
        names = {_norm(entry.key), _norm(entry.label.replace("NVIDIA", "").replace("GeForce", ""))}
    except Exception:  # noqa: BLE001 - an unknown device is matched by its words only
        names = set()
    names.add(_norm(device))
    names.discard("")
    return any(n in flat for n in names)


def device_time(reply: str, turn: Any, previous: dict[str, Any] | None, *, device: str,
                **_: Any) -> Result:
    problems = []
    if not names_device(reply, device):
        problems.append(f"does not name {device!r}")
    if not _DURATION.search(reply):
        problems.append("states no duration")
    picked = _picked(previous)
    if picked is None:
        problems.append("no previous recommendation")
    else:
        if not names_model(reply, picked):
            problems.append(f"does not name the same model ({picked})")
        now = (getattr(turn, "plan", None) or {}).get("model")
        if now is not None and now != picked:
            problems.append(f"the plan changed model: {picked} -> {now}")
    return not problems, "; ".join(problems)


def command(reply: str, turn: Any, previous: dict[str, Any] | None, **_: Any) -> Result:
    problems = []
    if "metallmix train" not in reply:
        problems.append("no `metallmix train`")
    model = (getattr(turn, "plan", None) or {}).get("model") or _picked(previous)
    if model is None:
        problems.append("no recommended model")
    elif model not in reply:
        problems.append(f"no timm name {model}")
    if "train.py" in reply:
        problems.append("names train.py")
    return not problems, "; ".join(problems)


def out_of_scope(reply: str, turn: Any, previous: dict[str, Any] | None, **_: Any) -> Result:
    problems = []
    if getattr(turn, "new_recommendation", False):
        problems.append("made a recommendation")
    if percentages(reply):
        problems.append(f"states a percentage ({percentages(reply)[0]} %)")
    if "classif" not in reply.lower():
        problems.append("does not say it helps with classification")
    return not problems, "; ".join(problems)


CHECKS: dict[str, Callable[..., Result]] = {
    "why_not": why_not, "why_pick": why_pick, "hyperparameter": hyperparameter,
    "device_time": device_time, "command": command, "out_of_scope": out_of_scope}


def check_answer(kind: str, reply: str, turn: Any, previous: dict[str, Any] | None,
                 **params: Any) -> Result:
    """(passed, detail) of the `kind` check (params: other, model, param, device)."""
    return CHECKS[kind](reply, turn, previous, **{k: v for k, v in params.items() if v is not None})


# --- language ------------------------------------------------------------------------------------

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the a an and or of to in on for with is are be this that it you your i "
                    "would will can what which not but from at by as have has was".split()),
    "fr": frozenset("le la les un une des et ou de du au aux en pour avec est sont ce cette "
                    "vous votre je il elle que qui ne pas mais sur dans par plus sera serait "
                    "avez".split()),
    "de": frozenset("der die das ein eine einen und oder von zu im in mit ist sind dies diese "
                    "sie ihr ich es nicht aber auf für bei als auch wird würde haben hat".split()),
    "es": frozenset("el la los las un una unos y o de del al en para con es son este esta "
                    "usted su yo que no pero por más sería tiene tienes".split()),
}


def language_scores(reply: str) -> dict[str, int]:
    """Stop-word hits per language over the reply's words (model names taken out first)."""
    text = reply
    for name, label in _models().items():
        text = re.sub(re.escape(label), " ", re.sub(re.escape(name), " ", text, flags=re.I), flags=re.I)
    text = re.sub(r"`[^`]*`", " ", text)  # code: commands, timm names
    text = re.sub(r"\bend[-_ ]to[-_ ]end\b", " ", text, flags=re.I)  # a scheme's name, in any language
    words = re.findall(r"[^\W\d_]+", text.lower())
    return {lang: sum(w in stops for w in words) for lang, stops in STOP_WORDS.items()}


def detect_language(reply: str) -> str | None:
    scores = language_scores(reply)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (best, hits), (_, second) = ranked[0], ranked[1]
    return best if hits >= 3 and hits > second else None


def language_check(reply: str, language: str) -> Result:
    got = detect_language(reply)
    return got == language, f"reply language {got or 'unclear'} ({language_scores(reply)})"


__all__ = ["CHECKS", "STOP_WORDS", "check_answer", "command", "detect_language", "device_time",
           "hyperparameter", "language_check", "language_scores", "names_device", "names_model",
           "out_of_scope", "percentages", "stated_value", "trait_comparisons", "why_not",
           "why_pick"]
