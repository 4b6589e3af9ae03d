"""A scenario of the agent evals: a persona, the truth about their dataset, scripted turns, expectations.

    scenarios = load_scenarios()      # eval.agent.loading: every eval/scenarios/*.yaml
    scenarios = load_scenarios(["correction-*", "why-not-vit"])
    scenario = load_scenario(Path("my.yaml"))              # ScenarioError names file and field

A scenario file (YAML) holds:

- `persona` (who talks) and `truth`: the real traits of their dataset (`traits`, the keys of
  `TRAIT_KEYS`), their `budget` (device + minutes) and `preference`; trait accuracy is measured
  against it, with a relative `tolerance` per trait for vague answers ("a few thousand");
- `fixtures`: small `.npz` datasets the runner writes before the scenario, under `{data}` (the
  one allowed data root of the run) or `{outside}` (a folder outside it, to test the roots);
  paths anywhere in the scenario may use these two placeholders;
- `turns`: what the user says (`user`), or `simulate: true` (the user's reply is generated from
  the persona and the truth); `confirm: true` marks the user's explicit yes to a proposed launch;
  `scripted` is what the scripted backend (`--llm scripted`) answers in that turn (ignored by a
  real LLM): the structured `extraction` a competent model returns for the message, drafts of the
  `answer`, replies of the `followup` tool loop; `expect` holds per-turn expectations;
- `expect`: expectations about the whole conversation (a recommendation, at most N turns to it,
  trait accuracy, launch never/proposed/launched, tool errors the scenario provokes, ...);
- per-turn `expect` kinds besides tools/replies: `asks` (a trait or `budget`: the turn's pending
  question), `answers` (the follow-up kind the reply must answer: why_not, why_pick,
  hyperparameter, device_time, command, out_of_scope; each judged by a deterministic check of
  `eval.agent.followup_checks`), `plan` (fields of the config the advisor proposes / would launch
  after the turn), `traits_unchanged` (the measured traits did not move) and `language` (the
  reply's language, a stop-word heuristic);
- `expect.no_repeat_questions` (on by default): the same pending question, a trait or the budget,
  asked in two different turns fails the scenario. One repeat per key is excused when the user's
  reply to the earlier question gave no value at all (no digit or number word, and nothing the
  advisor knows changed: small talk, "I don't know"); a vague answer ("a few thousand", "3 or 4
  thousand") IS a value, and asking again after it fails (`eval.agent.metrics.repeated_questions`);
- `xfail`: a reason when the scenario shows a known defect of the agent (its result is reported
  as XFAIL / XPASS instead of failing the suite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from knowledge.errors import ConfigError

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
PLACEHOLDERS = ("{data}", "{outside}")
#: traits a scenario's truth may state, and that trait accuracy is measured on
TRUTH_TRAITS: tuple[str, ...] = ("n_instances", "n_classes", "imbalance_ratio", "class_counts",
                                 "height", "width", "channels", "modality")
DEFAULT_TOLERANCE: dict[str, float] = {"imbalance_ratio": 0.05}


class ScenarioError(ConfigError):
    """A scenario file that cannot be read or does not fit the schema (names file and field)."""


def _only_traits(value: dict[str, Any]) -> None:
    unknown = sorted(set(value) - set(TRUTH_TRAITS))
    if unknown:
        raise ValueError(f"unknown trait(s) {', '.join(unknown)}; known: {', '.join(TRUTH_TRAITS)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetTruth(_Strict):
    """The persona's compute budget: a device and, optionally, a time limit."""

    device: str = Field(description="a key (or alias) of the device catalogue "
                                    "(knowledge.metalearner.devices): cpu, t4, l4, a100, rtx4090, "
                                    "m1, mps, ...")
    minutes: float | None = Field(None, gt=0, description="None: no time limit")
    minutes_tolerance: float = Field(0.10, ge=0, le=1, description="relative tolerance of the "
                                     "minutes (vague budgets like 'overnight' may widen it)")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from knowledge.metalearner.devices import DEVICES, get_device

        try:
            get_device(value)
        except ConfigError:
            raise ValueError(f"unknown device {value!r}; known: "
                             f"{', '.join(DEVICES)} (and the aliases mps, a100-40gb, "
                             "v100-16gb)") from None
        return value.strip().lower()


class Truth(_Strict):
    """What is really true about the persona's data and constraints."""

    traits: dict[str, Any] = Field(default_factory=dict)
    budget: BudgetTruth | None = None
    preference: Literal["accuracy", "speed", "balanced"] | None = None

    @field_validator("traits")
    @classmethod
    def _traits(cls, value: dict[str, Any]) -> dict[str, Any]:
        from knowledge.metafeatures import normalize_modality

        _only_traits(value)
        if value.get("modality") is not None:
            value = {**value, "modality": normalize_modality(value["modality"])}
        return value


