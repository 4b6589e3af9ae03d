"""The judge: grades a finished conversation's recommendation on format, accuracy, completeness.

    verdict = judge_transcript(transcript(state), model, store="runs.sqlite")
    verdict.scores()   # {"format": 5, "accuracy": 4, "completeness": 5}

A small LangGraph graph: `checks` (deterministic: the Recommendation validates, its config lies in
`knowledge.search_space.SPACE`, every number of the answer is a tool output's number of the same
kind — and, in the answer that presents the recommendation, the recommended config's own —, every
model, dataset, optimizer, scheme and run id it names is in the tool outputs, the cited runs
exist in the store, the sentences mean what the tools say (`agent.grounding.meaning_violations`:
comparisons only of values that differ, no dataset trait attributed to a model, "more accurate" /
"faster" / "within the budget" as the predictions say, a claimed recommendation that is the pick),
every config field and the predictions, reasons, similar runs and alternatives are in the answer)
-> `rubric` (the LLM scores each criterion 1-5 with a reason, structured output with retries; its
prompt adds `RUBRIC_RULES`, the meaning rules in words) -> `combine`. A criterion's score is
the LLM's, capped by its deterministic checks (5 when all pass, 3 when one fails, 1 when more
fail); when the LLM fails the verdict says so and uses the deterministic scores alone.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent import facts, prompts
from agent.extraction import invoke_structured
from agent.grounding import (
    launch_violations,
    launched_ok,
    meaning_violations,
    name_violations,
    number_violations,
)
from agent.language import NAMES, detect
from agent.llm import with_max_tokens
from knowledge.errors import ConfigError
from knowledge.meta_dataset.shipped import open_store
from knowledge.recommend import Recommendation
from knowledge.search_space import SPACE

log = logging.getLogger(__name__)

Criterion = Literal["format", "accuracy", "completeness"]
CRITERIA: tuple[str, ...] = ("format", "accuracy", "completeness")
PASS_SCORE = 4  # a verdict passes when every criterion scores at least this
RUBRIC_TOKENS = 320  # reply cap of the rubric (three scores with one-sentence reasons)
# The meaning rules of `agent.grounding.meaning` in words, after the judge prompt: an answer can
# quote only the tools' numbers and still say something they contradict.
RUBRIC_RULES = (
    "\nFor accuracy, also check what the sentences MEAN against the tool facts; each of these is "
    "an accuracy error even when every number is copied from the tools:\n"
    "- a comparison (higher/lower/more/less/better/worse/faster/slower ... than, vs) may only "
    "contrast values that differ: '2.81 is higher than 2.81' is wrong;\n"
    "- a dataset trait (number of images or classes, images per class, class imbalance, class "
    "entropy, image size, channels, modality) belongs to the dataset, never to a model: "
    "\"ResNet-18's class entropy\" or \"higher than the ResNet-18 model's 2.81\" is wrong;\n"
    "- the config the answer says it recommends must be the tools' recommended config (the same "
    "model, resolution, learning rate and epochs), not a value the user or the dataset mentioned;\n"
    "- 'more accurate' / 'faster' said of a config must match its predicted accuracy / training "
    "time against the config it is compared with (the recommended one when none is named), and "
    "'within the budget' only fits a config whose predicted time is at most the budget's time "
    "limit.")


class Check(BaseModel):
    """One deterministic check."""

    name: str
    criterion: Criterion
    passed: bool
    detail: str = ""


class RubricItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    score: int = Field(ge=1, le=5)
    reason: str = Field(min_length=1)


class Rubric(BaseModel):
    """The LLM's grades."""

    model_config = ConfigDict(extra="ignore")

    format: RubricItem
    accuracy: RubricItem
    completeness: RubricItem


class CriterionVerdict(BaseModel):
    score: int = Field(ge=1, le=5)
    deterministic_score: int = Field(ge=1, le=5)
    llm_score: int | None = None
    reason: str


class Verdict(BaseModel):
    """The judge's grades of one conversation."""

    format: CriterionVerdict
    accuracy: CriterionVerdict
    completeness: CriterionVerdict
    checks: list[Check]
    llm_used: bool
    llm_error: str | None = None
    passed: bool

    def scores(self) -> dict[str, int]:
        return {c: getattr(self, c).score for c in CRITERIA}


# --- deterministic checks ------------------------------------------------------------------------

