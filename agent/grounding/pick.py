"""An answer that presents a recommendation must state it: `unstated_pick`."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from agent.entities import Mention, find_mentions, model_aliases, normalize, resolve_model
from agent.grounding.attribution import Anchor, _anchors
from agent.grounding.matching import Violation, agrees
from agent.grounding.numbers import Number, _find, find_numbers, normalize_text
from agent.grounding.sources import Reading
from knowledge.metalearner.budget import format_seconds
from knowledge.search_space import MODELS

NOT_STATED = "not stated"  # the reason of a Violation: a fact of the pick the answer leaves out
_SEP = r"[-_ /.]?"
_SCHEME_STATED = {  # beyond `agent.entities`' scheme names: what else says "trained end to end"
    "end_to_end": re.compile(r"(?:all|whole|entire)\s+(?:the\s+)?(?:network|model|layers|weights)"
                             r"|from[-\s]+scratch|de\s+bout\s+en\s+bout|durchg[äa]ngig|"
                             r"de\s+extremo\s+a\s+extremo|ponta\s+a\s+ponta", re.IGNORECASE),
}
_SCHEME_LABELS = {"end_to_end": "end-to-end training", "linear_probing": "linear probing",
                  "knn": "kNN on frozen features"}
_NEGATED = re.compile(r"(?:\bnot|\bno|\bwithout|\bnon)[-\s]+(?:\w+[-\s]+)?$", re.IGNORECASE)
_SCRATCH = re.compile(
    r"from[-\s]+scratch|\bscratch\b|random(?:ly)?[-\s]+init\w*|"
    # French, German, Spanish, Italian, Portuguese
    r"depuis\s+z[ée]ro|[àa]\s+partir\s+de\s+z[ée]ro|ohne\s+vortraining|von\s+grund\s+auf|"
    r"desde\s+cero|da\s+zero|do\s+zero|(?:\bnot|\bno|\bwithout|\bnon)[-\s]+"
    r"(?:\w+[-\s]+)?pre-?trained|pre-?trained(?:\s+weights)?\s*(?:\*\*)?\s*[:=]?\s*(?:\*\*)?\s*"
    r"(?:no|false)\b", re.IGNORECASE)
# Pretrained weights, said outright or implied (fine-tuning, a linear probe or kNN on frozen
# features start from pretrained weights).
_PRETRAINED = re.compile(r"pre-?trained|imagenet|fine[-_ ]?tun\w*|linear[-_ ]prob\w*|frozen|"
                         r"k[-_ ]?nn\b|pr[ée]-?entra[iî]n\w*|vortrainiert\w*|pre-?entrenad\w*|"
                         r"pre-?addestrat\w*|pr[ée]-?treinad\w*", re.IGNORECASE)
# Words near a number without a unit that say which fact it is ("1e-4 learning rate", "224-pixel").
_FACT_WORDS = {
    "px": re.compile(r"resolution|pixel|\bpx\b|image[\s_-]*size|input", re.IGNORECASE),
    "lr": re.compile(r"learning[\s_-]*rate|\blr\b", re.IGNORECASE),
    "epochs": re.compile(r"epoch", re.IGNORECASE),
    "acc": re.compile(r"accura|predict|expect|reach", re.IGNORECASE),
}
_AFTER_WORDS = re.compile(r"[^,;:(\n\d]{0,24}")


def _model_stated(text: str, mentions: Sequence[Mention], model: str) -> bool:
    """Whether `text` names the model `model` (a key of knowledge.search_space.MODELS) itself,
    not only its family: its label or timm name in any case and separators ('ResNet-18',
    'resnet18', 'DINO ViT-B/16', 'vit_base_patch16_224.dino'), or a shorter name that means it
    ('MobileNetV3 Small', 'ViT-Tiny')."""
    spec = MODELS.get(model)
    names = {normalize(model)} | ({normalize(spec.label)} if spec else set())
    for name in filter(None, names):
        pattern = r"(?<![A-Za-z0-9])" + _SEP.join(re.escape(c) for c in name) + r"(?![A-Za-z0-9])"
        if re.search(pattern, text, re.IGNORECASE):
            return True
    family = spec.family if spec else ""
    return any(m.kind == "model" and m.key != family and resolve_model(m.text) == model
               for m in mentions)


def _number_stated(text: str, numbers: Sequence[Number], anchors: Sequence[Anchor | None],
                   of_pick: Any, kind: str, readings: Sequence[Reading]) -> bool:
    """Whether a number of `kind` (or one without a unit that words around it say is one) is one
    of `readings` and is about the pick (not attributed to another model or a dataset)."""
    accepted = {"acc": ("acc", "pct")}.get(kind, (kind,))
    for n, anchor in zip(numbers, anchors):
        if not of_pick(anchor):
            continue
        as_kind = n
        if n.kind not in accepted:
            if kind not in _FACT_WORDS:
                continue
            # the words right after it, up to a comma or the next number ("a 0.01 learning rate"
            # after "128-pixel resolution," whose word gave it its kind); a number of no kind also
            # the words before it
            after = _AFTER_WORDS.match(text, n.end).group(0)
            before = "" if n.kind not in ("plain", "count") else \
                text[max(text.rfind("\n", 0, n.start) + 1, n.start - 32):n.start]
            if not _FACT_WORDS[kind].search(before + " " + after):
                continue
            as_kind = Number(n.value, n.tolerance, n.text, kind, n.scale, n.start, n.end, n.label)
        if any(agrees(as_kind, r) for r in readings):
            return True
    return False


def _fmt(value: float) -> str:
    return f"{value:g}"


def unstated_pick(answer: str, pick: dict[str, Any], *, accuracy_pct: float | None = None,
                  seconds: float | None = None) -> list[Violation]:
    """What of the recommended config an answer that presents it leaves out, each as a Violation
    with the reason `NOT_STATED` ("learning rate 0.0001 (not stated)"): the model itself, pretrained
    or from scratch (implied by 'fine-tuned', 'linear probe', 'ImageNet weights'), the scheme,
    the resolution, the learning rate, the epochs, the predicted accuracy (`accuracy_pct`, when
    given) and the training time (`seconds`; None when the recommendation has no predicted time).

    Each fact must be stated with the pick's own value, in any of the notations `check_answer`
    accepts ("lr 1e-4" / "learning rate of 0.0001", "224 px" / "224×224", "87 %" / "0.87", "12 min"
    / "0.2 h"), up to the precision it is written to, and not attributed to another model or a
    dataset ("a faster MobileNetV3 at 224 px" states no resolution of the pick). An answer that
    states a wrong value fails here too (the right one is missing) and in `check_answer` (the
    wrong one is not the pick's)."""
    text = normalize_text(answer)
    mentions = find_mentions(text)
    numbers = _find(text)
    anchors = _anchors(text, numbers, mentions, pick)
    model = str(pick.get("model", ""))
    pick_key = re.sub(r"[^a-z0-9]", "", model.lower())

    def of_pick(anchor: Anchor | None) -> bool:
        if anchor is None or anchor.pick:
            return True
        name = anchor.names[0] if anchor.names else ""
        return name.startswith("m:") and any(a.startswith(name[2:])
                                             for a in model_aliases(pick_key))

    out: list[Violation] = []

    def missing(what: str) -> None:
        out.append(Violation(what, NOT_STATED))

    label = MODELS[model].label if model in MODELS else model
    if not _model_stated(text, mentions, model):
        missing(f"the model {label}")
    scheme = str(pick.get("scheme", ""))
    if "pretrained" in pick:
        scratch = list(_SCRATCH.finditer(text))
        if pick["pretrained"]:
            said = any(not _NEGATED.search(text[max(0, m.start() - 24):m.start()])
                       and not any(s.start() <= m.start() < s.end() for s in scratch)
                       for m in _PRETRAINED.finditer(text))
            if not said:
                missing("pretrained weights")
        elif not scratch:
            missing("training from scratch")
    if scheme:
        said = any(m.kind == "scheme" and m.key == scheme for m in mentions) or bool(
            scheme in _SCHEME_STATED and _SCHEME_STATED[scheme].search(text))
        if not said:
            missing(_SCHEME_LABELS.get(scheme, scheme))

    def exact(kind: str, value: float) -> list[Reading]:
        return [Reading(kind, float(value), 1e-9 * max(1.0, abs(float(value))))]

    if pick.get("resolution") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "px", exact("px", pick["resolution"])):
        missing(f"resolution {pick['resolution']} px")
    if pick.get("lr") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "lr", exact("lr", pick["lr"])):
        missing(f"learning rate {_fmt(pick['lr'])}")
    if pick.get("epochs") is not None and not _number_stated(
            text, numbers, anchors, of_pick, "epochs", exact("epochs", pick["epochs"])):
        missing(f"{pick['epochs']} epochs")
    if accuracy_pct is not None:
        shown = round(accuracy_pct, 1)  # as the facts and the card show it
        readings = [Reading("pct", shown, 0.05), *exact("pct", accuracy_pct)]
        if not _number_stated(text, numbers, anchors, of_pick, "acc", readings):
            missing(f"predicted accuracy {_fmt(shown)} %")
    if seconds is not None and not (isinstance(seconds, float) and math.isnan(seconds)):
        shown_time = format_seconds(seconds)
        readings = [Reading("dur", n.value * n.scale, n.tolerance * n.scale)
                    for n in find_numbers(shown_time) if n.kind == "dur"]
        readings += exact("dur", seconds)
        if not _number_stated(text, numbers, anchors, of_pick, "dur", readings):
            missing(f"training time {shown_time}")
    return out
