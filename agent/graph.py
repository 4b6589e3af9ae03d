"""The advisor: a LangGraph graph that turns a conversation into a grounded recommendation.

    graph = build_advisor(model, checkpointer=open_checkpointer("threads.sqlite"))
    reply = advise(graph, "3,000 chest X-rays, 3 classes, one hour on a T4", thread_id="alice")

The flow of one user turn (nodes: `agent.nodes`, routers: `agent.routing`), as wired below:

    START -> extract -(after_extract)-> launch -> END        a "yes" right after propose_launch
                                     -> END                 extract answered (a "no", a device?)
                                     -> analyze -(after_analyze)-> next_step
                                     -> next_step:
        propose_launch -> END                               "launch it": asks for an explicit yes
        ask -> END                                          a required trait is missing
        recommend -(after_recommend)-> answer -> ground     no recommendation for these traits yet
                                    -> propose_launch       "launch X from scratch instead"
                                    -> END                  the ranking failed (the user is told)
        plan -(after_plan)-> ground                         a follow-up the graph answers itself
                          -> END                            out of scope: declined in a sentence
        agent -(after_agent)-> tools -> agent               a follow-up: tool calls ...
                            -> ground                       ... then a draft
    ground -(after_ground)-> END                            grounded, or the deterministic fallback
                          -> answer | agent                 one retry by whoever drafted it

`recommend` makes the turn's `Recommendation` once; `answer` (the LLM, from compact facts) and the
follow-up loop (`agent` <-> `tools`, at most `AgentConfig.max_steps` rounds) write drafts that
`ground` checks: every number a tool output's number about the same config, every name in the
tool outputs, a recommendation stating its pick, else one retry and then the deterministic card.
Every node reports its seconds and LLM usage in the state's `timing` (`agent.timing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from agent import routing
from agent.configuration import AgentConfig
from agent.conversation import advise, open_checkpointer, reply_text, thread_config, transcript
from agent.nodes import (
    agent,
    analyze,
    answer,
    ask,
    extract,
    ground,
    launch,
    make_runtime,
    plan,
    propose_launch,
    recommend,
    run_tools,
)
from agent.nodes.answer import complete_lines as _complete_lines  # noqa: F401 - tests use it
from agent.nodes.runtime import (
    ANSWER_TOKENS,
    ASK_TOKENS,
    DEFAULT_HEIGHT,
    EXTRACT_TOKENS,
    FOLLOWUP_TOKENS,
    FOLLOWUP_TOOLS,
    MAX_DRAFTS,
    SLIM_FOLLOWUP_TOOLS,
    Recommender,
    default_recommender,
    missing_traits,
)
from agent.state import AdvisorState
from agent.timing import timed
from tools import get_tools

MAX_STEPS = AgentConfig.model_fields["max_steps"].default  # follow-up rounds per turn


def build_advisor(model: BaseChatModel, tools: Sequence[BaseTool] | None = None,
                  checkpointer: Any = None, *, store: str | Path | None = None,
                  recommender: Recommender | None = None, max_steps: int | None = None,
                  retries: int = 2, llm_extraction: str = "auto") -> Any:
    """The compiled advisor graph (see the module docstring).

    `tools`: default `tools.get_tools(store)` (analyze_dataset, rank_configs, explain_config and
    similar_runs are needed, launch_training is optional); `checkpointer`: e.g. `open_checkpointer`;
    `recommender(traits, budget, dataset)` returns the `Recommendation` (default: the store's
    advisor); `max_steps`: follow-up rounds per turn (default `AgentConfig.max_steps`); `retries`:
    extra attempts of a structured extraction; `llm_extraction`: "auto" (only when the regexes may
    have missed something) or "always".
    """
    max_steps = MAX_STEPS if max_steps is None else max_steps
    rt = make_runtime(model, list(tools) if tools is not None else get_tools(store), store=store,
                      recommender=recommender, max_steps=max_steps, retries=retries,
                      llm_extraction=llm_extraction)
    graph = StateGraph(AdvisorState)
    for node in (extract, analyze, ask, recommend, answer, plan, agent, ground, propose_launch,
                 launch):
        graph.add_node(node.__name__, timed(node.__name__, partial(node, rt=rt)))
    graph.add_node("tools", timed("tools", partial(run_tools, rt=rt)))

    graph.add_edge(START, "extract")
    graph.add_conditional_edges("extract", routing.after_extract)
    graph.add_conditional_edges("analyze", routing.after_analyze)
    graph.add_edge("ask", END)
    graph.add_edge("propose_launch", END)
    graph.add_edge("launch", END)
    graph.add_conditional_edges("recommend", routing.after_recommend)
    graph.add_edge("answer", "ground")
    graph.add_conditional_edges("plan", routing.after_plan)
    graph.add_conditional_edges("agent", routing.after_agent)
    graph.add_edge("tools", "agent")
    graph.add_conditional_edges("ground", routing.after_ground)

    compiled = graph.compile(checkpointer=checkpointer, name="metallmix-advisor")
    return compiled.with_config(recursion_limit=2 * max_steps + 4 * MAX_DRAFTS + 20)


__all__ = ["ANSWER_TOKENS", "ASK_TOKENS", "DEFAULT_HEIGHT", "EXTRACT_TOKENS", "FOLLOWUP_TOKENS",
           "FOLLOWUP_TOOLS", "SLIM_FOLLOWUP_TOOLS", "advise", "build_advisor",
           "default_recommender", "missing_traits", "open_checkpointer", "reply_text",
           "thread_config", "transcript"]
