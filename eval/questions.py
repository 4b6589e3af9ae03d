"""The realistic-question suite: user situations asked of `metallmix recommend`, one report.

    questions = load_questions()                 # eval/questions.yaml, validated
    report = run_suite(questions)                # the default store; or store=PATH / RunStore
    print(to_markdown(report))

    python -m eval.questions --out eval/results/questions.json   # JSON + Markdown beside it

Each question (`eval/questions.yaml`) is what a user states - traits and a budget in their own
words - and is answered by `knowledge.recommend.recommend(meta_from_traits(traits), budget=...)`,
the function `metallmix recommend --traits ... --budget ...` calls. A row records the pick, its
evidence (the recorded runs that back it), the predicted accuracy with its 80 % interval, the
predicted time, and the notes; a question the recommender refuses (a `MetaLLMiXError`) is recorded
with its error. The aggregates say how many top picks are backed by evidence and, the invariant,
how many picks are unsupported although a supported candidate fits the budget (must be 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from knowledge.errors import ConfigError, DatasetError, MetaLLMiXError
from knowledge.metalearner.budget import format_seconds
from knowledge.recommend import config_label, meta_from_traits, recommend

if TYPE_CHECKING:
    from knowledge.recommend import Recommendation
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

QUESTIONS_FILE = Path(__file__).resolve().parent / "questions.yaml"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "questions.json"
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_EXTRAPOLATES = re.compile(r"extrapolat", re.IGNORECASE)


class QuestionError(ConfigError):
    """A questions file that cannot be read or has a bad entry (names the file and the entry)."""


class Question(BaseModel):
    """One user situation: the traits they state and their budget in their words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a unique slug, e.g. 'ham10000-t4-1h'")
    traits: dict[str, Any] = Field(description="what `meta_from_traits` accepts")
    budget: str | None = Field(description="the budget as a user writes it, or null for none")
    note: str | None = Field(None, description="where the situation comes from")

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not a slug (lower-case letters, digits and dashes)")
        return value

    @field_validator("traits")
    @classmethod
    def _traits(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            meta_from_traits(value)
        except DatasetError as exc:
            raise ValueError(str(exc).removeprefix("traits: ")) from None
        return value

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty budget text; write null for no budget")
        return value


# --- loading -------------------------------------------------------------------------------------

def _entry_error(path: Path, i: int, entry: Any, exc: ValidationError) -> QuestionError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(entry)"
    msg = err["msg"].removeprefix("Value error, ")
    name = f" ({entry.get('name')!r})" if isinstance(entry, dict) and entry.get("name") else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return QuestionError(f"questions {path}: entry {i}{name}: {where}: {msg}{more}")


def load_questions(path: str | Path | None = None) -> list[Question]:
    """The questions of a YAML file (default: `eval/questions.yaml`), a list of entries.

    Raises QuestionError, one line naming the file and the entry (index and name), for an
    unreadable file, invalid YAML, a bad entry or a repeated name."""
    path = Path(path) if path is not None else QUESTIONS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QuestionError(f"cannot read questions {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuestionError(f"questions {path} is not valid YAML{line}: {first}") from None
    if not isinstance(data, list) or not data:
        raise QuestionError(f"questions {path}: expected a non-empty list of entries")
    questions: list[Question] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise QuestionError(f"questions {path}: entry {i}: expected a mapping (name, traits, "
                                f"budget, note), got {type(entry).__name__}")
        try:
            question = Question.model_validate(entry)
        except ValidationError as exc:
            raise _entry_error(path, i, entry, exc) from None
        if question.name in seen:
            raise QuestionError(f"questions {path}: entry {i}: name {question.name!r} repeats")
        seen.add(question.name)
        questions.append(question)
    return questions


# --- asking --------------------------------------------------------------------------------------

def says_extrapolates(notes: Iterable[str]) -> bool:
    """Whether some note says in words that the answer extrapolates."""
    return any(_EXTRAPOLATES.search(n) for n in notes)


def _row(question: Question, rec: Recommendation) -> dict[str, Any]:
    best = rec.best
    support = best.support
    return {
        "name": question.name,
        "budget_text": question.budget,
        "budget": rec.budget.describe() if rec.budget is not None else None,
        "pick": config_label(best),
        "config": best.config.model_dump(mode="json"),
        "support": support.text() if support is not None else None,
        "supported": bool(support is not None and support.supported),
        "supported_fits": bool(rec.supported_fits),
        "extrapolates": bool(rec.extrapolates),
        "evidence_tier": rec.evidence_tier,
        "acc": round(100 * best.predicted_acc, 1),
        "acc_lo": round(100 * best.acc_lo, 1),
        "acc_hi": round(100 * best.acc_hi, 1),
        "interval_width": round(100 * (best.acc_hi - best.acc_lo), 1),
        "seconds": None if best.predicted_seconds is None else round(best.predicted_seconds, 1),
        "time": format_seconds(best.predicted_seconds),
        "time_is_estimate": best.time_is_estimate,
        "device": best.device,
        "n_candidates": rec.n_candidates,
        "notes": list(rec.notes),
        "flags": expert_flags(rec),
        "error": None,
    }


def expert_flags(rec: Recommendation) -> list[str]:
    """Things an expert would question in the pick (heuristics, for a human to look at)."""
    best, c = rec.best, rec.best.config
    flags: list[str] = []
    if c.pretrained and c.scheme == "end_to_end" and c.lr >= 1e-2:
        flags.append(f"fine-tunes a pretrained network end to end at lr {c.lr:.0e}")
    if not c.pretrained and c.spec.params_m >= 20:
        flags.append(f"trains {c.spec.label} ({c.spec.params_m:g} M parameters) from scratch")
    seconds, budget = best.predicted_seconds, rec.budget
    if seconds is not None:
        limit = budget.max_seconds if budget is not None else None
        if limit is not None and seconds > limit:
            flags.append("predicted time exceeds the time budget")
        if limit is not None and seconds < 0.05 * limit:
            flags.append(f"uses under 5 % of the time budget ({format_seconds(seconds)} of "
                         f"{format_seconds(limit)})")
        if seconds < 5:
            flags.append(f"predicted time {seconds:.1f} s is implausibly short")
        if seconds > 86400:
            flags.append(f"predicted time over a day ({format_seconds(seconds)} on {best.device})")
    if best.acc_hi - best.acc_lo > 0.4:
        flags.append(f"80 % interval {100 * (best.acc_hi - best.acc_lo):.0f} points wide")
    return flags


def ask(question: Question, **recommend_kwargs: Any) -> dict[str, Any]:
    """One question's row: `recommend(meta_from_traits(traits), budget=budget, ...)`, as
    `metallmix recommend --traits ... --budget ...` calls it (keywords: store, learner, index,
    top_k, ...). A `MetaLLMiXError` is recorded in `error`, not raised."""
    started = time.perf_counter()
    try:
        rec = recommend(meta_from_traits(question.traits), budget=question.budget,
                        **recommend_kwargs)
    except MetaLLMiXError as exc:
        log.info("question %s: %s", question.name, exc)
        return {"name": question.name, "budget_text": question.budget, "error": str(exc),
                "seconds_to_answer": round(time.perf_counter() - started, 3)}
    row = _row(question, rec)
    row["seconds_to_answer"] = round(time.perf_counter() - started, 3)
    return row


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The suite's counts, computed from the rows."""
    ok = [r for r in rows if r.get("error") is None]
    widths = [r["interval_width"] for r in ok]
    tiers: dict[str, int] = {}
    for r in ok:
        tiers[r["evidence_tier"]] = tiers.get(r["evidence_tier"], 0) + 1
    return {
        "n_questions": len(rows),
        "n_answered": len(ok),
        "n_errors": len(rows) - len(ok),
        "n_supported": sum(r["supported"] for r in ok),
        "n_supported_fits": sum(r["supported_fits"] for r in ok),
        "n_unsupported_where_supported_fits": sum(r["supported_fits"] and not r["supported"]
                                                  for r in ok),
        "n_extrapolates": sum(r["extrapolates"] for r in ok),
        "n_extrapolates_unsaid": sum(r["extrapolates"] and not says_extrapolates(r["notes"])
                                     for r in ok),
        "n_flagged": sum(bool(r["flags"]) for r in ok),
        "evidence_tiers": dict(sorted(tiers.items())),
        "median_interval_width": round(statistics.median(widths), 1) if widths else None,
    }


def machine_info() -> dict[str, Any]:
    """Where the suite ran: platform, Python, cores and the load average (load skews timings)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load] if load else None,
    }


def run_suite(questions: Sequence[Question], store: RunStore | str | Path | None = None,
              **recommend_kwargs: Any) -> dict[str, Any]:
    """Ask every question (of `store`, default the user's store); rows, aggregates, machine."""
    started = time.perf_counter()
    machine = machine_info()
    machine["loadavg_before"] = machine.pop("loadavg")
    rows = []
    for q in questions:
        rows.append(ask(q, store=store, **recommend_kwargs))
        log.info("%s: %s", q.name, rows[-1].get("pick") or rows[-1].get("error"))
    machine["loadavg_after"] = machine_info()["loadavg"]
    return {
        "store": str(getattr(store, "path", store)) if store is not None else "default",
        "rows": rows,
        "aggregate": aggregate(rows),
        "machine": machine,
        "total_s": round(time.perf_counter() - started, 2),
    }


# --- rendering -----------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the aggregates, one table row per question, then notes and flags."""
    agg, m = report["aggregate"], report["machine"]
    lines = [
        "# Realistic questions for `metallmix recommend`",
        "",
        f"{agg['n_questions']} questions ({agg['n_answered']} answered, {agg['n_errors']} refused); "
        f"top pick backed by recorded runs: {agg['n_supported']}; unsupported although a supported "
        f"candidate fits: **{agg['n_unsupported_where_supported_fits']}**; say they extrapolate: "
        f"{agg['n_extrapolates']} (without a note saying so: {agg['n_extrapolates_unsaid']}); "
        f"evidence tiers: {', '.join(f'{k} {v}' for k, v in agg['evidence_tiers'].items()) or '-'}; "
        f"median 80 % interval width: {agg['median_interval_width']} points; flagged for an "
        f"expert: {agg['n_flagged']}.",
        "",
        f"Store: {report['store']}. Machine: {m['platform']}, Python {m['python']}, {m['cpus']} "
        f"CPUs, load average {m['loadavg_before']} before / {m['loadavg_after']} after; "
        f"{report['total_s']:.0f} s in all.",
        "",
        "| question | budget (parsed) | pick | supported | accuracy [80 %] | time | tier |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        said = f"{r['budget_text'] or 'none'} ({r.get('budget') or 'no budget'})"
        if r.get("error") is not None:
            lines.append(f"| {r['name']} | {_cell(said)} | error: {_cell(r['error'])} | | | | |")
            continue
        lines.append(
            f"| {r['name']} | {_cell(said)} | {_cell(r['pick'])} | "
            f"{'yes' if r['supported'] else 'NO'} | {r['acc']} % [{r['acc_lo']}-{r['acc_hi']}] | "
            f"{r['time']} on {r['device']} | {r['evidence_tier']} |")
    detail = [r for r in report["rows"] if r.get("error") is None and (r["flags"] or r["notes"])]
    if detail:
        lines += ["", "## Support, notes and flags", ""]
        for r in detail:
            lines.append(f"- **{r['name']}**: {_cell(r['support'])}")
            lines += [f"  - note: {_cell(n)}" for n in r["notes"]]
            lines += [f"  - FLAG: {_cell(f)}" for f in r["flags"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write the JSON report to `out` and its Markdown beside it (`.md`); returns the .md path."""
    out = Path(out)
    md = out.with_suffix(".md")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        md.write_text(to_markdown(report), encoding="utf-8")
    except OSError as exc:
        raise QuestionError(f"cannot write the report: {exc}") from None
    return md


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m eval.questions [--questions YAML] [--store PATH] [--out JSON]`."""
    parser = argparse.ArgumentParser(prog="python -m eval.questions",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=None, help="questions YAML (default: "
                        "eval/questions.yaml)")
    parser.add_argument("--store", type=Path, default=None, help="run store (default: the "
                        "default store, seeded with the shipped meta-dataset)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report path (the "
                        "Markdown goes beside it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each question")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run_suite(load_questions(args.questions), store=args.store)
        write_report(report, args.out)
    except MetaLLMiXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
