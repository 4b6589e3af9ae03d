"""Hostile dataset traits (issue 13 item 9): values no dataset can have, through every door a trait
comes in by - the `meta_from_traits` funnel, `metallmix recommend --traits`, the rank_configs tool
and the advisor's chat - must be refused with one short line naming the field and the value (never
a traceback, never a 10 MB echo); values inside the hard limits but never recorded are answered,
with a note."""

from __future__ import annotations

import json
import math

import pytest
from langchain_core.messages import HumanMessage
from pydantic import ValidationError
from typer.testing import CliRunner

from knowledge.errors import DatasetError
from knowledge.metafeatures import MAX_INSTANCES, MAX_SIDE
from knowledge.recommend import meta_from_traits

TEN_MB = 10_000_000
MAX_MESSAGE = 400  # no refusal is longer than this, whatever the input

# (traits, what the one-line error must say)
IMPOSSIBLE = [
    pytest.param({"n_instances": 10**9, "n_classes": 3},
                 "n_instances: 1,000,000,000 training images is beyond the hard limit",
                 id="1e9-images"),
    pytest.param({"n_instances": 3000, "n_classes": 3, "height": 100_000},
                 "height: 100,000 px is beyond the hard limit of 65,535 px", id="100000-px"),
    pytest.param({"n_instances": 3000, "width": 100_000}, "width: 100,000 px", id="100000-px-wide"),
    pytest.param({"n_instances": 3, "n_classes": 1000},
                 "n_classes 1,000 exceeds n_instances 3", id="1000-classes-3-images"),
    pytest.param({"n_instances": True, "n_classes": 3}, "n_instances: True is a boolean", id="true"),
    pytest.param({"n_classes": True}, "n_classes: True is a boolean", id="true-classes"),
    pytest.param({"height": False}, "height: False is a boolean", id="false-height"),
    pytest.param({"n_instances": -3000}, "n_instances: Input should be greater than or equal to 1 "
                                         "(got -3000)", id="negative"),
    pytest.param({"n_instances": 0}, "n_instances: Input should be greater than or equal to 1",
                 id="zero"),
    pytest.param({"n_instances": math.nan}, "n_instances: Input should be a finite number (got nan)",
                 id="nan"),
    pytest.param({"imbalance_ratio": math.nan}, "imbalance_ratio: Input should be a finite number",
                 id="nan-ratio"),
    pytest.param({"imbalance_ratio": math.inf}, "imbalance_ratio: Input should be a finite number",
                 id="inf-ratio"),
    pytest.param({"n_instances": 10**400}, "n_instances: about 10^400 training images", id="10^400"),
    pytest.param({"class_counts": [5, True]}, "class_counts[1]: True is a boolean", id="true-count"),
    pytest.param({"class_counts": [5, -1, 7]}, "class_counts[1]: Input should be greater than or "
                                               "equal to 0 (got -1)", id="negative-count"),
    pytest.param({"modality": "x" * TEN_MB}, "modality: unknown modality 'xxxx", id="10MB-modality"),
    pytest.param({"n_instances": "9" * TEN_MB}, "n_instances: Unable to parse input string",
                 id="10MB-digits"),
    pytest.param({"task": "t" * TEN_MB}, "task: Input should be 'binary'", id="10MB-task"),
    pytest.param({"k" * TEN_MB: 1}, "unknown key 'kkkk", id="10MB-key"),
    pytest.param({"class_counts": "c" * TEN_MB}, "class_counts: Input should be a valid list",
                 id="10MB-counts"),
]


def _one_short_line(text: str) -> None:
    assert "\n" not in text.strip() and len(text) < MAX_MESSAGE, text[:MAX_MESSAGE]
    assert "Traceback" not in text




# --- the funnel ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("traits", "message"), IMPOSSIBLE)
def test_meta_from_traits_refuses(traits, message) -> None:
    with pytest.raises(DatasetError) as info:
        meta_from_traits(traits)
    text = str(info.value)
    assert text.startswith("traits: ") and message in text
    _one_short_line(text)


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_INSTANCES, MAX_SIDE) == (10**8, 65_535)
    at_limit = meta_from_traits({"n_instances": MAX_INSTANCES, "n_classes": 2, "height": MAX_SIDE})
    assert at_limit.width == MAX_SIDE
    for beyond in ({"n_instances": MAX_INSTANCES + 1}, {"height": MAX_SIDE + 1}):
        with pytest.raises(DatasetError, match="beyond the hard limit"):
            meta_from_traits(beyond)


# --- metallmix recommend --traits ----------------------------------------------------------------

