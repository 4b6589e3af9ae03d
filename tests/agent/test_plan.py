"""agent.nodes.plan and the plan edits: follow-ups the graph answers itself from the tools'
numbers (no LLM call), out-of-scope requests, edits that change what is proposed, the budget
question asked once, and a launch whose weights cannot be had offering the runnable config."""

from __future__ import annotations

import json
import shlex

from agent.intents import out_of_scope
from agent.nodes.ground import BUDGET_QUESTION
from tests.agent.helpers import FULL, Brain, make, run

NO_BUDGET = "I have about 3,000 chest X-ray images in 3 classes, 512 px grayscale."


def rank_outputs(state: dict, turn: int) -> list[dict]:
    return [json.loads(o["output"]) | {"args": o["args"]} for o in state["tool_outputs"]
            if o["turn"] == turn and o["tool"] == "rank_configs"]


def test_command_is_the_real_cli_line_of_the_pick(tools, store) -> None:
    brain = Brain()
    graph, _ = make(brain, tools, store)
    replies, state = run(graph, FULL, "Give me the exact command to train that.")
    pick = state["recommendation"]["best"]["config"]
    assert not state["rejected"], state["rejected"]
    line = next(x for x in replies[1].splitlines() if x.startswith("metallmix train"))
    words = shlex.split(line)
    assert words[words.index("--model") + 1] == pick["model"]
    assert float(words[words.index("--lr") + 1]) == pick["lr"]
    assert int(words[words.index("--epochs") + 1]) == pick["epochs"]
    assert "--time-budget" in words  # one hour on a T4
    assert "train.py" not in replies[1] and not brain.seen.get("followup")
    assert not state.get("awaiting_launch_confirmation")  # a command is not a launch


def test_device_time_recosts_the_same_config(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, NO_BUDGET, "How long will that take on an RTX 4090 instead?")
    assert not state["rejected"], state["rejected"]
    pick = state["recommendation"]["best"]["config"]
    [out] = rank_outputs(state, 2)
    assert out["args"]["require"] == pick and "4090" in out["args"]["budget"]
    assert out["top"][0]["config"]["model"] == pick["model"]
    assert out["top"][0]["training_time"] in replies[1] and "The same config" in replies[1]
    assert "budget" not in state["constraints"]  # a what-if, not a new budget
    assert state["recommendation"]["best"]["config"] == pick


def test_hyperparameter_for_another_model_uses_the_ranking_constrained_to_it(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, FULL, "What learning rate would you use for a pretrained ResNet-50?")
    [out] = rank_outputs(state, 2)
    assert out["args"]["require"] == {"model": "resnet50", "pretrained": True}
    best = out["top"][0]
    assert best["config"]["model"] == "resnet50" and best["config"]["pretrained"] is True
    assert "learning rate" in replies[1] and "ResNet-50" in replies[1]
    assert not state["rejected"]


