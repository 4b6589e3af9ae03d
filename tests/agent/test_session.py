"""`Session.stream_turn`: the steps of a turn as they happen, the answer draft as it is written, and a
final event carrying what `Session.turn` returns (scripted models over a small store)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from agent.session import Session
from agent.testing import ScriptedChatModel
from agent.toolcalls import ToolCallingModel
from tests.agent.helpers import answer_for, prompt_script

TRAITS = {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}
INVENTED = "Use the recommended config: it reaches 99.9% accuracy."
MESSAGE = "3,000 chest x-rays in 3 classes"


class WordStreamingModel(ScriptedChatModel):
    """The scripted replies, streamed word by word (like a real server's tokens)."""

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text = self.next_reply(messages).content
        for i, word in enumerate(text.split(" ")):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=("" if i == 0 else " ") + word))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


@pytest.fixture
def good(store_path: Path) -> str:
    """A complete answer for TRAITS (see `answer_for`)."""
    return answer_for(store_path, TRAITS)


def session(store_path: Path, script: Callable, model_class: type = ScriptedChatModel) -> Session:
    return Session(None, store_path, model=ToolCallingModel(inner=model_class(script=script)))


def labels(events: list[dict]) -> list[str]:
    return [e["label"] for e in events if e["type"] in ("step", "rejected")]


def comparable(result: dict) -> dict:
    """A turn's result without what differs between two identical runs (the wall time, the thread)."""
    rec = dict(result["recommendation"] or {})
    rec.pop("seconds", None)
    return {**result, "recommendation": rec, "thread": None}


def test_stream_turn_yields_steps_then_the_result_turn_gives(store_path, good):
    # the first draft invents a number: rejected, then rewritten
    streamed = session(store_path, prompt_script(TRAITS, [INVENTED, good]))
    events = list(streamed.stream_turn(MESSAGE, "a"))
    assert [e["type"] for e in events].count("final") == 1 and events[-1]["type"] == "final"
    steps = labels(events)
    expected = ["extracting traits", "ranking configs", "explaining", "retrieving similar runs",
                "writing the answer"]
    assert steps[:5] == expected, steps
    starts = [e["label"] for e in events if e["type"] == "start"]  # what runs now, as it starts
    assert starts == ["extracting traits", "ranking configs, explaining, retrieving similar runs",
                      "writing the answer", "checking the numbers of the answer",
                      "writing the answer", "checking the numbers of the answer"]
    assert [e["type"] for e in events][:2] == ["start", "step"]
    assert events[1]["detail"] == "n_instances=3000, n_classes=3, modality=x-ray"
    tools = [e["tool"] for e in events if e.get("tool")]
    assert tools == ["rank_configs", "explain_config", "similar_runs"]

    kinds = [e["type"] for e in events]
    first_token = kinds.index("token")
    rejected = kinds.index("rejected")
    assert events[first_token]["draft"] == INVENTED and first_token < rejected
    invented, *left_out = events[rejected]["violations"]
    assert invented == "99.9%" and events[rejected]["final"] is False
    # nor does it state the pick: each fact it leaves out is named, apart from the invented number
    assert left_out and all(v.endswith(" (not stated)") for v in left_out)
    label = events[rejected]["label"]
    assert "not in any tool output: 99.9%; not stated: the model " in label and "rewriting" in label
    after = [e for e in events[rejected:] if e["type"] == "token"]
    assert after and after[-1]["draft"] == good  # the second draft, streamed anew
    assert steps[-1] == "checking every number against the tools"

    result = events[-1]["result"]
    assert result["reply"].startswith(good) and "99.9" not in result["reply"]
    assert result["new_recommendation"] and result["thread"] == "a"
    assert [c["tool"] for c in result["tool_calls"]] == tools

    plain = session(store_path, prompt_script(TRAITS, [INVENTED, good])).turn(MESSAGE, "b")
    assert comparable(result) == comparable(plain)
    assert streamed.values("a")["messages"][-1].content == result["reply"]
    streamed.close()


def test_tokens_of_a_streaming_model_come_one_by_one(store_path, good):
    events = list(session(store_path, prompt_script(TRAITS, [good]), WordStreamingModel).stream_turn(MESSAGE, "a"))
    tokens = [e for e in events if e["type"] == "token"]
    assert len(tokens) == len(good.split(" "))  # the extraction's JSON tokens are not answer tokens
    assert "".join(t["text"] for t in tokens) == good == tokens[-1]["draft"]
    assert [t["draft"] for t in tokens] == sorted((t["draft"] for t in tokens), key=len)
    assert labels(events).index("writing the answer") < [e["type"] for e in events].index("token")
    assert events[-1]["result"]["reply"].startswith(good)


def test_a_draft_rejected_twice_is_replaced_by_the_deterministic_report(store_path):
    events = list(session(store_path, prompt_script(TRAITS, [INVENTED])).stream_turn(MESSAGE, "a"))
    rejected = [e for e in events if e["type"] == "rejected"]
    assert [r["final"] for r in rejected] == [False, True]
    assert "tools' own report" in rejected[-1]["label"]
    reply = events[-1]["result"]["reply"]
    assert "## Recommendation" in reply and "99.9" not in reply


def test_a_question_turn_streams_its_steps(store_path):
    events = list(session(store_path, prompt_script({"n_instances": 3000, "n_classes": 3})).stream_turn(
        "3,000 images, 3 classes", "a"))
    assert labels(events) == ["extracting traits", "asking for a missing trait"]
    assert [e["label"] for e in events if e["type"] == "start"] == labels(events)
    result = events[-1]["result"]
    assert "modality" in result["reply"].lower() and result["recommendation"] is None
    assert result["tool_calls"] == [] and not result["new_recommendation"]


def test_a_recommendation_remade_equal_to_the_last_is_a_new_one(store_path, good, monkeypatch):
    # "make it faster" remakes the recommendation for the speed preference: the ranking is the
    # same, and with the same latency (here: a clock that stands still) the dump equals the last
    # one, to the digit; it is still this turn's recommendation
    from types import SimpleNamespace

    from knowledge.recommend import advisor, algorithm

    for module in (advisor, algorithm):
        monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    script = prompt_script(lambda text: {"preference": "speed"} if "faster" in text else TRAITS,
                           [good], other=good)
    talk = session(store_path, script)
    first = talk.turn(MESSAGE, "a")
    second = talk.turn("Can you make it faster?", "a")
    assert first["new_recommendation"] and first["recommendation"]["seconds"] == 0.0
    assert second["recommendation"] == first["recommendation"]  # equal, and remade this turn:
    assert second["new_recommendation"]
    assert [c["tool"] for c in second["tool_calls"]][:1] == ["rank_configs"]
    assert talk.values("a")["recommended_turn"] == 2
    third = talk.turn("Is that good?", "a")  # a follow-up makes none
    assert not third["new_recommendation"]
    talk.close()


def test_recommended_this_turn_reads_the_turn_that_made_it():
    from agent.state import recommended_this_turn

    rec = {"best": {}}
    assert recommended_this_turn({"recommendation": rec, "recommended_turn": 2, "turn": 2})
    assert not recommended_this_turn({"recommendation": rec, "recommended_turn": 1, "turn": 2})
    assert not recommended_this_turn({"recommendation": None, "recommended_turn": 2, "turn": 2})
    assert not recommended_this_turn({"recommendation": rec, "turn": 2})  # a checkpoint from before
    assert not recommended_this_turn({"recommendation": rec})