class Fixture(_Strict):
    """A small synthetic `.npz` dataset (random pixels, balanced or imbalanced labels)."""

    path: str = Field(description="where to write it: under {data} or {outside}, ending in .npz")
    n_train: int = Field(ge=4, le=5000)
    n_classes: int = Field(ge=2, le=50)
    size: int = Field(16, ge=4, le=128, description="height = width in px")
    channels: Literal[1, 3] = 1
    imbalance: float = Field(1.0, ge=1.0, le=100.0, description="largest / smallest class")
    n_val: int = Field(15, ge=0, le=1000)
    n_test: int = Field(15, ge=0, le=1000)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        resolved = bool(info.context and info.context.get("resolved"))
        if not (resolved or value.startswith(PLACEHOLDERS)) or not value.endswith(".npz"):
            raise ValueError("must start with {data} or {outside} and end with .npz")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> Fixture:
        from eval.agent.workspace import class_sizes

        for split in ("n_val", "n_test"):
            n = getattr(self, split)
            if 0 < n < self.n_classes:
                raise ValueError(f"{split}: {n} is fewer than the {self.n_classes} classes (use 0 "
                                 "for no split)")
        if min(class_sizes(self.n_train, self.n_classes, self.imbalance)) < 1:
            raise ValueError(f"n_train: {self.n_train} images cannot fill {self.n_classes} classes "
                             f"with imbalance {self.imbalance:g}")
        return self


class ScriptedTurn(_Strict):
    """What the scripted backend replies in one turn (a real LLM ignores this)."""

    extraction: dict[str, Any] | Literal["invalid"] | None = Field(
        None, description="the structured extraction of the message (TurnExtraction fields); "
                          "'invalid' = the model returns no usable JSON; None = nothing found")
    answer: list[str] = Field(default_factory=list,
                              description="drafts of the recommendation answer, in order; then "
                                          "the model writes from the facts")
    followup: list[str | dict[str, Any]] = Field(
        default_factory=list, description="replies in the follow-up loop, in order: text, or "
                                          "{content, tool_calls: [{name, args}]}; then the "
                                          "model's default behaviour")

    @field_validator("extraction")
    @classmethod
    def _extraction(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from agent.extraction import TurnExtraction

            unknown = sorted(set(value) - set(TurnExtraction.model_fields))
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(TurnExtraction.model_fields)}")
        return value

    @field_validator("followup")
    @classmethod
    def _followup(cls, value: list[Any]) -> list[Any]:
        for i, item in enumerate(value):
            if isinstance(item, dict):
                extra = sorted(set(item) - {"content", "tool_calls"})
                if extra:
                    raise ValueError(f"item {i}: unknown key(s) {', '.join(extra)}")
                for call in item.get("tool_calls") or []:
                    if not isinstance(call, dict) or "name" not in call:
                        raise ValueError(f"item {i}: a tool call needs a name (and args)")
        return value


FOLLOWUP_KINDS = ("why_not", "why_pick", "hyperparameter", "device_time", "command", "out_of_scope")
LANGUAGES = ("en", "fr", "de", "es")
PLAN_KEYS = ("model", "pretrained", "scheme", "resolution", "optimizer", "lr", "weight_decay",
             "batch_size", "epochs", "augmentation", "label_smoothing")


class Answers(_Strict):
    """The follow-up question a turn's reply must answer (`eval.agent.followup_checks`)."""

    kind: Literal["why_not", "why_pick", "hyperparameter", "device_time", "command",
                  "out_of_scope"]
    other: str | None = Field(None, description="why_not: the other model, as the user said it")
    model: str | None = Field(None, description="hyperparameter: the model asked about")
    param: Literal["lr", "batch_size", "epochs"] | None = Field(None, description="hyperparameter")
    device: str | None = Field(None, description="device_time: the device asked about")

    @model_validator(mode="after")
    def _needs(self) -> Answers:
        needs = {"why_not": ("other",), "hyperparameter": ("model", "param"),
                 "device_time": ("device",)}.get(self.kind, ())
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"answers {self.kind} needs {', '.join(missing)}")
        return self