def test_unknown_model_is_said_plainly(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, _ = run(graph, FULL, "why not ConvNeXt?")
    assert "ConvNeXt is not among the models I have training runs of" in replies[1]


def test_out_of_scope_is_declined_before_and_after_a_recommendation(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    text = "I have 400 3-D liver CT volumes. Is this even something you can do? It's segmentation."
    assert out_of_scope(text)
    (reply,), state = run(graph, text)
    assert "classification" in reply and "%" not in reply and not state.get("recommendation")
    replies, state = run(graph, FULL, "Can you also draw bounding boxes around the lesions?")
    assert "I can't help with object detection" in replies[1]


def test_from_scratch_edit_changes_the_recommendation(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, FULL, "Train it from scratch instead then")
    assert state["constraints"]["require"] == {"pretrained": False}
    assert state["recommendation"]["best"]["config"]["pretrained"] is False
    [out] = rank_outputs(state, 2)
    assert out["args"]["require"] == {"pretrained": False}
    assert "from scratch" in replies[1] or "From scratch" in replies[1]


def test_budget_question_is_asked_once(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, NO_BUDGET, "Why not a ViT?", "I have a laptop")
    assert BUDGET_QUESTION in replies[0] and state["budget_asked"]
    assert BUDGET_QUESTION not in replies[1] and BUDGET_QUESTION not in replies[2]
    assert state["constraints"]["budget"] == "I have a laptop"
    assert state["recommendation"]["budget"]["device"] == "cpu"


def test_launching_an_edited_plan_reranks_then_proposes_it(tools, store, launcher, root) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, f"Data: {root}/bands.npz, chest x-rays.",
                         "Launch ResNet-18 from scratch instead, 64 px, 3 epochs")
    assert state["awaiting_launch_confirmation"]
    config = state["pending_launch"]["config"]
    assert config["model"] == "resnet18" and config["pretrained"] is False
    assert config["epochs"] == 3 and config["resolution"] == 64
    # "64 px" is the model's input size: the measured image size stays
    assert state["traits"]["height"] == {"value": 16, "source": "measured"}
    assert state["traits"]["width"] == {"value": 16, "source": "measured"}


def test_answers_read_the_keys_and_labels_the_tools_write() -> None:
    """A renamed key of `ranked_facts` or factor label of `knowledge.explain` fails here instead
    of silently leaving a setting out of a comparison."""
    from agent.answers import FACTOR_SETTING, SETTINGS
    from agent.facts import RANKED_KEYS
    from knowledge.explain import _label

    assert {k for k, _ in SETTINGS} <= set(RANKED_KEYS)
    for group in ("model", "scheme", "resolution", "pretrained", "lr", "epochs", "batch_size",
                  "optimizer", "augmentation", "weight_decay", "label_smoothing"):
        assert _label(group) in FACTOR_SETTING, group


def test_a_launch_without_weights_offers_the_from_scratch_config(store, root) -> None:
    from agent.nodes import launch, make_runtime
    from agent.testing import ScriptedChatModel
    from tools import get_tools
    from tools.base import make_tool
    from tools.training import LaunchArgs

    calls: list[dict] = []

    def no_weights(dataset: str, config: object, confirmed: bool = False,
                   time_budget_minutes: float | None = None) -> str:
        cfg = config.model_dump() if hasattr(config, "model_dump") else dict(config)
        calls.append(cfg)
        if cfg.get("pretrained"):
            return json.dumps({"error": f"could not download pretrained weights for {cfg['model']} "
                                        "(no internet); pass a weights file"})
        return json.dumps({"run_id": "run-scratch", "status": "ok", "test_acc_pct": 70.0})

    tools = [*get_tools(store.path, training_tool=False),
             make_tool(no_weights, "launch_training", "train (fake)", LaunchArgs)]
    rt = make_runtime(ScriptedChatModel(script=[]), tools, store=store.path, max_steps=2)
    pretrained = {"model": "resnet18", "pretrained": True, "scheme": "end_to_end",
                  "resolution": 64, "epochs": 3}
    state = {"messages": [], "turn": 2, "dataset": f"{root}/bands.npz", "constraints": {},
             "traits": {"n_instances": {"value": 45, "source": "measured"},
                        "n_classes": {"value": 3, "source": "measured"},
                        "modality": {"value": "x-ray", "source": "stated"}},
             "pending_launch": {"dataset": f"{root}/bands.npz", "config": pretrained}}
    update = launch(state, rt)
    text = update["messages"][-1].content
    assert "could not download pretrained weights" in text and "Shall I start it instead?" in text
    assert update["awaiting_launch_confirmation"] is True
    offered = update["pending_launch"]["config"]
    assert offered["pretrained"] is False and update["pending_launch"]["dataset"].endswith("bands.npz")
    assert len(calls) == 1  # nothing else was trained


def test_routing_sends_planned_kinds_to_plan() -> None:
    from langchain_core.messages import HumanMessage

    from agent import routing
    from agent.nodes.runtime import state_key

    def state(text: str, **extra: object) -> dict:
        return {"messages": [HumanMessage(text)], "turn": 1, **extra}

    assert routing.next_step(state("I need segmentation of 3-D CT volumes")) == "plan"
    traits = {k: {"value": v, "source": "stated"} for k, v in
              {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}.items()}
    rec = {"best": {"config": {"model": "densenet121"}}}
    done = state("", traits=traits, constraints={}, recommendation=rec)
    for text, step in (("Give me the command.", "plan"), ("How long on a T4?", "plan"),
                       ("Why not a ViT?", "plan"), ("What lr for ResNet-50?", "plan"),
                       ("Thanks!", "agent"), ("Launch it.", "propose_launch")):
        s = {**done, "messages": [HumanMessage(text)]}
        s["recommended_for"] = state_key(s)
        assert routing.next_step(s) == step, text


def test_a_hyperparameter_follow_up_keeps_the_model_discussed(tools, store) -> None:
    graph, _ = make(Brain(), tools, store)
    replies, state = run(graph, FULL, "What learning rate would you use for a pretrained ResNet-50?",
                         "And how many epochs for that?")
    [out] = rank_outputs(state, 3)
    assert out["args"]["require"] == {"model": "resnet50", "pretrained": True}
    assert "ResNet-50" in replies[2] and "epochs" in replies[2]
