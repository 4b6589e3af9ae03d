"""Each advisor node (`agent.nodes`) called alone with a minimal state and fake dependencies, and
the routers (`agent.routing`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END

from agent import routing
from agent.nodes import (
    agent,
    analyze,
    answer,
    ask,
    extract,
    ground,
    launch,
    make_runtime,
    propose_launch,
    recommend,
    run_tools,
)
from agent.nodes.runtime import DEFAULT_HEIGHT, MAX_DRAFTS, state_key
from agent.testing import ScriptedChatModel, answer_from_facts, recommendation_answer

TRAITS = {"n_instances": {"value": 3000, "source": "stated"},
          "n_classes": {"value": 3, "source": "stated"},
          "modality": {"value": "xray", "source": "stated"}}


class FakeTool(BaseTool):
    """A tool replying `reply` (a value, or a callable of the arguments); calls are recorded."""

    name: str
    description: str = "fake"
    reply: Any = None
    calls: list = []

    def _run(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        out = self.reply(kwargs) if callable(self.reply) else self.reply
        return out if isinstance(out, str) else json.dumps(out)


def fake_tools(**replies: Any) -> list[FakeTool]:
    names = ("analyze_dataset", "rank_configs", "explain_config", "similar_runs", *replies)
    return [FakeTool(name=n, reply=replies.get(n, {"ok": True}), calls=[])
            for n in dict.fromkeys(names)]


def runtime(script: Any = (), tools: list | None = None, **kw: Any):  # noqa: ANN201
    model = ScriptedChatModel(script=script if callable(script) else list(script))
    return make_runtime(model, tools if tools is not None else fake_tools(),
                        recommender=kw.pop("recommender", lambda *a: None),
                        max_steps=kw.pop("max_steps", 3), **kw), model


def user(text: str, **state: Any) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)], "turn": 1, **state}


# --- a real Recommendation over the small synthetic store ----------------------------------------

@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from knowledge.recommend import clear_cache
    from tests.knowledge.recommend_fixtures import ready_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METALLMIX_EMBEDDINGS", "hashing")
        clear_cache()
        yield ready_store(tmp_path_factory.mktemp("nodes") / "runs.sqlite").path
        clear_cache()


@pytest.fixture
def real(store_path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """(tools, recommender counting its calls) over the store."""
    from agent.nodes.runtime import default_recommender
    from tools import get_tools

    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    base = default_recommender(store_path)
    calls: list = []

    def recommender(*args: Any) -> Any:
        calls.append(args)
        return base(*args)

    return get_tools(store_path, training_tool=False), recommender, calls


@pytest.fixture
def recommended(real) -> dict[str, Any]:  # noqa: ANN001
    """The state after a recommend turn."""
    tools, recommender, _ = real
    rt, _ = runtime(tools=tools, recommender=recommender)
    state = user("3000 x-rays, 3 classes", traits=dict(TRAITS), constraints={})
    update = recommend(state, rt)
    return {**state, **{k: v for k, v in update.items() if k != "messages"},
            "messages": [*state["messages"], *update["messages"]]}


# --- extract -------------------------------------------------------------------------------------

def test_extract_starts_the_turn_and_merges_the_traits() -> None:
    rt, _ = runtime([{"json": {}}] * 3)
    update = extract(user("3,000 chest X-rays in 3 classes, one hour on a T4", turn=2), rt)
    assert update["turn"] == 3 and update["step"] == 0 and update["route"] is None
    assert update["traits"]["n_instances"] == {"value": 3000, "source": "stated"}
    assert update["traits"]["n_classes"]["value"] == 3
    assert "T4" in update["constraints"]["budget"]


def test_extract_a_yes_after_a_proposed_launch_routes_to_launch() -> None:
    rt, model = runtime()
    update = extract(user("yes", awaiting_launch_confirmation=True), rt)
    assert update["route"] == "launch" and update["awaiting_launch_confirmation"] is False
    assert model.calls == []  # no extraction


def test_extract_a_no_cancels_the_launch_and_ends_the_turn() -> None:
    rt, _ = runtime()
    update = extract(user("no thanks", awaiting_launch_confirmation=True,
                          pending_launch={"dataset": "d"}), rt)
    assert update["route"] == END and update["pending_launch"] is None
    assert "did not start training" in update["messages"][0].content


def test_extract_keeps_a_named_dataset_path_for_analyze() -> None:
    rt, _ = runtime([{"json": {}}] * 3)
    update = extract(user("my data is at /data/bands.npz"), rt)
    assert update["path_to_read"] == "/data/bands.npz"
    assert routing.after_extract(user("x", **update)) == "analyze"


# --- analyze -------------------------------------------------------------------------------------

def test_analyze_keeps_the_measured_traits() -> None:
    tools = fake_tools(analyze_dataset={"traits": {"n_instances": 120, "n_classes": 3,
                                                   "height": 32, "modality": "other"}})
    rt, _ = runtime(tools=tools)
    state = user("x", path_to_read="/d.npz", traits={"modality": {"value": "xray",
                                                                  "source": "stated"}})
    update = analyze(state, rt)
    assert update["traits"]["n_instances"] == {"value": 120, "source": "measured"}
    assert update["traits"]["modality"]["value"] == "xray"  # "other" does not override it
    assert update["dataset"] == "/d.npz" and update["path_to_read"] is None
    assert tools[0].calls == [{"path": "/d.npz", "modality": "xray"}]
    assert [m.type for m in update["messages"]] == ["ai", "tool"]


def test_analyze_reports_a_tool_error_as_the_turn_problem() -> None:
    rt, _ = runtime(tools=fake_tools(analyze_dataset={"error": "outside the data roots"}))
    update = analyze(user("x", path_to_read="/etc/x"), rt)
    assert "outside the data roots" in update["problem"] and "dataset" not in update


# --- ask -----------------------------------------------------------------------------------------

def test_ask_uses_the_models_question() -> None:
    rt, _ = runtime(["How many images do you have?"])
    update = ask(user("hi"), rt)
    assert update["pending_question"] == "n_instances"
    assert update["messages"][0].content == "How many images do you have?"


def test_ask_falls_back_to_the_template_question() -> None:
    from agent import prompts

    rt, _ = runtime(["not a question"])
    update = ask(user("hi", problem="I could not read it."), rt)
    assert update["messages"][0].content == (
        f"I could not read it.\n\n{prompts.TRAIT_QUESTIONS['n_instances']}")


# --- recommend -----------------------------------------------------------------------------------

def test_recommend_ranks_once_and_records_the_grounding_tool_calls(real) -> None:  # noqa: ANN001
    tools, recommender, calls = real
    rt, _ = runtime(tools=tools, recommender=recommender)
    state = user("x", traits=dict(TRAITS), constraints={})
    update = recommend(state, rt)
    assert len(calls) == 1  # one ranking for the turn
    assert update["route"] == "answer" and update["mode"] == "recommend"
    assert update["traits"]["height"] == {"value": DEFAULT_HEIGHT, "source": "assumed"}
    assert [o["tool"] for o in update["tool_outputs"]] == ["rank_configs", "explain_config",
                                                           "similar_runs"]
    rank = json.loads(update["tool_outputs"][0]["output"])
    assert rank["top"][0]["config"] == update["recommendation"]["best"]["config"]
    similar = json.loads(update["tool_outputs"][2]["output"])
    assert [r["run_id"] for r in similar["runs"]] == [
        h["run_id"] for h in update["recommendation"]["similar_runs"]]
    assert update["recommended_for"] == state_key({**state, "traits": update["traits"]})
    by_tool = {t.name: t for t in tools}
    for entry in update["tool_outputs"]:  # recorded as the tools themselves would answer
        assert json.loads(entry["output"]) == json.loads(by_tool[entry["tool"]].invoke(entry["args"]))
    assert routing.after_recommend({**state, **update}) == "answer"


def test_recommend_ignores_an_unreadable_budget(real) -> None:  # noqa: ANN001
    tools, recommender, calls = real
    rt, _ = runtime(tools=tools, recommender=recommender)
    update = recommend(user("x", traits=dict(TRAITS), constraints={"budget": "a fortnight of "
                                                                   "abacus time"}), rt)
    assert "I ignored the budget" in update["problem"]
    assert update["constraints"]["budget"] is None and update["route"] == "answer"
    assert [o["args"]["budget"] for o in update["tool_outputs"][:2]] == [
        "a fortnight of abacus time", "CPU only, 1 hour"]  # no budget: at most an hour on the CPU
    assert update["time_assumed"]


def test_recommend_a_failed_ranking_ends_the_turn() -> None:
    def broken(*args: Any) -> Any:
        from knowledge.errors import ConfigError

        raise ConfigError("nothing fits")

    rt, _ = runtime(recommender=broken)
    update = recommend(user("x", traits=dict(TRAITS), constraints={}), rt)
    assert update["route"] == END and "recommendation" not in update
    assert update["messages"][-1].content == "I could not rank configs for these traits: nothing fits"
    assert routing.after_recommend({**update}) == END


# --- answer --------------------------------------------------------------------------------------

def test_answer_drafts_from_the_facts(recommended: dict) -> None:  # noqa: ANN001
    rt, model = runtime(answer_from_facts)
    update = answer(recommended, rt)
    assert update["attempts"] == 1 and update["draft"].startswith("Recommended: ")
    assert "FACTS (JSON)" in model.calls[0][-1].content


def test_answer_in_another_language_is_the_localized_card_without_an_llm_call(recommended: dict) -> None:  # noqa: ANN001
    """A 1.5B model mistranslated the settings ("trainiert" for pretrained): the graph writes the
    card in the user's language, and it passes the grounding as it stands."""
    rt, model = runtime(answer_from_facts)
    state = {**recommended, "language": "de"}
    update = answer(state, rt)
    assert model.calls == [] and update["draft"].startswith("Empfohlen: **")
    assert "**Warum**" in update["draft"] and "### Alternativen" in update["draft"]
    final = ground({**state, **update})
    assert final["route"] == END and final["messages"][0].content.startswith(update["draft"])