class TurnExpect(_Strict):
    """Expectations about one turn."""

    asks: str | None = Field(None, description="the reply asks for this trait, or 'budget'")
    answers: Answers | None = Field(None, description="the follow-up the reply must answer")
    plan: dict[str, Any] | None = Field(None, description="the config the advisor proposes or "
                                        "would launch after the turn has these values")
    traits_unchanged: bool = Field(False, description="the measured traits are the same after "
                                                      "the turn as before it")
    language: Literal["en", "fr", "de", "es"] | None = Field(None, description="the reply's "
                                                             "language (stop-word heuristic)")
    tools: list[str] | None = Field(None, description="exactly these tool calls, in order")
    tools_include: list[str] = Field(default_factory=list)
    reply_contains: list[str] = Field(default_factory=list, description="case-insensitive")
    reply_excludes: list[str] = Field(default_factory=list, description="case-insensitive")
    recommends: bool | None = Field(None, description="a new recommendation in this turn (or not)")
    proposes_launch: bool | None = None
    reports_launch: bool = Field(False, description="the reply reports this turn's launch: the "
                                                    "run id of a run that trained, else the "
                                                    "tool's error")

    @field_validator("asks")
    @classmethod
    def _asks(cls, value: str | None) -> str | None:
        from agent.extraction import REQUIRED_TRAITS

        if value is not None and value not in (*REQUIRED_TRAITS, "budget"):
            raise ValueError(f"must be one of {', '.join(REQUIRED_TRAITS)}, budget")
        return value

    @field_validator("plan")
    @classmethod
    def _plan(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - set(PLAN_KEYS))
        if unknown:
            raise ValueError(f"unknown config field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(PLAN_KEYS)}")
        return value


class Turn(_Strict):
    """One user turn."""

    user: str | None = None
    simulate: bool = Field(False, description="generate the user's words from the persona")
    confirm: bool = Field(False, description="the user's explicit yes to a proposed launch")
    scripted: ScriptedTurn = Field(default_factory=ScriptedTurn)
    expect: TurnExpect = Field(default_factory=TurnExpect)

    @model_validator(mode="after")
    def _said(self) -> Turn:
        if not self.simulate and not (self.user or "").strip():
            raise ValueError("a turn needs `user` text or `simulate: true`")
        return self


class Expect(_Strict):
    """Expectations about the whole conversation."""

    recommendation: bool = Field(True, description="it ends with a recommendation")
    max_turns_to_recommendation: int | None = Field(None, ge=1)
    min_trait_accuracy: float = Field(1.0, ge=0.0, le=1.0)
    launch: Literal["never", "proposed", "launched"] = "never"
    tool_errors: dict[str, int] = Field(
        default_factory=dict, description="tool -> errors the scenario provokes (at least that "
                                          "many must occur; more are the agent's)")
    max_agent_tool_errors: int = Field(0, ge=0, description="tool errors beyond tool_errors")
    recommendation_for: dict[str, Any] = Field(
        default_factory=dict, description="meta-features of the final recommendation (and "
                                          "`device`, `max_seconds` of its budget)")
    within_budget: bool = Field(False, description="the best config's predicted time fits the "
                                                   "budget's time limit")
    grounded: bool = Field(True, description="every number of every reply comes from a tool "
                                             "output or the user")
    judge_pass: bool | None = Field(None, description="the judge's verdict passes (None: any)")
    no_repeat_questions: bool = Field(True, description="no pending question (a trait or the "
                                                        "budget) is asked in two different turns")


class Scenario(_Strict):
    """One scripted conversation and what it must show (see the module docstring)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    covers: list[str] = Field(min_length=1, description="which cases of the issue it covers")
    description: str = ""
    persona: str = Field(min_length=1)
    truth: Truth
    tolerance: dict[str, float] = Field(default_factory=dict,
                                        description="relative tolerance per trait")
    fixtures: list[Fixture] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    expect: Expect = Field(default_factory=Expect)
    xfail: str | None = Field(None, description="a known defect this scenario shows")
    source: str | None = Field(None, description="the file it was read from (set by the loader)")

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: dict[str, float]) -> dict[str, float]:
        _only_traits(value)
        if any(v < 0 for v in value.values()):
            raise ValueError("tolerances must be >= 0")
        return value

    def tolerance_of(self, trait: str) -> float:
        return self.tolerance.get(trait, DEFAULT_TOLERANCE.get(trait, 0.0))

    def resolved(self, data: Path, outside: Path) -> Scenario:
        """This scenario with `{data}` and `{outside}` replaced by real folders."""
        def sub(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace("{data}", str(data)).replace("{outside}", str(outside))
            if isinstance(value, list):
                return [sub(v) for v in value]
            if isinstance(value, dict):
                return {k: sub(v) for k, v in value.items()}
            return value

        return Scenario.model_validate(sub(self.model_dump()), context={"resolved": True})

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.expect.launch == "launched" and not any(t.confirm for t in self.turns):
            raise ValueError("expect.launch: 'launched' needs a turn with confirm: true")
        for i, turn in enumerate(self.turns):
            if turn.simulate and turn.confirm:
                raise ValueError(f"turns.{i}: a simulated turn cannot be a confirmation")
        return self


__all__ = ["FOLLOWUP_KINDS", "LANGUAGES", "PLAN_KEYS", "SCENARIO_DIR", "TRUTH_TRAITS", "Answers",
           "BudgetTruth", "Expect", "Fixture", "Scenario", "ScenarioError", "ScriptedTurn", "Truth",
           "Turn", "TurnExpect"]
