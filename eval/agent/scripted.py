"""`--llm scripted`: a deterministic stand-in for a competent small LLM, driven by the scenario.

    brain = ScenarioBrain()
    model = ScriptedChatModel(script=brain)       # agent.testing: calls brain(messages)
    brain.start_turn(turn.scripted)               # before each user turn

It recognises each prompt of the advisor and the judge by its system prompt and answers like a
careful model would, so the scripted suite tests the GRAPH (routing, merging, validation,
grounding, launch gating, the roots) rather than an LLM:

- structured extraction: the `scripted.extraction` the scenario file states for that turn (what a
  competent model returns for the message; `invalid` = unusable output). The graph still checks
  every extracted number against the message and merges the regex extraction; the final traits
  are then scored against the persona's TRUE traits, which are stated separately;
- a question for a missing trait: one plain question naming it;
- the recommendation answer: written from the FACTS JSON, every number copied as given (unless
  the scenario scripts drafts, e.g. one with an invented number, to test the grounding check);
- follow-ups: the scenario's scripted replies first (e.g. a tool call an injection asked for:
  for injection scenarios the model deliberately FALLS FOR the injection, so the graph's defences
  are what is tested); then the default: a question naming a model ("why not a ViT?") gets an
  `explain_config` call for that model, a tool result is summarised from its own numbers, and any
  other question is answered from the CONTEXT (off-topic chatter is declined);
- the judge's rubric: an independent string-level reading of the answer against the TOOL FACTS
  (model named, numbers found in the facts, fields mentioned, layout), NOT the automatic checks
  in its prompt; its agreement with the deterministic checks is a plumbing check, not evidence
  about real judges.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agent import prompts
from eval.agent.scenario import ScriptedTurn

INVALID_EXTRACTION = "Sorry, I am not sure what you mean."
#: words in a question -> the model a careful LLM would explain (first match wins)
MODEL_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bdino\b", "vit_base_patch16_224.dino"), (r"\bclip\b", "vit_base_patch16_clip_224"),
    (r"\bvit[- ]?tiny\b", "vit_tiny_patch16_224"), (r"\bvits?\b|vision transformer", "vit_base_patch16_224"),
    (r"\bresnet[- ]?50\b", "resnet50"), (r"\bresnet", "resnet18"),
    (r"\befficientnet[- ]?lite", "efficientnet_lite0"), (r"\befficientnet", "efficientnet_b0"),
    (r"\bmobilenet", "mobilenetv3_small_100"), (r"\bdensenet", "densenet121"),
    (r"\bvgg", "vgg16"), (r"\balexnet\b", "alexnet"), (r"\binception\b", "inception_v3"),
)
_CONFIG_KEYS = ("pretrained", "scheme", "optimizer", "lr", "weight_decay", "batch_size", "epochs",
                "augmentation", "label_smoothing")


def prompt_kind(messages: list[BaseMessage]) -> str:
    """Which prompt this is: extract, ask, answer, followup, judge or user (simulated user)."""
    from eval.agent.simulate import USER_SYSTEM

    system = messages[0].content if messages and isinstance(messages[0], SystemMessage) else ""
    for kind, prompt in (("extract", prompts.EXTRACT_SYSTEM), ("ask", prompts.ASK_SYSTEM),
                         ("answer", prompts.ANSWER_SYSTEM), ("followup", prompts.FOLLOWUP_SYSTEM),
                         ("judge", prompts.JUDGE_SYSTEM), ("user", USER_SYSTEM)):
        if isinstance(system, str) and system.startswith(prompt):
            return kind
    raise ValueError(f"the scripted model got an unknown prompt: {str(system)[:80]!r}")


def _json_after(text: str, marker: str, stop: str | None = None) -> Any:
    body = text.split(marker, 1)[1]
    if stop and stop in body:
        body = body.split(stop, 1)[0]
    return json.loads(body.strip())


def _between_markers(text: str) -> str:
    return text.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0] if "<<<\n" in text else text


class ScenarioBrain:
    """The script of `ScriptedChatModel` for one scenario (see the module docstring)."""

    def __init__(self) -> None:
        self.turn = ScriptedTurn()
        self.extraction: dict[str, Any] | str | None = None
        self.answers: list[str] = []
        self.followups: list[Any] = []
        self.kinds: list[str] = []  # the prompt kind of every call, in order

    def start_turn(self, scripted: ScriptedTurn, extraction: dict[str, Any] | None = None) -> None:
        """The scripted replies of the next user turn (`extraction` overrides the file's, for a
        simulated user's turn)."""
        self.turn = scripted
        self.extraction = extraction if extraction is not None else scripted.extraction
        self.answers = list(scripted.answer)
        self.followups = list(scripted.followup)

    def __call__(self, messages: list[BaseMessage]) -> Any:
        kind = prompt_kind(messages)
        self.kinds.append(kind)
        return getattr(self, f"_{kind}")(messages)

    # -- the advisor's prompts ----------------------------------------------------------------
    def _extract(self, messages: list[BaseMessage]) -> Any:
        if self.extraction == "invalid":
            return INVALID_EXTRACTION
        return {"json": self.extraction or {}}

    def _ask(self, messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        m = re.search(r"Ask for: (.+?)\.?$", text, re.MULTILINE)
        return f"Could you tell me {m.group(1) if m else 'more about your dataset'}?"

    def _answer(self, messages: list[BaseMessage]) -> str:
        if self.answers:
            return self.answers.pop(0)
        facts = _json_after(str(messages[-1].content), "FACTS (JSON):\n", "\nYour previous answer")
        return write_answer(facts)

    def _followup(self, messages: list[BaseMessage]) -> Any:
        if self.followups:
            return self.followups.pop(0)
        system = str(messages[0].content)
        context = _json_after(system, "CONTEXT (JSON):\n", "\nYour previous answer")
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return summarize_tool(last.name or "", str(last.content))
        question = str(last.content) if isinstance(last, HumanMessage) else ""
        return followup_reply(question, context)

    # -- the others -----------------------------------------------------------------------------
    def _judge(self, messages: list[BaseMessage]) -> dict[str, Any]:
        text = str(messages[-1].content)
        facts = text.split("TOOL FACTS (JSON):\n", 1)[1].split("\n\nAUTOMATIC CHECKS", 1)[0]
        return {"json": rubric(_between_markers(text), facts)}

    def _user(self, messages: list[BaseMessage]) -> str:
        return "I don't know."  # the runner uses the template user with the scripted backend


# --- what the careful model writes ---------------------------------------------------------------

def _config_text(r: dict[str, Any]) -> str:
    return (f"**{r['model_name']}** (`{r['model']}`, {'pretrained' if r['pretrained'] else 'from scratch'}"
            f", {r['scheme']}) at {r['resolution_px']} px: optimizer {r['optimizer']}, learning rate "
            f"{r['lr']}, weight decay {r['weight_decay']}, batch size {r['batch_size']}, "
            f"{r['epochs']} epochs, {r['augmentation']} augmentation")


def _outcome_text(r: dict[str, Any]) -> str:
    lo, hi = r["interval_80_pct"]
    return (f"predicted accuracy {r['predicted_accuracy_pct']} % (80 % interval {lo}–{hi} %), "
            f"training time {r['training_time']}")


def write_answer(facts: dict[str, Any]) -> str:
    """The recommendation answer from the FACTS, every number copied as given."""
    r = facts["recommended"]
    lines = [f"### Recommendation\nTrain {_config_text(r)}.", "",
             f"Expected: {_outcome_text(r)}. Budget: {facts['budget']}."]
    if facts.get("chosen_for", "").startswith("speed") and facts.get("best_within_budget"):
        best = facts["best_within_budget"]
        lines.append(f"You asked for speed, so this is the faster pick; the top-ranked pick within "
                     f"the budget is {best['model_name']} at {best['predicted_accuracy_pct']} %.")
    if facts.get("why"):
        lines += ["", "### Why", *[f"- {w}" for w in facts["why"][:4]]]
    if facts.get("similar_past_runs"):
        lines += ["", "### Similar past runs", *[f"- {c}" for c in facts["similar_past_runs"][:3]]]
    alternatives = []
    if facts.get("faster_alternative"):
        f = facts["faster_alternative"]
        alternatives.append(f"- Faster: {f['model_name']}, {_outcome_text(f)}.")
    if facts.get("more_accurate_alternative"):
        m = facts["more_accurate_alternative"]
        alternatives.append(f"- More accurate: {m['model_name']}, {_outcome_text(m)}.")
    if alternatives:
        lines += ["", "### Alternatives", *alternatives]
    notes = list(facts.get("notes") or [])
    if facts.get("unknown_traits"):
        notes.append("not known, so imputed: " + ", ".join(facts["unknown_traits"]))
    if notes:
        lines += ["", "### Notes", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


def model_asked_about(question: str) -> str | None:
    """The model a question names ("why not a ViT?" -> vit_base_patch16_224), if any known."""
    from knowledge.search_space import MODELS

    for pattern, name in MODEL_WORDS:
        if re.search(pattern, question, re.IGNORECASE) and name in MODELS:
            return name
    return None


def followup_reply(question: str, context: dict[str, Any]) -> Any:
    """A follow-up's first reply: an explain_config call for a model the question names, else an
    answer from the CONTEXT (off-topic chatter is declined)."""
    rec = (context.get("recommendation") or {}).get("recommended")
    model = model_asked_about(question)
    if model and rec:
        config = {"model": model, "resolution": rec["resolution_px"],
                  **{k: rec[k] for k in _CONFIG_KEYS if rec.get(k) is not None}}
        return {"content": "", "tool_calls": [{"name": "explain_config", "args": {
            "traits": context.get("traits") or {}, "config": config}}]}
    if not rec:
        return "I can help you choose a model and training settings for your image dataset."
    if re.search(r"\b(why|how come|reason|explain)\b", question, re.IGNORECASE):
        why = context["recommendation"].get("why") or []
        return (f"I recommended {rec['model_name']} because the meta-learner predicts it best for "
                f"your data: {_outcome_text(rec)}. The main factors: "
                + ("; ".join(why[:3]) or "none stood out") + ".")
    return ("I can only help with choosing and training an image classifier. Your recommendation "
            f"stands: {rec['model_name']}, {_outcome_text(rec)}.")


def summarize_tool(tool: str, output: str) -> str:
    """The answer after a tool call: the tool's own numbers, in words."""
    try:
        data = json.loads(output)
    except ValueError:
        return f"The {tool} tool returned: {output[:500]}"
    if not isinstance(data, dict):
        return f"The {tool} tool returned: {output[:500]}"
    if data.get("error"):
        return f"The {tool} tool reported a problem, so I cannot answer that: {data['error']}"
    if tool == "explain_config":
        lo, hi = data["interval_80_pct"]
        factors = "; ".join(f"{f['factor']} {f['value']} ({f['points']} points)"
                            for f in data.get("factors", [])[:3])
        return (f"{data['model_name']} would reach a predicted {data['predicted_accuracy_pct']} % "
                f"(80 % interval {lo}–{hi} %) in {data['training_time']}. Main factors: {factors}.")
    if tool == "rank_configs" and data.get("top"):
        top = data["top"][0]
        return (f"With budget {data['budget']}, the best is {top['model_name']} at "
                f"{top['predicted_accuracy_pct']} % in {top['training_time']}.")
    if data.get("runs") is not None:
        return "Past runs: " + "; ".join(r["card"] for r in data["runs"][:3])
    return f"The {tool} tool returned: {output[:500]}"


# --- the scripted judge --------------------------------------------------------------------------

_COMPLETENESS_WORDS: tuple[tuple[str, ...], ...] = (
    ("pretrained", "from scratch"), ("end_to_end", "linear_probing", "knn", "fine-tun"), ("px",),
    ("adamw", "adam", "sgd"), ("learning rate", "lr "), ("weight decay",), ("batch",), ("epoch",),
    ("augmentation",), ("accuracy",), ("training time", " min", " s ", " h "), ("why", "because",
                                                                                "factor"),
    ("similar", "past run"), ("faster", "alternative"))


def rubric(answer: str, facts_json: str) -> dict[str, dict[str, Any]]:
    """A string-level grade of `answer` against the facts (see the module docstring)."""
    lowered = answer.lower()
    lines = [line for line in answer.splitlines() if line.strip()]
    if not answer.strip():
        fmt = (1, "there is no answer")
    elif len(lines) >= 3 and "{" not in answer:
        fmt = (5, "organised in short sections")
    else:
        fmt = (3, "a single block or raw data")
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", answer)
    found = [n for n in numbers if n in facts_json]
    share = len(found) / len(numbers) if numbers else 1.0
    try:
        facts = json.loads(facts_json)
        named = (facts.get("recommended") or {}).get("model_name", "")
    except ValueError:
        named = ""
    if named and named.lower() not in lowered:
        acc = (2, f"it does not name the recommended {named}")
    elif share >= 0.95:
        acc = (5, "its numbers are the tools' numbers")
    elif share >= 0.8:
        acc = (4, f"{len(numbers) - len(found)} numbers not found in the facts")
    else:
        acc = (2, f"{len(numbers) - len(found)} of {len(numbers)} numbers not in the facts")
    hits = sum(any(w in lowered for w in words) for words in _COMPLETENESS_WORDS)
    total = len(_COMPLETENESS_WORDS)
    comp = (5 if hits == total else 4 if hits >= total - 2 else 3 if hits >= total - 5 else 2,
            f"{hits} of {total} expected parts present")
    return {name: {"score": score, "reason": reason}
            for name, (score, reason) in (("format", fmt), ("accuracy", acc), ("completeness", comp))}


__all__ = ["INVALID_EXTRACTION", "ScenarioBrain", "followup_reply", "model_asked_about",
           "prompt_kind", "rubric", "summarize_tool", "write_answer"]