def test_answer_a_failed_llm_call_goes_straight_to_the_fallback(recommended: dict) -> None:
    rt, _ = runtime([])  # the script is exhausted: the call raises
    assert answer(recommended, rt) == {"draft": None, "attempts": MAX_DRAFTS}


# --- agent / tools -------------------------------------------------------------------------------

def test_agent_stops_after_max_steps() -> None:
    rt, model = runtime(max_steps=2)
    update = agent(user("and?", step=2), rt)
    assert update == {"step": 3, "draft": None, "attempts": MAX_DRAFTS}
    assert model.calls == []


def test_agent_passes_the_models_tool_calls_on() -> None:
    rt, _ = runtime([{"tool_calls": [{"name": "search_runs", "args": {"question": "vit"}}]}])
    update = agent(user("what about past ViT runs?"), rt)
    assert update["messages"][0].tool_calls[0]["name"] == "search_runs"
    assert routing.after_agent(user("x", messages=update["messages"])) == "tools"


def test_agent_text_reply_is_a_followup_draft() -> None:
    rt, _ = runtime(["It depends on the data."])
    update = agent(user("does it depend?"), rt)
    assert update["draft"] == "It depends on the data." and update["mode"] == "followup"
    assert routing.after_agent(user("does it depend?")) == "ground"


