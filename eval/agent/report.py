"""Tables of an agent-eval report: the overall table (one column per backend) and the per-scenario
table (one column group per backend), as rich tables for the terminal and as a Markdown fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

Row = tuple[str, Callable[[dict[str, Any]], str]]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _judge(o: dict[str, Any]) -> str:
    s = o.get("judge_scores") or {}
    if not o.get("judged"):
        return "–"
    return " / ".join(_num(s.get(c)) for c in ("format", "accuracy", "completeness"))


def _tokens(usage: dict[str, Any] | None) -> str:
    rate = (usage or {}).get("tokens_per_s")
    if rate is None:
        return "not reported" if (usage or {}).get("llm_calls") else "–"
    return f"{rate:.1f} ({usage['output_tokens']:,} out, {usage['llm_calls']} calls)"


OVERALL_ROWS: tuple[Row, ...] = (
    ("scenarios passed", lambda o: f"{o['passed']} / {o['scenarios'] - o['xfailed'] - o['xpassed']}"
     + (f" (+{o['xfailed']} xfail, {o['xpassed']} xpass)" if o["xfailed"] or o["xpassed"] else "")),
    ("completed with a recommendation", lambda o: f"{o['completed']} / {o['scenarios']}"),
    ("trait-extraction accuracy", lambda o: _pct(o["trait_accuracy"])),
    ("fields correct (traits + budget)", lambda o: f"{o.get('fields_correct', 0)} / {o.get('fields', 0)}"
     + (f" ({_pct(o['fields_correct'] / o['fields'])})" if o.get("fields") else "")),
    ("questions asked twice", lambda o: str(o.get("questions_asked_twice", 0))),
    ("follow-ups answered, by kind", lambda o: ", ".join(
        f"{k} {v['passed']}/{v['total']}" for k, v in (o.get("followups_by_kind") or {}).items())
     or "–"),
    ("tool-call validity", lambda o: f"{_pct(o['tool_validity'])} of {o['tool_calls']}"),
    ("configs inside the search space", lambda o: _pct(o["config_in_space"])),
    ("grounded replies", lambda o: _pct(o["grounded_replies"])),
    ("safety violations", lambda o: str(o["safety_violations"])),
    ("judge format / accuracy / completeness", _judge),
    ("judge passed", lambda o: f"{o['judge_passed']} / {o['judged']}" if o["judged"] else "–"),
    ("judge agrees with its checks", lambda o: _pct(o["judge_agreement"])),
    ("median turns to the recommendation", lambda o: _num(o["median_turns_to_recommendation"])),
    ("median seconds to the recommendation", lambda o: _num(o["median_seconds_to_recommendation"])),
    ("seconds per turn", lambda o: _num(o["seconds_per_turn"], 2)),
    ("advisor LLM: calls (failed)", lambda o: f"{o['usage'].get('llm_calls', 0)} "
     f"({o['usage'].get('llm_errors', 0)}), {o['usage'].get('llm_seconds', 0):.0f} s"),
    ("advisor LLM output tokens / s", lambda o: _tokens(o["usage"])),
    ("judge LLM output tokens / s", lambda o: _tokens(o.get("judge_usage"))),
    ("total seconds", lambda o: _num(o["seconds"], 0)),
)

SCENARIO_COLUMNS: tuple[Row, ...] = (
    ("result", lambda r: r["outcome"].upper()),
    ("turns→rec", lambda r: str(r["metrics"]["turns_to_recommendation"] or "–")),
    ("s→rec", lambda r: _num(r["metrics"]["seconds_to_recommendation"])),
    ("traits", lambda r: _pct(r["metrics"]["trait_accuracy"])),
    ("tools ok", lambda r: _pct(r["metrics"]["tools"]["tool_validity"])),
    ("grounded", lambda r: "yes" if r["metrics"]["grounding"]["grounded"] else "NO"),
    ("follow-ups", lambda r: (f"{sum(f['passed'] for f in r['metrics']['followups'])}/"
                              f"{len(r['metrics']['followups'])}")
     if r["metrics"].get("followups") else "–"),
    ("asked twice", lambda r: str(len(r["metrics"].get("repeated_questions") or []))),
    ("safe", lambda r: "yes" if r["metrics"]["safety"]["safe"] else "NO"),
    ("judge F/A/C", lambda r: "/".join(str(v) for v in r["metrics"]["judge"]["scores"].values())
     if r["metrics"]["judge"] else "–"),
)


def _backends(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in report["backends"] if b.get("overall")]


def _label(backend: dict[str, Any]) -> str:
    return backend["llm"] if len(backend["llm"]) <= 40 else "…" + backend["llm"][-39:]


def overall_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    backends = _backends(report)
    header = ["metric", *(_label(b) for b in backends)]
    return header, [[name, *(cell(b["overall"]) for b in backends)] for name, cell in OVERALL_ROWS]


def scenario_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    backends = _backends(report)
    multi = len(backends) > 1
    header = ["scenario"] + [f"{_label(b)}: {name}" if multi else name
                             for b in backends for name, _ in SCENARIO_COLUMNS]
    rows = []
    for name in report["scenarios"]:
        row = [name]
        for b in backends:
            result = next((r for r in b["results"] if r["scenario"] == name), None)
            row += ([cell(result) for _, cell in SCENARIO_COLUMNS] if result
                    else ["–"] * len(SCENARIO_COLUMNS))
        rows.append(row)
    return header, rows


def rich_tables(report: dict[str, Any]) -> list[Table]:
    """The overall and per-scenario tables for the terminal."""
    tables = []
    for title, (header, rows) in (("Agent evals — overall", overall_rows(report)),
                                  ("Agent evals — per scenario", scenario_rows(report))):
        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in rows:
            table.add_row(*row)
        tables.append(table)
    return tables


def failures(report: dict[str, Any]) -> list[str]:
    """One line per failed (or unexpectedly passing) scenario, with the reasons."""
    out = []
    for b in report["backends"]:
        if b.get("error"):
            out.append(f"{b['llm']}: not run: {b['error']}")
        for r in b["results"]:
            if r["outcome"] in ("fail", "xfail"):
                tag = "known defect: " + r["xfail"] if r["outcome"] == "xfail" else "FAIL"
                out.append(f"{b['llm']} · {r['scenario']} ({tag}): " + "; ".join(r["failed"])[:600])
            elif r["outcome"] == "xpass":
                out.append(f"{b['llm']} · {r['scenario']}: XPASS (the known defect is gone: "
                           f"drop its xfail)")
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any], command: str | None = None) -> str:
    """A Markdown fragment: what was run, on what, the tables and the failures."""
    m = report["machine"]
    s = report["settings"]
    lines = ["### Agent evals (`metallmix eval agent`)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"Run {report['created']} on {m['cpu']} ({m['cpu_count']} CPUs), {m['platform']}, "
              f"Python {m['python']}; {len(report['scenarios'])} scenarios; per-scenario limit "
              f"{s['timeout_s']:g} s / {s['max_turns']} turns; launched runs capped at "
              f"{s['launch_minutes']:g} min of training; run store: a copy of {s['store']}.", ""]
    for b in report["backends"]:
        desc = b.get("description") or b.get("error", "")
        lines.append(f"- `{b['llm']}`: {desc}; judge: {b.get('judge', '–')}")
    if any(b["llm"] == "scripted" for b in report["backends"]):
        lines += ["", "The `scripted` backend is a deterministic stand-in for a competent small LLM "
                  "(`eval/agent/scripted.py`): it returns the structured extraction each scenario "
                  "file states for that message, writes answers from the facts it is given, falls "
                  "for prompt injections on purpose (so the graph's defences are what is tested) "
                  "and grades with a string-level rubric. Its figures test the graph, the tools "
                  "and the metrics, not a language model."]
    lines += ["", _md_table(*overall_rows(report)), "", _md_table(*scenario_rows(report))]
    problems = failures(report)
    if problems:
        lines += ["", "Failures and known defects:", "", *[f"- {p}" for p in problems]]
    return "\n".join(lines) + "\n"


__all__ = ["failures", "overall_rows", "rich_tables", "scenario_rows", "to_markdown"]
