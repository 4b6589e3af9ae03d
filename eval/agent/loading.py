"""Reading scenario files (`eval.agent.scenario` holds their schema and re-exports these):

    scenarios = load_scenarios()                           # every eval/scenarios/*.yaml
    scenarios = load_scenarios(["correction-*", "why-not-vit"])
    scenario = load_scenario(Path("my.yaml"))              # ScenarioError names file and field
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eval.agent.scenario import SCENARIO_DIR, Scenario, ScenarioError


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top level)"


def load_scenario(path: str | Path) -> Scenario:
    """One scenario file; ScenarioError (one line naming the file and the field) when bad."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ScenarioError(f"scenario {path} is not valid YAML{line}: {first}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {path}: expected a mapping of fields at the top level")
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise ScenarioError(f"scenario {path}: name: {data['name']!r} differs from the file "
                            f"name {path.stem!r}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ScenarioError(f"scenario {path}: {_where(err)}: {msg}{more}") from None
    return scenario.model_copy(update={"source": str(path)})


def scenario_files(directory: str | Path | None = None) -> list[Path]:
    """The scenario files of `directory` (default: the shipped `eval/scenarios`), by name."""
    directory = Path(directory) if directory is not None else SCENARIO_DIR
    if not directory.is_dir():
        raise ScenarioError(f"scenario folder not found: {directory}")
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def select(names: Sequence[str], patterns: Iterable[str] | None) -> list[str]:
    """The names matching any pattern (names or globs, comma-separated allowed), in order;
    ScenarioError for a pattern that matches nothing."""
    if not patterns:
        return list(names)
    wanted = [p.strip() for item in patterns for p in item.split(",") if p.strip()]
    chosen: list[str] = []
    for pattern in wanted:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ScenarioError(f"no scenario matches {pattern!r}; known: {', '.join(names)}")
        chosen += [h for h in hits if h not in chosen]
    return [n for n in names if n in chosen]


def load_scenarios(patterns: Iterable[str] | None = None,
                   directory: str | Path | None = None) -> list[Scenario]:
    """The scenarios of `directory` whose names match `patterns` (default: all), by name."""
    files = {p.stem: p for p in scenario_files(directory)}
    if not files:
        raise ScenarioError(f"no scenario files (*.yaml) in {directory or SCENARIO_DIR}")
    return [load_scenario(files[name]) for name in select(sorted(files), patterns)]



__all__ = ["load_scenario", "load_scenarios", "scenario_files", "select"]