def test_agent_plans_explain_config_for_a_named_model(recommended: dict) -> None:  # noqa: ANN001
    rt, model = runtime()
    update = agent({**recommended, "messages": [HumanMessage("why not a ViT-B/16?")], "step": 0},
                   rt)
    assert update["planned"] is True and model.calls == []
    assert {c["name"] for c in update["messages"][0].tool_calls} == {"explain_config"}


def test_run_tools_refuses_launch_and_unknown_tools_and_runs_the_others() -> None:
    tools = fake_tools(search_runs={"runs": []})
    rt, _ = runtime(tools=tools)
    calls = [{"name": "launch_training", "args": {}, "id": "a"},
             {"name": "rm_rf", "args": {}, "id": "b"},
             {"name": "search_runs", "args": {"question": "vit"}, "id": "c"}]
    update = run_tools(user("x", messages=[HumanMessage("x"), AIMessage("", tool_calls=calls)]),
                       rt)
    outputs = [json.loads(m.content) for m in update["messages"]]
    assert "not available to you" in outputs[0]["error"]
    assert "unknown tool 'rm_rf'" in outputs[1]["error"]
    assert outputs[2] == {"runs": []}
    assert all(isinstance(m, ToolMessage) for m in update["messages"])
    assert [o["tool"] for o in update["tool_outputs"]] == ["launch_training", "rm_rf", "search_runs"]


# --- ground --------------------------------------------------------------------------------------