@pytest.mark.parametrize(("traits", "message"), [p for p in IMPOSSIBLE if "10MB" not in p.id])
def test_cli_refuses_in_one_error_line_with_exit_2(store, capsys, traits, message) -> None:
    from ui import cli

    text = json.dumps(traits)  # NaN / Infinity as Python's json writes them
    assert cli.main(["recommend", "--traits", text, "--store", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: traits: ") and message in err, err[:MAX_MESSAGE]
    _one_short_line(err)


@pytest.mark.parametrize("text", [
    '{"modality": "' + "x" * TEN_MB + '"}',
    '{"n_instances": ' + "9" * TEN_MB + "}",  # too many digits for Python's int()
    "[" * TEN_MB,  # nesting too deep for the JSON parser
    "{" + "x" * TEN_MB,  # not JSON at all: the echo is cut
])
def test_cli_10mb_traits_are_one_short_line(store, text) -> None:
    import typer

    from ui.cli.recommend import recommend

    app = typer.Typer()
    app.command()(recommend)
    result = CliRunner().invoke(app, ["--traits", text, "--store", str(store.path)])
    assert isinstance(result.exception, DatasetError), repr(result.exception)[:MAX_MESSAGE]
    _one_short_line(str(result.exception))


# --- the rank_configs tool (what the LLM calls) ---------------------------------------------------

@pytest.mark.parametrize(("traits", "message"), [
    ({"n_instances": 10**9, "n_classes": 3}, "n_instances: 1,000,000,000 training images"),
    ({"n_instances": 3, "n_classes": 1000}, "n_classes 1,000 exceeds n_instances 3"),
    ({"n_instances": 3000, "height": 100_000}, "height: 100,000 px"),
    ({"n_instances": True, "n_classes": 3}, "traits.n_instances: True is a boolean, not a number"),
    ({"n_instances": -5}, "n_instances: Input should be greater than or equal to 1"),
    ({"n_instances": math.nan}, "n_instances: Input should be a finite number"),
    ({"class_counts": [100, True]}, "True is a boolean"),
    ({"modality": "x" * TEN_MB}, "unknown modality"),
])
def test_rank_configs_tool_returns_one_error_the_llm_reads(store, traits, message) -> None:
    from tools import get_tools

    tool = {t.name: t for t in get_tools(store.path, training_tool=False)}["rank_configs"]
    out = tool.invoke({"traits": traits})
    error = json.loads(out)["error"]
    assert message in error, error[:MAX_MESSAGE]
    _one_short_line(error)


# --- the advisor's chat --------------------------------------------------------------------------

def test_turn_extraction_refuses_a_boolean_from_the_llm() -> None:
    from agent.extraction import TurnExtraction, invoke_structured
    from agent.testing import ScriptedChatModel

    with pytest.raises(ValidationError, match="True is a boolean"):
        TurnExtraction.model_validate({"n_instances": True})
    with pytest.raises(ValidationError, match="finite number"):
        TurnExtraction.model_validate({"imbalance_ratio": math.inf})
    # the structured output is retried with the reason fed back
    model = ScriptedChatModel(script=[{"json": {"n_instances": True}}, {"json": {"n_instances": 300}}])
    found = invoke_structured(model, TurnExtraction, [HumanMessage("300 images")], retries=1)
    assert found.n_instances == 300 and "True is a boolean" in model.calls[1][-1].content


@pytest.mark.parametrize("text", [
    "I have " + "9" * 10_000 + " x-ray images in 3 classes",  # too long for int(): not read
    "I have " + "9" * 400 + ".5k x-ray images",  # a float of it is infinite: not read
    "about " + "7" * 1000 + " chest x-rays",
])
def test_regex_extraction_survives_absurd_numbers(text) -> None:
    from agent.extraction import regex_extract

    found = regex_extract(text)
    n = found.n_instances
    assert n is None or n > MAX_INSTANCES  # read exactly (refused downstream) or not at all


@pytest.mark.parametrize(("message", "says"), [
    ("I have 1,000,000,000 chest x-ray images in 3 classes, 256 px.",
     "n_instances: 1,000,000,000 training images is beyond the hard limit"),
    ("I have 3 chest x-ray images in 1000 classes, 256 px.", "n_classes 1,000 exceeds n_instances 3"),
    ("I have 3000 chest x-ray images in 3 classes, 100000x100000 pixels.", None),  # 6 digits: unread
])
def test_advisor_says_what_is_wrong_instead_of_failing(store, message, says) -> None:
    from tests.agent.helpers import Brain, make, run
    from tools import get_tools

    brain = Brain(extract=[{"json": {}}])  # the regexes read every number of the message
    graph, _ = make(brain, get_tools(store.path, training_tool=False), store)
    (reply,), state = run(graph, message)
    if says is None:
        assert state.get("recommendation") and "Traceback" not in reply
        return
    assert says in reply and "Traceback" not in reply
    assert not state.get("recommendation")  # nothing recommended for impossible traits
    assert len(reply) < 600


def test_llm_extracted_impossible_size_is_reported(store) -> None:
    from tests.agent.helpers import Brain, make, run
    from tools import get_tools

    brain = Brain(extract=[{"json": {"n_instances": 3000, "n_classes": 3, "modality": "x-ray",
                                     "height": 100_000}}])
    graph, _ = make(brain, get_tools(store.path, training_tool=False), store,
                    llm_extraction="always")
    (reply,), state = run(graph, "About 3000 x-rays, 3 classes, each image is 100000 pixels high.")
    assert "height: 100,000 px is beyond the hard limit of 65,535 px" in reply
    assert not state.get("recommendation")


# --- unusual, not impossible: answered, with a note ------------------------------------------------

def test_unusual_traits_are_answered_with_a_note_in_card_tool_and_facts(store) -> None:
    from agent import prompts
    from knowledge.recommend import recommend
    from tools import get_tools

    traits = {"n_instances": 5_000_000, "n_classes": 3, "height": 4000, "modality": "x-ray"}
    rec = recommend(meta_from_traits(traits), store=store.path)
    assert set(rec.outside_range) == {"n_instances", "height", "width"}
    note = rec.notes[0]
    assert "n_instances 5,000,000 (training images; recorded" in note
    assert "height and width 4,000 (image side, px; recorded" in note
    assert note in rec.to_markdown()
    assert note in prompts.recommendation_facts(rec, compact=True)["notes"]
    tool = {t.name: t for t in get_tools(store.path, training_tool=False)}["rank_configs"]
    out = json.loads(tool.invoke({"traits": traits}))
    assert "error" not in out and out["notes"][0] == note
