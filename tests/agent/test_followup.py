"""What the follow-up model is shown (slim tools, compact history and outputs), the reply caps and
the per-turn timing."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from agent.followup import compact_output, llm_history, planned_calls, slim_tools, tool_args
from agent.llm import with_max_tokens
from agent.testing import ScriptedChatModel
from agent.timing import merge_timing, summary
from agent.toolcalls import ToolCallingModel

TRAITS = {"n_instances": 3000, "n_classes": 3, "modality": "x-ray", "height": 512}
PICK = {"model": "densenet121", "pretrained": True, "scheme": "end_to_end", "resolution": 128,
        "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.01, "batch_size": 64, "epochs": 30,
        "augmentation": "strong", "label_smoothing": 0.0}


def test_slim_calls_become_full_tool_arguments() -> None:
    specs = slim_tools(["explain_config", "rank_configs", "similar_runs", "search_runs"])
    assert [s["function"]["name"] for s in specs] == ["explain_config", "rank_configs", "search_runs"]
    assert len(json.dumps(specs)) < 2500  # the real schemas: ~12,500 characters
    full = tool_args("explain_config", {"model": "ViT", "epochs": 10}, TRAITS, PICK)
    assert full == {"traits": TRAITS, "config": {**PICK, "model": "vit_tiny_patch16_224", "epochs": 10}}
    assert tool_args("rank_configs", {"budget": "CPU only"}, TRAITS, PICK) == {
        "traits": TRAITS, "budget": "CPU only", "top_k": 3}
    # the full form passes, with the traits filled in when missing
    assert tool_args("explain_config", {"config": {"model": "resnet18"}}, TRAITS, PICK) == {
        "config": {"model": "resnet18"}, "traits": TRAITS}
    assert tool_args("explain_config", {"epochs": 10}, TRAITS, PICK) == "model: Field required"
    assert "Extra inputs" in tool_args("search_runs", {"question": "x", "foo": 1}, TRAITS, PICK)


def test_planned_calls_for_named_models() -> None:
    assert planned_calls("Why not a ViT?", PICK) == [
        {"name": "explain_config", "args": {"model": "vit_tiny_patch16_224"}}]
    assert planned_calls("ResNet-18 or EfficientNet-B0 instead of DenseNet-121?", PICK) == [
        {"name": "explain_config", "args": {"model": "resnet18"}},
        {"name": "explain_config", "args": {"model": "efficientnet_b0"}}]
    assert planned_calls("Why not a ViT-L?", PICK) == []  # unknown: the model decides
    assert planned_calls("Why not a ViT?", None) == []


def test_history_keeps_the_users_earlier_words_and_trims_tool_outputs() -> None:
    call = {"name": "rank_configs", "args": {}, "id": "c1", "type": "tool_call"}
    long_answer = "word " * 400
    big = json.dumps({"traits_used": TRAITS, "top": [{"rank": i} for i in range(5)],
                      "candidates_scored": 99})
    messages = [HumanMessage("first"), AIMessage("", tool_calls=[call]),
                ToolMessage(big, tool_call_id="c1", name="rank_configs"), AIMessage(long_answer),
                HumanMessage("second"), AIMessage("", tool_calls=[{**call, "id": "c2"}]),
                ToolMessage(big, tool_call_id="c2", name="rank_configs")]
    seen = llm_history(messages)
    assert [type(m).__name__ for m in seen] == ["HumanMessage", "HumanMessage", "AIMessage",
                                                "ToolMessage"]
    assert [m.content for m in seen[:2]] == ["first", "second"]
    assert json.loads(seen[-1].content) == {"top": [{"rank": 0}, {"rank": 1}, {"rank": 2}]}
    assert compact_output("not json") == "not json"


def test_reply_caps_per_backend() -> None:
    openai = ToolCallingModel(inner=ChatOpenAI(base_url="http://127.0.0.1:1/v1", api_key="x",
                                               model="m", max_tokens=1024))
    capped = with_max_tokens(openai, 80)
    assert capped.inner.max_tokens == 80 and openai.inner.max_tokens == 1024
    assert with_max_tokens(ChatOllama(model="m", num_predict=50), 80).num_predict == 50  # lower kept
    scripted = ScriptedChatModel(script=[])
    assert with_max_tokens(scripted, 80) is scripted


def test_timing_adds_up_per_turn() -> None:
    node = {"seconds": 1.5, "llm_calls": 1, "prompt_tokens": 900, "completion_tokens": 200,
            "cached_tokens": 300, "llm_seconds": 1.4}
    t = merge_timing(None, {"turn": 1, "nodes": [{"node": "extract", **node}]})
    t = merge_timing(t, {"turn": 1, "nodes": [{"node": "answer", **node}]})
    assert t["seconds"] == 3.0 and t["llm_calls"] == 2 and t["prompt_tokens"] == 1800
    assert "3.0 s · 2 LLM calls · 1,800 prompt tokens (600 cached), 400 generated" in summary(t)
    t = merge_timing(t, {"turn": 2, "nodes": [{"node": "extract", **node}]})
    assert t["turn"] == 2 and [n["node"] for n in t["nodes"]] == ["extract"]


def test_a_why_question_about_the_pick_is_answered_from_its_facts() -> None:
    from agent.followup import asks_why_pick, why_pick_answer

    assert asks_why_pick("Why did you pick that one?") and asks_why_pick("why this config")
    assert not asks_why_pick("Why not a ViT?") and not asks_why_pick("Can you make it faster?")
    facts = {"recommended": {"model_name": "DenseNet-121", "pretrained": True, "scheme": "end_to_end",
                             "resolution_px": 128, "predicted_accuracy_pct": 72.7,
                             "interval_80_pct": [57.4, 93.4], "training_time": "76 min on T4"},
             "chosen_for": "accuracy", "average_over_past_runs_pct": 76.5,
             "why": ["images per class mean 1,000 → −6.9 points", "training scheme end_to_end → +5.2 points",
                     "modality x-ray → −4.3 points", "model DenseNet-121 → +1.9 points"],
             "similar_past_runs": ["BloodMNIST: DenseNet-121, end-to-end, 224 px → test acc 99.0% (published)"]}
    answer = why_pick_answer(facts)
    assert answer.startswith("I picked **DenseNet-121** (pretrained, end_to_end, 128 px) because")
    assert "72.7 %" in answer and "57.4–93.4 %" in answer and "76 min on T4" in answer
    assert "−6.9 points; training scheme end_to_end → +5.2 points; modality x-ray → −4.3" in answer
    assert "DenseNet-121 → +1.9" not in answer  # the three strongest factors only
    assert "you asked for speed" in why_pick_answer({**facts, "chosen_for": "speed (the faster alternative)"})