def test_ground_accepts_a_grounded_recommendation(recommended: dict) -> None:  # noqa: ANN001
    from knowledge.recommend import Recommendation

    rec = Recommendation.model_validate(recommended["recommendation"])
    update = ground({**recommended, "draft": recommendation_answer(rec), "attempts": 1})
    assert update["route"] == END and update["violations"] == [] and update["draft"] is None
    assert "assumed 224 px" in update["messages"][0].content
    assert routing.after_ground({**recommended, **update}) == END


def test_ground_retries_an_ungrounded_draft_then_falls_back(recommended: dict) -> None:
    state = {**recommended, "draft": "Train ResNet-50; it reaches 99.9 % accuracy.", "attempts": 1}
    update = ground(state)
    assert update["route"] == "answer" and update["violations"]
    assert routing.after_ground({**state, **update}) == "answer"
    final = ground({**state, "attempts": MAX_DRAFTS})
    assert final["route"] == END and "99.9" not in final["messages"][0].content
    assert len(final["rejected"]) == 1


def test_ground_a_followup_without_a_draft_retries_with_the_agent() -> None:
    update = ground(user("x", mode="followup", attempts=1))
    assert update["violations"] == ["(no answer)"] and update["route"] == "agent"


# --- launch --------------------------------------------------------------------------------------

def test_propose_launch_needs_the_tool_and_the_dataset(recommended: dict) -> None:
    rt, _ = runtime()
    assert "disabled" in propose_launch(recommended, rt)["messages"][0].content
    rt, _ = runtime(tools=fake_tools(launch_training={}))
    assert "give the path" in propose_launch(recommended, rt)["messages"][0].content
    update = propose_launch({**recommended, "dataset": "/data/x.npz"}, rt)
    assert update["awaiting_launch_confirmation"] is True
    assert update["pending_launch"]["dataset"] == "/data/x.npz"
    assert update["pending_launch"]["config"] == recommended["recommendation"]["best"]["config"]


def test_launch_calls_launch_training_confirmed() -> None:
    tools = fake_tools(launch_training={"run_id": "r1", "status": "ok", "test_acc_pct": 80.0,
                                        "card": "card"})
    rt, _ = runtime(tools=tools)
    update = launch(user("yes", pending_launch={"dataset": "d", "config": {}}), rt)
    assert tools[-1].calls == [{"dataset": "d", "config": {}, "confirmed": True}]
    assert update["launched_run"]["run_id"] == "r1" and update["pending_launch"] is None
    assert "test accuracy 80.0 %" in update["messages"][-1].content


def test_launch_reports_a_failed_run() -> None:
    rt, _ = runtime(tools=fake_tools(launch_training={"error": "no GPU"}))
    update = launch(user("yes", pending_launch={"dataset": "d", "config": {}}), rt)
    assert update["launched_run"] is None
    assert update["messages"][-1].content == "Training did not run: no GPU"


# --- routers -------------------------------------------------------------------------------------

def test_next_step_asks_recommends_follows_up_and_proposes_a_launch() -> None:
    assert routing.next_step(user("hi")) == "ask"
    state = user("hi", traits=dict(TRAITS), constraints={})
    assert routing.next_step(state) == "recommend"
    done = {**state, "recommendation": {"x": 1}, "recommended_for": state_key(state)}
    assert routing.next_step(done) == "agent"
    assert routing.next_step({**done, "constraints": {"preference": "speed"}}) == "recommend"
    assert routing.next_step({**done, "messages": [HumanMessage("launch it")]}) == "propose_launch"
    assert routing.next_step({**done, "messages": [HumanMessage("can you launch it?")]}) == "agent"


def test_after_extract_follows_the_nodes_verdict_first() -> None:
    assert routing.after_extract(user("yes", route="launch")) == "launch"
    assert routing.after_extract(user("no", route=END)) == END
    assert routing.after_extract(user("hi", route=None)) == "ask"
    assert routing.after_analyze(user("hi")) == "ask"


def test_the_graph_wires_the_routers() -> None:
    from agent.graph import build_advisor

    graph = build_advisor(ScriptedChatModel(script=[]), fake_tools())
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    assert {("extract", "launch"), ("extract", "analyze"), ("agent", "tools"),
            ("tools", "agent"), ("ground", "answer"), ("recommend", "__end__"),
            ("answer", "ground"), ("ask", "__end__")} <= edges
    assert ("answer", "agent") not in edges


@pytest.mark.parametrize("constraints", [{"budget": "one hour on a T4"},
                                         {"budget": "one hour on a T4", "preference": "speed"}])
