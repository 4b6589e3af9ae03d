"""Run scenarios against one or more LLM backends and collect the report.

    report = run_suite(load_scenarios(), ["scripted", "llamacpp:/models/qwen-1.5b.gguf"],
                       out=Path("eval/results/agent_eval.json"))

Each scenario is a fresh conversation (one thread) on the advisor graph (`agent.graph.build_advisor`,
as `metallmix chat` builds it) over the workspace's COPY of the run store (`eval.agent.workspace`),
with the workspace's `data/` folder as the only allowed data root. `launch_training` is the real
tool, wrapped only to cap each launched run at `launch_minutes` of training (the run still trains,
is evaluated and enters the store copy) and to log every call that reaches it. After the last turn
the judge (`agent.judge.judge_transcript`) grades the conversation when it has a recommendation
(as the conversation stood right after the turn that made the last recommendation: a later
follow-up's answer is not a recommendation), and `eval.agent.metrics.evaluate` scores it.

Robust for real models: each scenario has a wall-clock limit and a turn cap; an exception or a
time-out ends that scenario as a failure (recorded) and the suite goes on; the report is written
atomically after every scenario, so an interrupted run leaves a valid partial report.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool

from eval.agent.metrics import evaluate, summarize
from eval.agent.record import TOOL_OUTPUT_CHARS, Launch, ScenarioRecord, ToolCall, TurnRecord
from eval.agent.scenario import Scenario
from eval.agent.scripted import ScenarioBrain
from eval.agent.simulate import llm_reply, template_reply
from eval.agent.usage import UsageMeter, metered
from eval.agent.workspace import Workspace
from knowledge.errors import StoreError

log = logging.getLogger(__name__)

SCRIPTED = "scripted"
SCRIPTED_DESCRIPTION = "scripted (scenario-aware stand-in for a competent LLM; see eval.agent.scripted)"
Callback = Callable[[str, str, str, dict[str, Any] | None], None]  # event, backend, scenario, result


class Backend:
    """One LLM under test (`spec`), and the judge that grades its conversations.

    `scripted` gets a fresh `ScenarioBrain` model per scenario (and the same brain judges);
    `scripted:FILE` a fresh list-of-replies model per scenario; any other spec one shared model.
    `judge`: None = the backend's own model grades, "none" = deterministic checks only, else a spec.
    Raises LLMSpecError / LLMUnavailable when a model cannot be had.
    """

    def __init__(self, spec: str, judge: str | None = None) -> None:
        from agent.configuration import AgentConfig
        from agent.llm import get_chat_model, parse_spec

        self.spec = spec.strip()
        self.config = AgentConfig.from_env()
        self.scripted = self.spec == SCRIPTED
        self._model: BaseChatModel | None = None
        if self.scripted:
            self.description = SCRIPTED_DESCRIPTION
        else:
            kind = parse_spec(self.spec).kind
            model, info = get_chat_model(self.spec, self.config)
            self._model = None if kind == SCRIPTED else model
            self.description = info.description
        self.judge_spec = (judge or "").strip() or None
        self._judge: BaseChatModel | None = None
        if self.judge_spec and self.judge_spec.lower() != "none":
            self._judge, info = get_chat_model(self.judge_spec, self.config)
            self.judge_description = info.description
        elif self.judge_spec:
            self.judge_description = "none (deterministic checks only)"
        else:
            self.judge_description = f"the advisor's LLM ({self.description})"

    def models(self) -> tuple[BaseChatModel, ScenarioBrain | None, BaseChatModel | None]:
        """(advisor model, its brain when scripted, judge model or None) for one scenario."""
        from agent.llm import get_chat_model
        from agent.testing import ScriptedChatModel

        brain = None
        if self.scripted:
            brain = ScenarioBrain()
            model: BaseChatModel = ScriptedChatModel(script=brain)
        elif self._model is None:  # scripted:FILE - a fresh copy of the list of replies
            model = get_chat_model(self.spec, self.config)[0]
        else:
            model = self._model
        if self.judge_spec and self.judge_spec.lower() == "none":
            judge = None
        else:
            judge = self._judge or model
        return model, brain, judge


# --- tools ---------------------------------------------------------------------------------------

def capped_launch_tool(store: Path, minutes: float, launches: list[Launch],
                       turn: list[int]) -> BaseTool:
    """The real launch_training over `store`, each run capped at `minutes` of training, every
    call that reaches it logged in `launches` (with the current `turn[0]`)."""
    from tools import training
    from tools.base import make_tool
    from tools.schemas import Config

    real = training.build(store)[0]

    def launch_training(dataset: str, config: Config | dict, confirmed: bool = False,
                        time_budget_minutes: float | None = None) -> str:
        cap = minutes if time_budget_minutes is None else min(time_budget_minutes, minutes)
        args = {"dataset": dataset, "confirmed": confirmed, "time_budget_minutes": cap,
                "config": config.stated() if isinstance(config, Config) else config}
        output = real.invoke(args)
        launches.append(Launch(turn=turn[0], args=args, output=str(output)))
        return output

    return make_tool(launch_training, real.name, real.description, real.args_schema)


# --- one scenario --------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:400]


def call_with_timeout(func: Callable[[], Any], timeout_s: float) -> Any:
    """`func()` in a daemon thread: its result or exception, or TimeoutError after `timeout_s`
    (the thread is left to finish on its own; being a daemon, it never keeps the process alive)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name="eval-turn", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no reply within {timeout_s:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _play(graph: Any, text: str, thread: str, meter: UsageMeter) -> str:
    """One user message on `thread`: the reply text (as `agent.graph.advise`, plus callbacks)."""
    from agent.graph import reply_text, thread_config

    config = {**thread_config(thread), "callbacks": [meter]}
    before = len(graph.get_state(config).values.get("messages", []))
    state = graph.invoke({"messages": [HumanMessage(text)]}, config)
    return reply_text(state["messages"][before:])


def plan_of(state: dict[str, Any]) -> dict[str, Any] | None:
    """The config the advisor proposes after a turn: the launch waiting for a "yes" (its
    arguments), else the recommendation's presented config (the faster one for a speed
    preference, as `agent.facts.chosen`), else None."""
    pending = state.get("pending_launch")
    if pending and pending.get("config"):
        return dict(pending["config"])
    if not state.get("recommendation"):
        return None
    from agent.facts import pick_config
    from knowledge.recommend import Recommendation

    try:
        rec = Recommendation.model_validate(state["recommendation"])
        return pick_config(rec, (state.get("constraints") or {}).get("preference"))
    except Exception:  # noqa: BLE001 - a record, not a check: an odd recommendation has no plan
        log.warning("no plan for the recommendation", exc_info=True)
        return None


def _user_text(turn: Any, scenario: Scenario, backend: Backend, values: dict[str, Any],
               last_reply: str, judge: BaseChatModel | None,
               model: BaseChatModel) -> tuple[str, dict[str, Any] | None]:
    """The user's words for a turn, and (for a simulated turn) the traits they state."""
    if not turn.simulate:
        return turn.user, None
    text, said = template_reply(scenario.truth, values.get("pending_question"))
    if not backend.scripted:
        text = llm_reply(judge or model, scenario, last_reply) or text
    return text, said


def run_scenario(scenario: Scenario, backend: Backend, ws: Workspace, checkpointer: Any, *,
                 thread: str, timeout_s: float = 900.0, max_turns: int = 12,
                 launch_minutes: float = 1.0) -> tuple[Scenario, ScenarioRecord]:
    """Play one scenario; its resolved form (real paths) and what happened."""
    from agent.graph import build_advisor, thread_config, transcript
    from agent.judge import judge_transcript
    from agent.state import known_traits, recommended_this_turn
    from tools import get_tools

    scenario = scenario.resolved(ws.data, ws.outside)
    record = ScenarioRecord(scenario=scenario.name, backend=backend.spec, data_roots=[str(ws.data)])
    for fixture in scenario.fixtures:
        ws.write_fixture(fixture)
    model, brain, judge = backend.models()
    turn_no = [0]
    tools = [*get_tools(ws.store, training_tool=False),
             capped_launch_tool(ws.store, launch_minutes, record.launches, turn_no)]
    graph = build_advisor(model, tools, checkpointer, store=ws.store,
                          max_steps=backend.config.max_steps)
    config = thread_config(thread)
    before = ws.store_snapshot()
    meter = UsageMeter()
    started = time.perf_counter()
    graded: dict[str, Any] | None = None
    for index, turn in enumerate(scenario.turns, 1):
        if index > max_turns:
            record.error = f"stopped at the turn cap ({max_turns} turns)"
            break
        remaining = started + timeout_s - time.perf_counter()
        if remaining <= 0:
            record.error = f"timed out after {timeout_s:g} s, before turn {index}"
            break
        values = graph.get_state(config).values
        last = record.turns[-1].reply if record.turns else ""
        text, said = _user_text(turn, scenario, backend, values, last, judge, model)
        if brain is not None:
            brain.start_turn(turn.scripted, said)
        turn_no[0] = index
        n_tools = len(values.get("tool_outputs") or [])
        t0 = time.perf_counter()
        entry = TurnRecord(index=index, user=text, simulated=turn.simulate, confirm=turn.confirm)
        record.turns.append(entry)
        try:
            entry.reply = call_with_timeout(partial(_play, graph, text, thread, meter), remaining)
        except TimeoutError:
            entry.error = record.error = f"timed out after {timeout_s:g} s, in turn {index}"
        except Exception as exc:  # noqa: BLE001 - one scenario's failure, not the suite's
            log.warning("scenario %s turn %d failed", scenario.name, index, exc_info=True)
            entry.error = record.error = f"turn {index}: {_first_line(exc)}"
        entry.seconds = round(time.perf_counter() - t0, 3)
        if entry.error:
            break
        after = graph.get_state(config).values
        entry.tool_calls = [ToolCall(tool=o["tool"], args=o["args"], output=o["output"])
                            for o in (after.get("tool_outputs") or [])[n_tools:]]
        entry.recommendation = after.get("recommendation")
        entry.new_recommendation = recommended_this_turn(after)
        entry.pending_question = after.get("pending_question")
        entry.awaiting_launch = bool(after.get("awaiting_launch_confirmation"))
        entry.plan = plan_of(after)
        entry.traits = known_traits(after)
        entry.measured = {k: t["value"] for k, t in (after.get("traits") or {}).items()
                          if t.get("source") == "measured"}
        entry.budget = (after.get("constraints") or {}).get("budget")
        # the judge grades the conversation as it stood when a recommendation was presented (a
        # plan edit that re-ranks and answers with a launch proposal presents none)
        if entry.new_recommendation and not entry.awaiting_launch:
            graded = transcript(after)
    record.seconds = round(time.perf_counter() - started, 3)
    record.usage = meter.totals()
    after_snapshot = ws.store_snapshot()
    record.store_added = sorted(set(after_snapshot) - set(before))
    record.store_removed = sorted(set(before) - set(after_snapshot))
    record.store_changed = sorted(k for k in before if k in after_snapshot
                                  and before[k] != after_snapshot[k])
    if record.error and "timed out" in record.error:
        return scenario, record  # the turn may still be running: leave its state alone
    state = graph.get_state(config).values
    record.traits = known_traits(state)
    record.constraints = dict(state.get("constraints") or {})
    if state.get("recommendation"):
        graded = graded or transcript(state)
        judge_meter = UsageMeter()
        try:
            grader = metered(judge, judge_meter) if judge is not None else None
            verdict = call_with_timeout(partial(judge_transcript, graded, grader, store=ws.store),
                                        timeout_s)
            record.verdict = verdict.model_dump(mode="json")
        except Exception as exc:  # noqa: BLE001 - a judge failure is recorded, not fatal
            log.warning("judge failed on %s", scenario.name, exc_info=True)
            record.judge_error = _first_line(exc)
        record.judge_usage = judge_meter.totals()
    return scenario, record


# --- the suite -----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """What the suite ran on (for the report)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu or "unknown", "cpu_count": os.cpu_count()}


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temporary file, then rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write the report {path}: {exc}") from None


def _stored(record: ScenarioRecord) -> dict[str, Any]:
    """The record for the report, tool outputs shortened."""
    data = record.model_dump(mode="json")
    for turn in data["turns"]:
        for call in turn["tool_calls"]:
            if len(call["output"]) > TOOL_OUTPUT_CHARS:
                call["output"] = call["output"][:TOOL_OUTPUT_CHARS] + " …(cut)"
        turn["recommendation"] = bool(turn["recommendation"])
    return data


def scenario_result(scenario: Scenario, record: ScenarioRecord) -> dict[str, Any]:
    result = evaluate(scenario, record)
    return {"scenario": scenario.name, "covers": scenario.covers, "xfail": scenario.xfail,
            **result, "record": _stored(record)}


def run_suite(scenarios: Sequence[Scenario], llms: Sequence[str], *, judge: str | None = None,
              store: str | Path | None = None, out: Path | None = None,
              timeout_s: float = 900.0, max_turns: int = 12, launch_minutes: float = 1.0,
              workspace: str | Path | None = None, callback: Callback | None = None) -> dict[str, Any]:
    """Every scenario against every backend; the report (also written to `out` after each
    scenario). A backend that cannot be had is reported with its error; the others still run."""
    from agent.graph import open_checkpointer
    from agent.llm import LLMError

    ws = Workspace.create(store, workspace)
    report: dict[str, Any] = {
        "suite": "agent", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"llms": list(llms), "judge": judge, "store": str(ws.source_store),
                     "timeout_s": timeout_s, "max_turns": max_turns,
                     "launch_minutes": launch_minutes},
        "scenarios": [s.name for s in scenarios], "backends": []}
    saver = open_checkpointer(ws.threads)
    try:
        for b, spec in enumerate(llms):
            entry: dict[str, Any] = {"llm": spec, "results": []}
            report["backends"].append(entry)
            try:
                backend = Backend(spec, judge)
            except LLMError as exc:
                entry.update(error=str(exc), overall=summarize([]))
                if out:
                    write_json(out, report)
                continue
            entry.update(description=backend.description, judge=backend.judge_description)
            initial = ws.store_snapshot()
            with ws.data_roots():
                for scenario in scenarios:
                    if callback:
                        callback("start", spec, scenario.name, None)
                    resolved, record = run_scenario(
                        scenario, backend, ws, saver, thread=f"{b}:{scenario.name}",
                        timeout_s=timeout_s, max_turns=max_turns, launch_minutes=launch_minutes)
                    result = scenario_result(resolved, record)
                    entry["results"].append(result)
                    entry["overall"] = summarize(entry["results"])
                    if ws.store_snapshot() != initial:  # a launch added a run: start clean again
                        ws.restore_store()
                    if out:
                        write_json(out, report)
                    if callback:
                        callback("done", spec, scenario.name, result)
            entry["overall"] = summarize(entry["results"])
    finally:
        saver.conn.close()
    if out:
        write_json(out, report)
    return report


__all__ = ["Backend", "SCRIPTED", "capped_launch_tool", "machine", "plan_of", "run_scenario", "run_suite",
           "scenario_result", "write_json"]
