"""What a user message asks for, read deterministically (no LLM): the follow-up kind the graph
answers itself, the edits to the plan, and requests outside what the advisor does.

    intent = read_intent("How long will that take on a T4 instead?", pick_model="resnet18")
    intent.kind      # "device_time"
    intent.device    # "T4"
    plan_edits("Train it from scratch instead, 64 px")   # {"pretrained": False, "resolution": 64}
    out_of_scope("It's 3-D liver CT, I need segmentation")  # "segmentation"

A small model asked "why X and not Y?" compared the dataset's traits as if they were differences
between models; asked "how long on a T4?" it ranked a different config; asked for "the command"
it invented `python train.py`. Each of these kinds is recognised here and answered by the graph
from the tools' numbers (`agent.nodes.plan`); the LLM answers only what is left (`other`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.entities import find_mentions, resolve_model
from knowledge.metalearner.budget import names_device

Kind = Literal["out_of_scope", "command", "device_time", "hyperparameter", "why_not", "why_pick",
               "other"]
Param = Literal["lr", "batch_size", "epochs", "optimizer", "resolution", "weight_decay",
                "augmentation"]

# --- outside the advisor's scope -------------------------------------------------------------------

# Tasks that are not image classification. "Pneumonia detection" is classification in common
# speech, so detection counts only with boxes, localisation or object detection.
_SCOPE: tuple[tuple[str, str], ...] = (
    ("segmentation", r"\bsegment(?:ation|ing|s)?\b|\bsegmentaci[oó]n\b|\bsegmentierung\b|\bsegmentazione\b|\b(?:pixel|voxel)[- ]wise\b|\bmasks?\b|"
                     r"\bdelineat\w*|\bcontour(?:ing|s)?\b"),
    ("object detection", r"\bobject detection\b|\bbounding[- ]box\w*|\blocali[sz](?:e|ation|ing)\b|"
                         r"\bdetect(?:ion|ing)?\b[^.?!]{0,40}\b(?:boxes|locations?|where)\b|"
                         r"\b(?:yolo|faster r-?cnn|retinanet)\b|\bcount(?:ing)?\s+(?:the\s+)?"
                         r"(?:cells|nuclei|objects|lesions)\b|"
                         # French, Spanish, German, Italian: boxes, detectors, localisation
                         r"\bbo[iî]tes?\s+englobantes?\b|\bcadres?\s+de\s+d[ée]limitation\b|"
                         r"\bcajas?\s+delimitadoras?\b|\bbegrenzungsrahmen\b|\bobjekterkennung\b|"
                         r"\briquadri\s+di\s+delimitazione\b|"
                         r"\blocali[sz]a(?:tion|ci[oó]n|zione)\b"),
    ("3-D volumes", r"\b3-?d\b(?![- ]?(?:print|render))|\bvolumetric\b|\bvoxels?\b|"
                    r"\b(?:ct|mri?|pet)\s+volumes\b|\bvolumes?\s+of\s+(?:ct|mri?)\b|\bnifti\b|\.nii\b"),
    ("text", r"\btext classification\b|\b(?:radiology|clinical|pathology|discharge)\s+"
             r"(?:reports?|notes?|letters?)\b|\bnlp\b|\bnatural language\b|\bsentences?\b"),
    ("regression", r"\bregression\b|\bpredict(?:ing)?\s+(?:the\s+)?(?:age|size|volume|score|"
                   r"survival)\b|\bsurvival (?:analysis|prediction)\b"),
    ("signals", r"\b(?:ecg|eeg|audio|speech|time[- ]series)\b"),
)
_SCOPE_RE = [(name, re.compile(p, re.IGNORECASE)) for name, p in _SCOPE]
# "not segmentation, just classification": a negated task is no request for it
_NEGATED = re.compile(r"\b(?:not|no|isn'?t|rather than|instead of|without)\s+(?:\w+\s+){0,2}$",
                      re.IGNORECASE)


def out_of_scope(text: str) -> str | None:
    """The task outside image classification that `text` asks for ("segmentation", "object
    detection", "3-D volumes", "text", "regression", "signals"), or None."""
    for name, pattern in _SCOPE_RE:
        for m in pattern.finditer(text):
            if not _NEGATED.search(text[max(0, m.start() - 40):m.start()]):
                return name
    return None


def scope_reply(task: str) -> str:
    """The one-sentence decline (with what the advisor does instead)."""
    return (f"I can't help with {task}: I recommend a pretrained model and its hyperparameters for "
            "image classification (one label per flat image), from past training runs. If your "
            "task can be framed as classifying whole images (e.g. single slices or crops), tell me "
            "the number of images and classes and I'll recommend a config.")


# --- follow-up kinds -------------------------------------------------------------------------------

_COMMAND = re.compile(r"\b(?:command(?:[- ]line)?|commande|befehl|comando|cli|shell|terminal|"
                      r"script|snippet|code)\b|"
                      r"\bhow (?:do|can|would|should) i (?:run|train|launch|start|reproduce)\b",
                      re.IGNORECASE)
_TIME_Q = re.compile(r"\bhow long\b|\bhow much time\b|\bhow many (?:hours|minutes)\b|\btime\b|"
                     r"\bcombien de temps\b|\bwie lange\b|\bcu[aá]nto (?:tiempo|tard\w*)\b|"
                     r"\bquanto tempo\b|\bdur[ée]e\b|\bdauer\w*\b|"
                     r"\btake\b|\bduration\b|\bfaster on\b|\bslower on\b", re.IGNORECASE)
_PARAMS: tuple[tuple[Param, str], ...] = (
    ("lr", r"\blearning[- ]rates?\b|\blr\b|\blernrate\b|\btaux d'apprentissage\b|"
           r"\btasa de aprendizaje\b"),
    ("batch_size", r"\bbatch(?:[- ]?size)?(?:es)?\b"),
    ("epochs", r"\bepochs?\b|\b[ée]poques?\b|\bepochen\b|\b[ée]pocas?\b|\bhow (?:long|many passes) (?:should|do) i train\b"),
    ("weight_decay", r"\bweight[- ]decay\b"),
    ("optimizer", r"\boptimi[sz]er\b|\badamw?\b|\bsgd\b"),
    ("augmentation", r"\baugment\w*\b"),
    ("resolution", r"\bresolution\b|\binput size\b|\bimage size\b"),
)
_PARAM_RE = [(name, re.compile(p, re.IGNORECASE)) for name, p in _PARAMS]
_QUESTION = re.compile(r"\?|^\s*(?:what|which|how|would|should|could|can|is|are|do|does|why|"
                       r"pourquoi|quel(?:le)?s?|comment|combien|warum|welche[rs]?|wie|por qu[eé]|"
                       r"qu[eé]|cu[aá]l|c[oó]mo)\b",
                       re.IGNORECASE)
_WHY = re.compile(r"\bwhy\b|\bpourquoi\b|\bwarum\b|\bwieso\b|\bpor qu[eé]\b|\bperch[eé]\b",
                  re.IGNORECASE)
_COMPARE = re.compile(r"\bwhy not\b|\band not\b|\binstead of\b|\brather than\b|\bover\b|\bvs\.?\b|"
                      r"\bversus\b|\bcompare\w*\b|\bwhat about\b|\bhow about\b|\bbetter\b|\bworse\b",
                      re.IGNORECASE)
_PRETRAINED_Q = re.compile(r"\bpre-?trained\b|\bfine-?tun\w*\b", re.IGNORECASE)


@dataclass
class Intent:
    """A follow-up message's kind and what it names."""

    kind: Kind
    models: list[str] = field(default_factory=list)  # known models named (timm names)
    unknown_models: list[str] = field(default_factory=list)  # models named that we have no runs of
    device: str | None = None  # the device clause ("a T4")
    params: list[Param] = field(default_factory=list)
    pretrained: bool | None = None  # "a pretrained ResNet-50", "from scratch"
    task: str | None = None  # out of scope: what was asked


def named_models(text: str) -> tuple[list[str], list[str]]:
    """Known models (timm names) and unknown model names mentioned in `text`, in order."""
    known: list[str] = []
    unknown: list[str] = []
    for mention in find_mentions(text):
        if mention.kind != "model":
            continue
        name = resolve_model(mention.text)
        if name and name not in known:
            known.append(name)
        elif not name and mention.text not in unknown:
            unknown.append(mention.text)
    return known, unknown


def device_clause(text: str) -> str | None:
    """The part of `text` that names a device ("on a T4 instead" -> "a T4"), or None."""
    for m in re.finditer(r"\b(?:on|with|using|for)\s+((?:an?|my|one|two|\d+|the)?\s*[^,.;?!]{1,40})",
                         text, re.IGNORECASE):
        clause = re.sub(r"\s+(?:instead|then|please|now)\b.*$", "", m.group(1), flags=re.IGNORECASE)
        if names_device(clause):
            return clause.strip()
    return text.strip() if names_device(text) else None


def read_intent(text: str, pick_model: str | None = None) -> Intent:
    """The kind of follow-up `text` is (see the module docstring); `other` when none applies."""
    if task := out_of_scope(text):
        return Intent("out_of_scope", task=task)
    models, unknown = named_models(text)
    others = [m for m in models if m != pick_model]
    pretrained = (False if re.search(r"\bfrom scratch\b|\brandom(?:ly)? init", text, re.IGNORECASE)
                  else True if _PRETRAINED_Q.search(text) else None)
    params = [name for name, p in _PARAM_RE if p.search(text)]
    is_question = bool(_QUESTION.search(text))
    if _COMMAND.search(text) and not params:
        return Intent("command", models=models)
    device = device_clause(text) if _TIME_Q.search(text) else None
    if device:
        return Intent("device_time", models=models, device=device)
    if params and is_question and not _WHY.search(text):
        return Intent("hyperparameter", models=models, params=params, pretrained=pretrained)
    if (others or unknown) and (_WHY.search(text) or _COMPARE.search(text)) and is_question:
        return Intent("why_not", models=others, unknown_models=unknown, pretrained=pretrained)
    if _WHY.search(text) and not re.search(r"\bwhy not\b", text, re.IGNORECASE):
        return Intent("why_pick")
    return Intent("other", models=models, params=params)


# --- launching ---------------------------------------------------------------------------------

_LAUNCH = re.compile(r"\b(launch|start|kick off|begin)\b.{0,40}\b(it|training|the training|"
                     r"this|that|the run|a run|alternative|instead)\b|\btrain (it|this|that|now)\b",
                     re.IGNORECASE)


def asks_launch(text: str) -> bool:
    """"launch it", "start the training", "launch the faster alternative instead" (not a
    question about launching)."""
    return bool(_LAUNCH.search(text)) and "?" not in text and not _COMMAND.search(text)


# --- edits to the plan ---------------------------------------------------------------------------

_EDIT = re.compile(r"\binstead\b|\buse\b|\bswitch\b|\bgo with\b|\blet'?s\b|\bmake it\b|\bchange\b|"
                   r"\btrain (?:it|that|this)\b|\blaunch\b|\bstart\b|\brun\b|\bi(?:'d| would) "
                   r"(?:like|prefer)\b|\bi want\b|\bprefer\b", re.IGNORECASE)
_RES = re.compile(r"\b(\d{2,3})\s*(?:px|pixels?)\b|\bat (\d{2,3})\b", re.IGNORECASE)
_EPOCHS = re.compile(r"\b(\d{1,3})\s+epochs?\b", re.IGNORECASE)
_BATCH = re.compile(r"\bbatch(?:[- ]?size)?\s*(?:of\s+)?(\d{1,4})\b|\b(\d{1,4})\s+(?:per\s+)?batch\b",
                    re.IGNORECASE)
_LR = re.compile(r"\b(?:lr|learning[- ]rate)\s*(?:of|=|:)?\s*(\d+(?:\.\d+)?(?:e-?\d+)?)\b",
                 re.IGNORECASE)


def plan_edits(text: str, pick_model: str | None = None) -> dict[str, Any]:
    """The config fields a message asks to change ("train it from scratch instead", "use 64 px",
    "launch ResNet-18 from scratch, 64 px, 3 epochs"), as TrainConfig values; {} for a question
    ("what learning rate would you use for ResNet-50?" is a what-if, not an edit)."""
    if not _EDIT.search(text) or (_QUESTION.search(text) and not re.search(
            r"\b(?:can|could) you\b.*\binstead\b", text, re.IGNORECASE)):
        return {}
    edits: dict[str, Any] = {}
    models, _ = named_models(text)
    if models:
        edits["model"] = models[0]
    if re.search(r"\bfrom scratch\b|\bwithout pre-?training\b|\bno pre-?trained\b|\brandom(?:ly)? "
                 r"init", text, re.IGNORECASE):
        edits["pretrained"] = False
    elif re.search(r"\bpre-?trained\b", text, re.IGNORECASE):
        edits["pretrained"] = True
    if re.search(r"\blinear[- ]prob\w*|\bfrozen\b|\bfreeze\b|\bonly the head\b", text, re.IGNORECASE):
        edits["scheme"] = "linear_probing"
    elif re.search(r"\bfine-?tun\w* (?:everything|all|end[- ]to[- ]end)\b|\bend[- ]to[- ]end\b",
                   text, re.IGNORECASE):
        edits["scheme"] = "end_to_end"
    if m := _RES.search(text):
        edits["resolution"] = int(m.group(1) or m.group(2))
    if m := _EPOCHS.search(text):
        edits["epochs"] = int(m.group(1))
    if m := _BATCH.search(text):
        edits["batch_size"] = int(m.group(1) or m.group(2))
    if m := _LR.search(text):
        edits["lr"] = float(m.group(1))
    return edits


__all__ = ["Intent", "asks_launch", "device_clause", "named_models", "out_of_scope", "plan_edits", "read_intent",
           "scope_reply"]