def test_recommend_records_what_the_tools_answer(real, constraints: dict) -> None:  # noqa: ANN001
    tools, recommender, calls = real
    rt, _ = runtime(tools=tools, recommender=recommender)
    update = recommend(user("x", traits=dict(TRAITS), constraints=dict(constraints)), rt)
    assert len(calls) == 1 and update["route"] == "answer"
    by_tool = {t.name: t for t in tools}
    for entry in update["tool_outputs"]:
        assert json.loads(entry["output"]) == json.loads(by_tool[entry["tool"]].invoke(entry["args"]))


def test_ground_a_french_answer_gets_its_sections_in_french(recommended: dict) -> None:  # noqa: ANN001
    """A small model that writes only the config line in French: the why, the alternatives and
    the similar runs are added in French (`agent.localize`), every number grounded."""
    from agent.grounding import check_answer
    from agent.nodes.runtime import sources
    from knowledge.metalearner.duration import format_seconds
    from knowledge.recommend import Recommendation

    rec = Recommendation.model_validate(recommended["recommendation"])
    best = rec.best
    c = best.config
    weights = "préentraîné" if c.pretrained else "depuis zéro"
    draft = (f"Recommandé : {c.spec.label}, {weights}, {c.scheme}, {c.resolution} px, taux "
             f"d'apprentissage {c.lr:g}, {c.epochs} époques ; précision prédite "
             f"{100 * best.predicted_acc:.1f} %, temps d'entraînement "
             f"{format_seconds(best.predicted_seconds)}.")
    state = {**recommended, "language": "fr", "draft": draft, "attempts": 1}
    update = ground(state)
    assert update["route"] == END, update.get("violations")
    text = update["messages"][0].content
    assert text.startswith(draft)
    assert "**Pourquoi**" in text and "Entraînements passés similaires" in text
    assert "points" in text and "### Similar past runs" not in text
    assert "Vous n'avez pas donné la taille des images" in text  # the note in French too
    assert check_answer(text, sources(state), pick=None) == []
    # a draft that already has the English sections does not get them twice
    english = ground({**state, "language": "fr", "draft": recommendation_answer(rec)})
    assert "Entraînements passés similaires" not in english["messages"][0].content


@pytest.mark.parametrize("new, earlier, combined", [
    ("I can leave it running for 20 minutes", "my laptop, no GPU",
     "I can leave it running for 20 minutes, on cpu"),  # a time after a device keeps the device
    ("20 minutes", "a T4", "20 minutes, on t4"),
    ("an A100", "2 hours", "an A100, 120 minutes"),  # a device after a time keeps the time
    ("2 hours on a T4", "my laptop", "2 hours on a T4"),  # both stated: the new budget
    ("20 minutes", None, "20 minutes"),
])
def test_a_budget_stated_in_halves_is_combined(new: str, earlier: str | None, combined: str) -> None:
    from agent.nodes.extract import with_earlier

    assert with_earlier(new, earlier) == combined


def test_a_cpu_without_a_time_is_ranked_for_an_hour_and_the_time_asked_once() -> None:
    from agent.nodes.ground import TIME_QUESTION, needs_budget, with_notes
    from agent.nodes.recommend import effective_budget

    assert effective_budget(None) == ("CPU only, 1 hour", True)
    assert effective_budget("my laptop") == ("my laptop, 1 hour", True)
    assert effective_budget("CPU only, 20 minutes") == ("CPU only, 20 minutes", False)
    assert effective_budget("a T4") == ("a T4", False)  # a GPU without a time: no limit needed
    assert effective_budget("CPU only, no time limit") == ("CPU only, no time limit", False)  # said so
    assert effective_budget("a fortnight of abacus time")[1] is False  # the ranking reports it
    state = {"mode": "recommend", "recommendation": {"x": 1}, "constraints": {"budget": "my laptop"},
             "time_assumed": True}
    assert needs_budget(state) and with_notes("A.", state).endswith(f"**{TIME_QUESTION}**")
    assert not needs_budget({**state, "budget_asked": True})
    assert "heure au plus" in with_notes("A.", {**state, "language": "fr"})


def test_a_cpu_with_no_time_limit_said_is_not_capped() -> None:
    from agent.nodes.extract import extract

    rt, _ = runtime()
    update = extract(user("3,000 chest x-rays, 3 classes, CPU only, no time limit"), rt)
    assert update["constraints"]["budget"] == "CPU only, no time limit"
