"""What the follow-up loop shows a small model, kept small: slim tool specs, a compact history and
compact tool outputs; and the tool calls the graph can plan without asking the model.

Measured with the 1.5B model on 2 contended cores, prompt processing runs at 3-8 tokens/s, so
every prompt token counts. The real tools' schemas (the dataset's traits and a full training
config, with descriptions) cost ~3,900 tokens when bound; the model needs neither the traits (the
graph knows them) nor the config fields it does not want to change. So the model sees

- `SLIM_TOOLS`: explain_config(model, and only the settings to change), rank_configs(budget),
  search_runs(question) — and `tool_args` turns a slim call into the real tool's arguments (the
  traits and the recommended config filled in; a call in the full form passes with the traits
  filled in when missing);
- `llm_history`: the user's earlier messages only (the current recommendation is in the prompt's
  CONTEXT; with earlier answers in view, the 1.5B model compared a new config with the previous
  turn's recommendation instead of the current one), then the current turn with its tool outputs
  trimmed by `compact_output` (the full outputs stay in the state: they are what the grounding
  check reads);
- `planned_calls`: "why not a ViT?" names a model, so the graph calls explain_config for it with
  the recommended config's other settings, and the model only writes the answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.entities import find_mentions, resolve_model
from agent.intents import read_intent
from agent.toolcalls import message_text

PREVIOUS_TURNS = 2  # earlier user messages kept
MAX_PLANNED = 3  # at most this many models compared in one turn
_LIST_ITEMS = {"top": 3, "factors": 5, "runs": 3, "why_best": 4, "pareto": 0}
_DROP_KEYS = ("traits_used", "unknown_traits", "candidates_scored", "reading", "label_smoothing")


class ExplainCall(BaseModel):
    """Predict the accuracy and training time of one config on the user's dataset, with the
    reasons. The dataset's traits are filled in for you; settings you leave out are those of the
    recommended config."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model, e.g. vit_tiny_patch16_224, resnet18, densenet121")
    pretrained: bool | None = None
    scheme: Literal["end_to_end", "linear_probing", "knn"] | None = None
    resolution: int | None = Field(None, description="input size in px")
    lr: float | None = None
    batch_size: int | None = None
    epochs: int | None = None


class RankCall(BaseModel):
    """Rank configs for the user's dataset again under another compute budget (the traits are
    filled in for you)."""

    model_config = ConfigDict(extra="forbid")

    budget: str | None = Field(None, description="e.g. 'CPU only', '10 minutes on a T4'")
    top_k: int = Field(3, ge=1, le=10)


class SearchCall(BaseModel):
    """Search past training runs with a question in words, e.g. 'ViT on ultrasound'."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=300)
    k: int = Field(3, ge=1, le=10)


_SLIM: dict[str, type[BaseModel]] = {"explain_config": ExplainCall, "rank_configs": RankCall,
                                     "search_runs": SearchCall}


def slim_tools(names: Sequence[str]) -> list[dict[str, Any]]:
    """OpenAI tool specs of the slim calls, for the tools in `names` that have one."""
    out = []
    for name in names:
        if name in _SLIM:
            spec = convert_to_openai_tool(_SLIM[name])
            spec["function"]["name"] = name
            out.append(spec)
    return out


def tool_args(name: str, args: dict[str, Any], traits: dict[str, Any],
              pick: dict[str, Any] | None) -> dict[str, Any] | str:
    """The real tool's arguments for a call the model made (slim or full form), or an error text
    for the model (what was wrong, in one line)."""
    if name not in _SLIM or "traits" in args or "config" in args or name == "similar_runs":
        full = dict(args)
        if name in ("explain_config", "rank_configs", "similar_runs"):
            full.setdefault("traits", traits)
        return full
    try:
        call = _SLIM[name].model_validate(args)
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
    given = call.model_dump(exclude_none=True)
    if name == "explain_config":
        config = dict(pick or {})
        config.update(given)
        config["model"] = resolve_model(call.model) or call.model
        return {"traits": traits, "config": config}
    if name == "rank_configs":
        return {"traits": traits, **given}
    return given


def planned_calls(text: str, pick: dict[str, Any] | None) -> list[dict[str, Any]]:
    """explain_config calls for the known models a follow-up names (other than the pick's), with
    the pick's other settings: what "why not a ViT?" or "what about ResNet-18?" asks."""
    if not pick:
        return []
    models: list[str] = []
    for mention in find_mentions(text):
        if mention.kind != "model":
            continue
        name = resolve_model(mention.text)
        if name and name != pick.get("model") and name not in models:
            models.append(name)
    return [{"name": "explain_config", "args": {"model": m}} for m in models[:MAX_PLANNED]]


def compact_output(output: str) -> str:
    """A tool output trimmed for the model: long lists cut, bookkeeping keys dropped."""
    try:
        data = json.loads(output)
    except ValueError:
        return output

    def trim(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: trim(v, k) for k, v in value.items() if k not in _DROP_KEYS}
        if isinstance(value, list):
            keep = _LIST_ITEMS.get(key)
            items = value if keep is None else value[:keep]
            return [trim(v) for v in items]
        return value

    return json.dumps(trim(data), ensure_ascii=False, separators=(",", ":"))


def llm_history(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as the follow-up model sees it (see the module docstring)."""
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=0)
    earlier = [HumanMessage(message_text(m)) for m in messages[:last_user]
               if isinstance(m, HumanMessage)][-PREVIOUS_TURNS:]
    current = [ToolMessage(content=compact_output(message_text(m)), tool_call_id=m.tool_call_id,
                           name=m.name) if isinstance(m, ToolMessage) else m
               for m in messages[last_user:]]
    return [*earlier, *current]


__all__ = ["ExplainCall", "RankCall", "SearchCall", "compact_output", "llm_history",
           "planned_calls", "slim_tools", "tool_args"]


def asks_why_pick(text: str) -> bool:
    """"Why did you pick that one?" ("pourquoi ce modèle ?"): a why-question that names no other
    model (those are `why_not`, answered by `agent.nodes.plan`) and is not "why not ...?"."""
    return read_intent(text).kind == "why_pick"


def why_pick_answer(facts: dict[str, Any]) -> str:
    """The answer to "why that one?" written from the recommendation's facts
    (`prompts.recommendation_facts`): its prediction, the strongest SHAP factors and similar runs.
    A small model asked this answered with whatever line of its context came last."""
    r = facts["recommended"]
    lo, hi = r["interval_80_pct"]
    reason = ("you asked for speed and it is the faster config predicted close to the best"
              if str(facts.get("chosen_for", "")).startswith("speed") else
              "it has the best ranking score of the meta-learner for your dataset")
    lines = [f"I picked **{r['model_name']}** ({'pretrained' if r['pretrained'] else 'from scratch'}, "
             f"{r['scheme']}, {r['resolution_px']} px) because {reason}: "
             f"predicted accuracy {r['predicted_accuracy_pct']} % "
             f"(80 % interval {lo}–{hi} %), training time {r['training_time']}."]
    if facts.get("why"):
        base = facts.get("average_over_past_runs_pct")
        lead = (f"Against the average prediction over past runs ({base} %), the strongest factors"
                if base is not None else "The strongest factors")
        lines.append(f"{lead} (SHAP, accuracy points): " + "; ".join(facts["why"][:3]) + ".")
    if facts.get("similar_past_runs"):
        lines.append("Similar past runs: " + "; ".join(facts["similar_past_runs"][:2]) + ".")
    return "\n\n".join(lines)