# The words that show a field in an answer, in the languages the advisor answers in (en, fr, de,
# es, it, pt): a French answer says "taux d'apprentissage", not "learning rate".
_FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "pretrained": ("pretrain", "pre-train", "from scratch", "imagenet", "préentra", "pré-entra",
                   "depuis zéro", "vortrain", "ohne vortraining", "preentren", "pre-entren",
                   "desde cero", "pre-addestr", "preaddestr", "da zero", "pré-trein", "do zero"),
    "scheme": ("end-to-end", "end_to_end", "end to end", "fine-tun", "linear prob", "linear_prob",
               "knn", "k-nn", "bout en bout", "ajustement fin", "sonde linéaire", "feinabstimm",
               "lineare probe", "extremo a extremo", "ajuste fino", "sonda lineal",
               "sonda lineare", "ponta a ponta"),
    "optimizer": ("adamw", "adam", "sgd", "optimizer", "optimiseur", "optimierer", "optimizador",
                  "ottimizzatore", "otimizador"),
    "lr": ("learning rate", "lr", "taux d'apprentissage", "lernrate", "tasa de aprendizaje",
           "tasso di apprendimento", "taxa de aprendizagem"),
    "weight_decay": ("weight decay", "wd", "weight_decay", "décroissance des poids",
                     "gewichtsabnahme", "gewichtszerfall", "decaimiento de pesos",
                     "decadimento dei pesi", "decaimento de pesos"),
    "batch_size": ("batch", "taille de lot", "tamaño de lote", "tamanho do lote"),
    "epochs": ("epoch", "époque", "epoche", "época", "epoca", "ep"),
    "augmentation": ("aug",),
    "predicted accuracy": ("accuracy", "acc", "précision", "genauigkeit", "precisión",
                           "accuratezza", "precisão"),
    "training time": ("time", "min", "hour", "second", "temps", "heure", "zeit", "stunde",
                      "trainingszeit", "dauer",
                      "tiempo", "hora", "tempo", "ora"),
    "reasons": ("because", "why", "factor", "points", "shap", "pourquoi", "parce", "facteur",
                "warum", "weil", "faktor", "punkte", "por qué", "porque", "puntos", "perché",
                "fattor", "punti", "porquê", "pontos"),
    "similar runs": ("similar", "past run", "previous run", "reached", "similaire", "précédent",
                     "ähnlich", "früher", "anterior", "simili", "passat", "semelhante"),
    "alternatives": ("faster", "alternative", "more accurate", "plus rapide", "plus précis",
                     "alternativ", "schneller", "genauer", "más rápid", "más precis",
                     "alternativa", "più veloce", "più accurat", "mais rápid", "mais precis"),
}


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(r"(?<![a-z])" + re.escape(w), text) for w in words)


