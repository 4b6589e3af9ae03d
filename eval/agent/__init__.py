"""Scripted agent evals: `metallmix eval agent`.

Scenario files (`eval/scenarios/*.yaml`, schema in `scenario`) describe a persona, the truth about
their dataset, the user's turns and what the conversation must show. The `runner` plays each one on
the advisor graph over a copy of the run store (`workspace`), with any LLM backend or the
deterministic `scripted` stand-in (`scripted`; a simulated user in `simulate`), judges it
(`agent.judge`), scores it (`metrics`, LLM usage from `usage`) and writes the report (`report`).
"""
