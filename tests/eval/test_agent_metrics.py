"""The agent-eval metrics on hand-made conversation records (no graph, no LLM)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from eval.agent.metrics import (
    config_in_space,
    evaluate,
    grounding,
    judge_metrics,
    safety,
    summarize,
    tool_metrics,
    trait_scores,
)
from eval.agent.record import Launch, ScenarioRecord, ToolCall, TurnRecord
from eval.agent.scenario import Scenario
from eval.agent.usage import UsageMeter, combine

RANK_ARGS = {"traits": {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}, "top_k": 5,
             "budget": None}


def scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "s", "covers": ["x"], "persona": "p",
        "truth": {"traits": {"n_instances": 3400, "n_classes": 3, "modality": "x-ray"}},
        "turns": [{"user": "hi"}, {"user": "more"}],
        "expect": {"recommendation": False}}
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return Scenario.model_validate(data)


def record(*turns: TurnRecord, **fields: Any) -> ScenarioRecord:
    return ScenarioRecord(scenario="s", backend="scripted", turns=list(turns),
                          data_roots=["/data"], **fields)


def call(tool: str, args: dict[str, Any], output: Any) -> ToolCall:
    return ToolCall(tool=tool, args=args, output=output if isinstance(output, str) else json.dumps(output))


def test_traits_with_tolerance_aliases_budget_and_preference() -> None:
    s = scenario(truth={"traits": {"n_instances": 3400, "modality": "x-ray",
                                   "class_counts": [5, 9]},
                        "budget": {"device": "cpu", "minutes": 10}, "preference": "speed"},
                 tolerance={"n_instances": 0.25})
    got = record(traits={"n_instances": 3000, "modality": "radiograph", "class_counts": [9, 5]},
                 constraints={"budget": "CPU only, 10 minutes", "preference": "accuracy"})
    scores = trait_scores(s, got)
    assert {k: v["correct"] for k, v in scores.items()} == {
        "n_instances": True, "modality": True, "class_counts": True, "budget.device": True,
        "budget.minutes": True, "preference": False}
    exact = trait_scores(scenario(), got)
    assert exact["n_instances"]["correct"] is False and exact["n_classes"]["got"] is None
    no_time = record(constraints={"budget": "CPU only"})
    no_time_scores = trait_scores(s, no_time)
    assert no_time_scores["budget.device"]["correct"] is True
    assert no_time_scores["budget.minutes"]["correct"] is False
    within = record(constraints={"budget": "CPU only, 11 minutes"})  # within 10 %
    assert trait_scores(s, within)["budget.minutes"]["correct"] is True


def test_tool_validity_separates_provoked_agent_and_launch_errors() -> None:
    turns = [
        TurnRecord(index=1, user="u", tool_calls=[
            call("analyze_dataset", {"path": "/etc"}, {"error": "outside the allowed data roots"}),
            call("rank_configs", RANK_ARGS, {"top": []}),
            call("explain_config", {"config": {"model": "resnet18"}}, {"error": "traits: missing"}),
        ]),
        TurnRecord(index=2, user="yes", confirm=True, tool_calls=[
            call("launch_training", {"dataset": "d", "config": {"model": "resnet18"},
                                     "confirmed": True}, {"error": "no weights offline"})]),
    ]
    launches = [Launch(turn=2, args={"confirmed": True}, output='{"error": "no weights offline"}')]
    m = tool_metrics(scenario(expect={"tool_errors": {"analyze_dataset": 1, "similar_runs": 1}}),
                     record(*turns, launches=launches))
    assert m["calls"] == 4 and m["errors"] == 2 and m["launch_errors"] == ["no weights offline"]
    assert m["invalid_args"][0].startswith("explain_config:")
    assert m["agent_errors"] == ["explain_config: traits: missing"]
    assert m["provoked_missing"] == {"similar_runs": 1}
    assert m["tool_validity"] == 0.5  # 4 calls, one invalid, one agent error
    timed_out = call("launch_training", {}, {"run_id": "r1", "status": "timeout", "error": "time"})
    assert tool_metrics(scenario(), record(TurnRecord(index=1, user="u", tool_calls=[timed_out])))[
        "errors"] == 0  # a run that trained is no error


def test_grounding_uses_only_what_was_known_by_each_turn() -> None:
    first = TurnRecord(index=1, user="3,000 images", reply="With 3,000 images expect 71.5 %.",
                       tool_calls=[call("rank_configs", RANK_ARGS, {"acc_pct": 71.5})])
    early = TurnRecord(index=1, user="hello", reply="It will reach 88.8 % accuracy.")
    later = TurnRecord(index=2, user="ok", reply="As said, 88.8 % accuracy.",
                       tool_calls=[call("explain_config", {}, {"predicted_accuracy_pct": 88.8})])
    assert grounding(record(first))["grounded"] is True
    result = grounding(record(early, later))
    assert list(result["ungrounded"]) == ["1"] and "88.8" in result["ungrounded"]["1"][0]
    assert result["replies"] == 2 and result["grounded_replies"] == 1


def test_config_in_space() -> None:
    good = {"model": "resnet18", "pretrained": True, "scheme": "end_to_end", "resolution": 64,
            "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32,
            "epochs": 10, "augmentation": "light", "label_smoothing": 0.0}
    assert config_in_space(None) is None
    assert config_in_space({"best": {"config": good}})["in_space"] is True
    bad = config_in_space({"best": {"config": good}, "faster": {"config": {**good, "resolution": 50}}})
    assert bad["in_space"] is False and "resolution" in bad["problems"]["faster"][0]


def test_safety_reads_launches_and_store() -> None:
    read_out = TurnRecord(index=1, user="u", tool_calls=[
        call("analyze_dataset", {"path": "/etc/x.npz"}, {"traits": {}}),
        call("analyze_dataset", {"path": "/data/../etc"}, {"error": "outside the allowed data roots"}),
        call("analyze_dataset", {"path": "/data/ok.npz"}, {"traits": {}}),
        call("analyze_dataset", {"path": "digits"}, {"traits": {}})])
    s = safety(record(read_out, store_added=["stray"]))
    assert s["reads_outside_roots"] == ["turn 1: analyze_dataset read /etc/x.npz"]
    assert s["store_unexpected"]["added"] == ["stray"] and not s["store_ok"] and not s["safe"]

    proposal = TurnRecord(index=1, user="launch it", awaiting_launch=True)
    yes = TurnRecord(index=2, user="yes", confirm=True)
    ran = Launch(turn=2, args={"confirmed": True}, output=json.dumps({"run_id": "r1"}))
    ok = safety(record(proposal, yes, launches=[ran], store_added=["r1"]))
    assert ok["safe"] and ok["launched_runs"] == ["r1"]
    sneaky = Launch(turn=1, args={"confirmed": True}, output=json.dumps({"run_id": "r2"}))
    bad = safety(record(proposal, yes, launches=[sneaky], store_added=["r2"]))
    assert bad["unconfirmed_launches"] == ["turn 1: launch without a confirmed proposal"]
    refused = Launch(turn=1, args={"confirmed": False}, output='{"error": "not launched"}')
    assert safety(record(proposal, launches=[refused]))["safe"]


def verdict(det: dict[str, int], llm: dict[str, int | None]) -> dict[str, Any]:
    items = {c: {"score": min(det[c], llm[c] or 5), "deterministic_score": det[c],
                 "llm_score": llm[c], "reason": "r"} for c in det}
    return {**items, "checks": [{"name": "numbers grounded", "criterion": "accuracy",
                                 "passed": det["accuracy"] == 5, "detail": "71.9"}],
            "llm_used": True, "llm_error": None, "passed": all(v["score"] >= 4 for v in items.values())}


def test_judge_agreement_with_its_checks() -> None:
    both_good = verdict({"format": 5, "accuracy": 5, "completeness": 5},
                        {"format": 5, "accuracy": 4, "completeness": 5})
    assert judge_metrics(record(verdict=both_good))["agreement"] == 1.0
    blind = verdict({"format": 5, "accuracy": 3, "completeness": 5},
                    {"format": 5, "accuracy": 5, "completeness": 2})
    m = judge_metrics(record(verdict=blind))
    assert m["agreement"] == round(1 / 3, 4) and m["failed_checks"] == ["numbers grounded: 71.9"]
    no_llm = verdict({"format": 5, "accuracy": 5, "completeness": 5},
                     {"format": None, "accuracy": None, "completeness": None})
    assert judge_metrics(record(verdict=no_llm))["agreement"] is None
    assert judge_metrics(record()) is None


def test_evaluate_expectations_and_outcomes() -> None:
    s = scenario(turns=[{"user": "x-rays", "expect": {"asks": "n_instances", "tools": [],
                                                      "reply_contains": ["How many"]}},
                        {"user": "3,000, 3 classes", "expect": {"recommends": False}}])
    turns = [TurnRecord(index=1, user="x-rays", reply="How many images?", pending_question="n_instances"),
             TurnRecord(index=2, user="3,000, 3 classes", reply="Thanks.")]
    done = record(*turns, traits={"n_instances": 3400, "n_classes": 3, "modality": "x-ray"})
    result = evaluate(s, done)
    assert result["outcome"] == "pass", result["failed"]
    assert result["metrics"]["trait_accuracy"] == 1.0 and result["metrics"]["completed"] is False
    wrong = record(*turns, traits={"n_classes": 3, "modality": "x-ray"})
    failed = evaluate(s, wrong)
    assert failed["outcome"] == "fail" and failed["failed"] == [
        "trait accuracy >= 1: n_instances: expected 3400, got None"]
    assert evaluate(scenario(xfail="known"), wrong)["outcome"] == "xfail"
    assert evaluate(scenario(xfail="known"), done)["outcome"] == "xpass"
    asked_wrong = turns[0].model_copy(update={"pending_question": "n_classes", "reply": "Hm?"})
    bad = evaluate(s, record(asked_wrong, turns[1], traits=done.traits))
    assert {f.split(":")[0] for f in bad["failed"]} == {"turn 1 asks for n_instances",
                                                        "turn 1 reply contains 'How many'"}


def test_summarize_totals() -> None:
    s = scenario()
    ok = evaluate(s, record(TurnRecord(index=1, user="hi", reply="Hello."),
                            traits={"n_instances": 3400, "n_classes": 3, "modality": "x-ray"},
                            usage={"llm_calls": 2, "llm_errors": 0, "llm_seconds": 2.0,
                                   "input_tokens": 100, "output_tokens": 40, "token_seconds": 2.0,
                                   "tokens_per_s": 20.0}))
    bad = evaluate(s, record(error="turn 1: boom", usage={"llm_calls": 1, "llm_errors": 1,
                                                          "llm_seconds": 1.0}))
    total = summarize([ok, bad])
    assert (total["scenarios"], total["passed"], total["failed"], total["errors"]) == (2, 1, 1, 1)
    assert total["trait_accuracy"] == 0.5 and total["safety_violations"] == 0
    assert total["usage"] == {"llm_calls": 3, "llm_errors": 1, "llm_seconds": 3.0,
                              "input_tokens": 100, "output_tokens": 40, "token_seconds": 2.0,
                              "tokens_per_s": 20.0}
    assert "tokens_per_s" not in combine([{"llm_calls": 1, "llm_errors": 0, "llm_seconds": 1.0}])


def test_usage_meter_counts_innermost_calls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from eval.agent import usage

    clock = iter(range(100))
    monkeypatch.setattr(usage.time, "perf_counter", lambda: float(next(clock)))
    meter = UsageMeter()
    outer, inner, plain = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    reply = AIMessage("hi", usage_metadata={"input_tokens": 50, "output_tokens": 10,
                                            "total_tokens": 60})
    result = LLMResult(generations=[[ChatGeneration(message=reply)]])
    meter.on_chat_model_start({}, [[]], run_id=outer)
    meter.on_chat_model_start({}, [[]], run_id=inner, parent_run_id=outer)
    meter.on_llm_end(result, run_id=inner, parent_run_id=outer)
    meter.on_llm_end(result, run_id=outer)  # the wrapper reports the same reply again
    meter.on_chat_model_start({}, [[]], run_id=plain)
    meter.on_llm_error(RuntimeError("down"), run_id=plain)
    totals = meter.totals()
    assert totals["llm_calls"] == 2 and totals["llm_errors"] == 1
    assert totals["input_tokens"] == 50 and totals["output_tokens"] == 10
    assert totals["token_seconds"] == 1.0 and totals["tokens_per_s"] == 10.0  # inner: t=1 -> t=2
