"""MetaLLMiX domain logic: datasets, meta-features, search space, run store, training.

Nothing in this package imports LangChain; `tools/` wraps it for the agent.
"""

__version__ = "0.1.0"
