"""The advisor's nodes, one module per concern. Each node is `node(state, rt)`: the state and the
`Runtime` (models, tools, recommender, limits; `agent.nodes.runtime`), and returns its update.
`agent.graph` binds `rt` with `functools.partial` and wires them with `agent.routing`."""

from agent.nodes.analyze import analyze
from agent.nodes.answer import answer
from agent.nodes.ask import ask
from agent.nodes.extract import extract
from agent.nodes.followup import agent, run_tools
from agent.nodes.ground import ground
from agent.nodes.launch import launch, propose_launch
from agent.nodes.plan import plan
from agent.nodes.recommend import recommend
from agent.nodes.runtime import Runtime, make_runtime

__all__ = ["Runtime", "agent", "analyze", "answer", "ask", "extract", "ground", "launch",
           "make_runtime", "plan", "propose_launch", "recommend", "run_tools"]