def deterministic_checks(transcript: dict[str, Any], store: Any = None) -> list[Check]:
    """The deterministic checks of a transcript (see the module docstring)."""
    checks: list[Check] = []
    answer = str(transcript.get("answer") or "")
    checks.append(Check(name="answer present", criterion="format", passed=bool(answer.strip()),
                        detail="" if answer.strip() else "no final answer"))
    rec = None
    try:
        rec = Recommendation.model_validate(transcript.get("recommendation"))
        checks.append(Check(name="recommendation schema", criterion="format", passed=True))
    except ValidationError as exc:
        err = exc.errors()[0]
        checks.append(Check(name="recommendation schema", criterion="format", passed=False,
                            detail=f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"))

    if rec is not None:
        errors = SPACE.errors(rec.best.config.model_dump())
        checks.append(Check(name="config in search space", criterion="accuracy", passed=not errors,
                            detail="; ".join(errors)))
    sources = facts.grounding_sources(
        [str(o.get("output", "")) for o in transcript.get("tool_outputs") or []],
        [m["content"] for m in transcript.get("messages") or [] if m.get("role") == "human"], rec)
    pick: dict[str, Any] | None = None
    pick_sources: list[str] = []
    if rec is not None and _presents_recommendation(transcript):
        preference = (transcript.get("constraints") or {}).get("preference")
        pick = facts.pick_config(rec, preference)
        pick_sources = facts.pick_sources(rec, preference)
    bad = [str(v) for v in [
        *number_violations(answer, sources, pick=pick, pick_sources=pick_sources),
        *launch_violations(answer, launched_ok(transcript.get("tool_outputs") or []))]]
    checks.append(Check(name="numbers grounded", criterion="accuracy", passed=not bad,
                        detail=f"not supported by the tool outputs: {'; '.join(bad)}" if bad
                        else ""))
    wrong = [str(v) for v in meaning_violations(answer, sources, pick=pick,
                                                pick_sources=pick_sources)
             if str(v) not in bad]  # a claimed value the number check already reported
    checks.append(Check(name="meaning grounded", criterion="accuracy", passed=not wrong,
                        detail=f"contradicted by the tool outputs: {'; '.join(wrong)}" if wrong
                        else ""))
    names = [v.text for v in name_violations(answer, sources)]
    checks.append(Check(name="names grounded", criterion="accuracy", passed=not names,
                        detail=f"named in no tool output: {', '.join(names)}" if names else ""))
    cited = _cited_runs(transcript, rec)
    if store is not None and cited:
        run_store = open_store(store) if isinstance(store, (str, Path)) else store
        unknown = [r for r in cited if r not in run_store]
        checks.append(Check(name="cited runs exist", criterion="accuracy", passed=not unknown,
                            detail=f"not in the store: {', '.join(unknown)}" if unknown else ""))

    lowered = answer.lower()
    absent = [] if rec is None else [f for f in ("model", "resolution") if not _mentions(lowered, rec, f)]
    absent += [name for name, words in _FIELD_WORDS.items() if not _has(lowered, words)]
    checks.append(Check(name="all fields present", criterion="completeness", passed=not absent,
                        detail=f"missing: {', '.join(absent)}" if absent else ""))
    return checks


def _presents_recommendation(transcript: dict[str, Any]) -> bool:
    """Whether the final answer is the one written for a (new) recommendation: its turn ranked
    configs. A later follow-up answer talks about other configs too."""
    messages = transcript.get("messages") or []
    last_human = max((i for i, m in enumerate(messages) if m.get("role") == "human"), default=-1)
    return any(c.get("name") == "rank_configs" for m in messages[last_human + 1:]
               for c in m.get("tool_calls") or [])


def _mentions(lowered: str, rec: Any, field: str) -> bool:
    c, fast = rec.best.config, facts.speed_pick(rec)
    if field == "model":
        names = {c.model.lower(), c.spec.label.lower()}
        if fast is not None:
            names |= {fast.config.model.lower(), fast.config.spec.label.lower()}
        return any(n in lowered for n in names)
    return str(c.resolution) in lowered or (fast is not None
                                            and str(fast.config.resolution) in lowered)


def _cited_runs(transcript: dict[str, Any], rec: Any) -> list[str]:
    ids = [h.run_id for h in rec.similar_runs] if rec is not None else []
    for out in transcript.get("tool_outputs") or []:
        if out.get("tool") in ("similar_runs", "search_runs"):
            try:
                ids += [r["run_id"] for r in json.loads(out["output"]).get("runs", [])]
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return list(dict.fromkeys(ids))


def deterministic_score(checks: list[Check], criterion: str) -> int:
    failed = sum(not c.passed for c in checks if c.criterion == criterion)
    return 5 if failed == 0 else 3 if failed == 1 else 1


def language_rule(answer: str) -> str:
    """The rubric's line for an answer in another language than English: a 1.5B judge scored a
    complete French card 1/1/1 ("the accuracy is not provided") next to "précision 85.6 %"."""
    lang = detect(answer)
    if lang in (None, "en") or lang not in NAMES:
        return ""
    return (f"\nThe answer is in {NAMES[lang]}, the user's language: judge what it says, not the "
            f"language. Numbers, model names and config values read the same in {NAMES[lang]} "
            f"(e.g. {_GLOSSES.get(lang, '')}).")


_GLOSSES = {
    "fr": "'précision' = accuracy, 'époques' = epochs, 'préentraîné' = pretrained, 'Pourquoi' = why",
    "de": "'Genauigkeit' = accuracy, 'Epochen' = epochs, 'vortrainiert' = pretrained, 'Warum' = why",
    "es": "'precisión' = accuracy, 'épocas' = epochs, 'preentrenado' = pretrained, 'Por qué' = why",
    "it": "'accuratezza' = accuracy, 'epoche' = epochs, 'pre-addestrato' = pretrained, "
          "'Perché' = why",
    "pt": "'precisão' = accuracy, 'épocas' = epochs, 'pré-treinado' = pretrained, 'Porquê' = why",
}


# --- the graph -----------------------------------------------------------------------------------

class JudgeState(TypedDict, total=False):
    transcript: dict[str, Any]
    checks: list[dict[str, Any]]
    rubric: dict[str, Any] | None
    llm_error: str | None
    verdict: dict[str, Any]


def build_judge(model: BaseChatModel | None, *, store: Any = None, retries: int = 2) -> Any:
    """The compiled judge graph: input `{"transcript": ...}`, output adds `verdict` (a dict)."""

    def checks(state: JudgeState) -> dict[str, Any]:
        found = deterministic_checks(state["transcript"], store)
        return {"checks": [c.model_dump() for c in found]}

    def rubric(state: JudgeState) -> dict[str, Any]:
        if model is None:
            return {"rubric": None, "llm_error": "no LLM given"}
        t = state["transcript"]
        shown: dict[str, Any] = {}
        try:
            shown = facts.recommendation_facts(
                Recommendation.model_validate(t.get("recommendation")), compact=True)
        except ValidationError:
            shown = {"tool_outputs": [o.get("output", "")[:2000] for o in t.get("tool_outputs") or []]}
        answer = str(t.get("answer") or "")
        messages = [SystemMessage(prompts.JUDGE_SYSTEM + RUBRIC_RULES + language_rule(answer)),
                    HumanMessage(prompts.judge_user(answer, shown, state["checks"]))]
        try:
            result = invoke_structured(with_max_tokens(model, RUBRIC_TOKENS), Rubric, messages,
                                       retries=retries)
        except Exception as exc:  # noqa: BLE001 - the verdict says so and uses the checks
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            log.warning("judge LLM failed: %s", first)
            return {"rubric": None, "llm_error": f"{type(exc).__name__}: {first}"[:300]}
        return {"rubric": result.model_dump(), "llm_error": None}

    def combine(state: JudgeState) -> dict[str, Any]:
        found = [Check.model_validate(c) for c in state["checks"]]
        grades = state.get("rubric")
        out: dict[str, Any] = {}
        for criterion in CRITERIA:
            det = deterministic_score(found, criterion)
            failed = "; ".join(f"{c.name}: {c.detail}".rstrip(": ") for c in found
                               if c.criterion == criterion and not c.passed)
            det_reason = f"failed checks: {failed}" if failed else "all automatic checks passed"
            if grades is not None:
                item = grades[criterion]
                out[criterion] = CriterionVerdict(score=min(det, item["score"]),
                                                  deterministic_score=det,
                                                  llm_score=item["score"],
                                                  reason=f"{item['reason']} ({det_reason})")
            else:
                out[criterion] = CriterionVerdict(score=det, deterministic_score=det,
                                                  reason=f"{det_reason} (no LLM grade: "
                                                         f"{state.get('llm_error')})")
        verdict = Verdict(**out, checks=found, llm_used=grades is not None,
                          llm_error=state.get("llm_error"),
                          passed=all(v.score >= PASS_SCORE for v in out.values()))
        return {"verdict": verdict.model_dump(mode="json")}

    graph = StateGraph(JudgeState)
    graph.add_node("checks", checks)
    graph.add_node("rubric", rubric)
    graph.add_node("combine", combine)
    graph.add_edge(START, "checks")
    graph.add_edge("checks", "rubric")
    graph.add_edge("rubric", "combine")
    graph.add_edge("combine", END)
    return graph.compile(name="metallmix-judge")


def judge_transcript(transcript_json: str | dict[str, Any], model: BaseChatModel | None, *,
                     store: Any = None, retries: int = 2) -> Verdict:
    """Grade one conversation (`agent.graph.transcript` output, as JSON text or a dict).
    `store`: the run store whose runs may be cited (None skips that check)."""
    if isinstance(transcript_json, str):
        try:
            transcript_json = json.loads(transcript_json)
        except ValueError as exc:
            raise ConfigError(f"transcript is not JSON: {exc}") from None
    if not isinstance(transcript_json, dict):
        raise ConfigError("transcript must be a JSON object (see agent.graph.transcript)")
    state = build_judge(model, store=store, retries=retries).invoke({"transcript": transcript_json})
    return Verdict.model_validate(state["verdict"])


__all__ = ["CRITERIA", "RUBRIC_RULES", "Check", "CriterionVerdict", "Rubric", "RubricItem", "Verdict",
           "build_judge", "deterministic_checks", "judge_transcript"]
