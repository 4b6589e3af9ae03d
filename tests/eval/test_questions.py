"""The realistic-question suite (`eval/questions.yaml`, `eval.questions`): the file loads and covers
the situations of issue 12, bad entries fail with one line naming the entry, and - the CI test -
every question asked of a learner fitted on the shipped meta-dataset gets a pick backed by recorded
runs wherever a backed config fits the budget, and says so in words where none does."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from eval.questions import (
    QUESTIONS_FILE,
    Question,
    QuestionError,
    aggregate,
    ask,
    load_questions,
    run_suite,
    says_extrapolates,
    to_markdown,
    write_report,
)
from knowledge.metafeatures import MODALITIES

HAM_COUNTS = [6705, 1113, 1099, 514, 327, 142, 115]
MEDICAL = {"x-ray", "dermoscopy", "ultrasound", "histopathology", "fundus", "oct", "ct", "mri",
           "microscopy"}
BUDGETS = {"CPU only", "CPU only, 10 minutes", "my laptop, 1 hour", "one hour on a T4",
           "A100, 4 hours", "V100 for 30 minutes", "2 hours on an L4", "H100",
           "RTX 4090 for 2 hours", "30 min on a GTX 1080", "1 hour on 8xA100", "Colab", None}


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return load_questions()


def _n(q: Question) -> int | None:
    counts = q.traits.get("class_counts")
    return sum(counts) if counts else q.traits.get("n_instances")


# --- the file ------------------------------------------------------------------------------------

def test_shipped_questions_cover_the_issue(questions) -> None:
    assert len(questions) >= 32
    assert len({q.name for q in questions}) == len(questions)
    modalities = {q.traits.get("modality") for q in questions}
    assert MEDICAL <= modalities and modalities - MEDICAL - {None}  # and some non-medical
    assert modalities - {None} <= set(MODALITIES)
    assert BUDGETS <= {q.budget for q in questions}
    sizes = [n for q in questions if (n := _n(q)) is not None]
    assert min(sizes) <= 1000 and max(sizes) >= 50000
    pixels = [q.traits["height"] for q in questions if "height" in q.traits]
    assert min(pixels) <= 32 and max(pixels) >= 512
    assert {q.traits.get("channels") for q in questions} >= {1, 3}
    # the issue's cases
    ham = {q.budget for q in questions if q.traits.get("class_counts") == HAM_COUNTS
           and q.traits.get("height") == 450 and q.traits.get("width") == 600
           and q.traits.get("channels") == 3 and q.traits.get("modality") == "dermoscopy"}
    assert ham == {"one hour on a T4", "A100, 4 hours", None}
    assert any(q.traits.get("modality") == "x-ray" and _n(q) == 3000 and q.traits.get("n_classes") == 3
               and q.traits.get("height") == 512 and q.traits.get("channels") == 1
               and q.budget == "CPU only" for q in questions)
    assert any(q.traits.get("modality") == "ultrasound" and _n(q) == 546 for q in questions)
    assert any(q.traits.get("modality") == "fundus" and _n(q) == 1080
               and len(q.traits.get("class_counts", ())) == 5 for q in questions)
    # strongly imbalanced and balanced ones
    ratios = [q.traits.get("imbalance_ratio") or (max(c) / min(c) if (c := q.traits.get(
        "class_counts")) else None) for q in questions]
    assert max(r for r in ratios if r) >= 30 and 1.0 in ratios


@pytest.mark.parametrize("body, expected", [
    ("- {name: ok-one, traits: {n_instances: 100, n_classes: 2}, budget: null}\n"
     "- {name: bad-two, traits: {n_instances: 100, modality: xray-ish}, budget: CPU only}\n",
     r"entry 1 \('bad-two'\): traits: modality: .*unknown modality 'xray-ish'"),
    ("- {name: bad-key, traits: {n_images: 100}, budget: null}\n",
     r"entry 0 \('bad-key'\): traits: unknown key 'n_images'"),
    ("- {name: no-budget-key, traits: {n_classes: 3}}\n", r"entry 0 \('no-budget-key'\): budget: "),
    ("- {name: Not A Slug, traits: {n_classes: 3}, budget: null}\n", r"entry 0 .*name: .*not a slug"),
    ("- {name: twice, traits: {n_classes: 3}, budget: null}\n"
     "- {name: twice, traits: {n_classes: 4}, budget: null}\n", r"entry 1: name 'twice' repeats"),
    ("- {name: extra, traits: {n_classes: 3}, budget: null, bugdet: 1h}\n", r"entry 0 .*bugdet"),
    ("- just a string\n", r"entry 0: expected a mapping"),
    ("name: not-a-list\n", r"expected a non-empty list"),
    ("- {name: [unclosed\n", r"not valid YAML \(line \d+\)"),
])
def test_malformed_entry_names_it(tmp_path, body, expected) -> None:
    path = tmp_path / "questions.yaml"
    path.write_text(body)
    with pytest.raises(QuestionError, match=expected) as info:
        load_questions(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_missing_file_is_one_line(tmp_path) -> None:
    with pytest.raises(QuestionError, match="cannot read questions .*nope.yaml"):
        load_questions(tmp_path / "nope.yaml")


# --- the suite against the shipped meta-dataset --------------------------------------------------

@pytest.fixture(scope="module")
def shipped_store(tmp_path_factory):
    """A store holding the shipped meta-dataset, its learner fitted small and single-threaded (a
    few seconds), in a MetaLLMiX home of its own; the Advisor cache is cleared around it."""
    from knowledge.meta_dataset.shipped import SHIPPED
    from knowledge.metalearner import model
    from knowledge.recommend import clear_cache
    from knowledge.runs.store import RunStore
    from tests.knowledge.recommend_fixtures import SMALL_ACC_PARAMS, SMALL_COST_PARAMS

    if not SHIPPED.exists():
        pytest.skip("no shipped meta-dataset in this checkout")
    home = tmp_path_factory.mktemp("questions-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METALLMIX_HOME", str(home))
        mp.setenv("METALLMIX_STORE", str(home / "runs.sqlite"))
        mp.setenv("METALLMIX_EMBEDDINGS", "hashing")
        mp.setattr(model, "ACC_PARAMS", SMALL_ACC_PARAMS)
        mp.setattr(model, "COST_PARAMS", SMALL_COST_PARAMS)
        clear_cache()
        store = RunStore(home / "shipped.sqlite")
        store.import_file(SHIPPED)
        yield store, mp
    clear_cache()


@pytest.fixture(scope="module")
def report(shipped_store, questions):
    store, _ = shipped_store
    return run_suite(questions, store=store)


def test_every_pick_is_supported_where_a_supported_config_fits(report, questions) -> None:
    rows = report["rows"]
    assert [r["name"] for r in rows] == [q.name for q in questions]
    assert [r["error"] for r in rows] == [None] * len(rows)  # every situation gets an answer
    for r in rows:
        if r["supported_fits"]:
            assert r["supported"], f"{r['name']}: unsupported pick {r['pick']} ({r['support']}) " \
                                   "although a supported config fits"
            assert not r["extrapolates"]
        else:
            assert r["extrapolates"], r["name"]
            assert says_extrapolates(r["notes"]), f"{r['name']}: no note says it extrapolates"
        assert r["support"]  # the evidence, in words
        assert r["acc_lo"] <= r["acc"] <= r["acc_hi"]
        assert r["interval_width"] == pytest.approx(r["acc_hi"] - r["acc_lo"], abs=0.11)
    assert report["aggregate"]["n_unsupported_where_supported_fits"] == 0


def test_rows_carry_the_parsed_budget_and_time(report, questions) -> None:
    by_name = {r["name"]: r for r in report["rows"]}
    for q in questions:
        r = by_name[q.name]
        assert r["budget_text"] == q.budget
        assert (r["budget"] is None) == (q.budget is None)
        assert (r["seconds"] is None) == (_n(q) is None)  # times need n_instances
    assert by_name["chest-xray-3000-cpu"]["budget"] == "no time limit on CPU"
    assert by_name["chest-xray-3000-cpu"]["device"] == "cpu"
    assert by_name["ham10000-t4-1h"]["device"] == "t4"
    assert by_name["ham10000-t4-1h"]["seconds"] <= 3600


def test_aggregates_come_from_the_rows(report) -> None:
    rows, agg = report["rows"], report["aggregate"]
    ok = [r for r in rows if r["error"] is None]
    assert agg["n_questions"] == len(rows)
    assert agg["n_answered"] == len(ok) and agg["n_errors"] == len(rows) - len(ok)
    assert agg["n_supported"] == sum(1 for r in ok if r["supported"])
    assert agg["n_extrapolates"] == sum(1 for r in ok if r["extrapolates"])
    assert agg["n_unsupported_where_supported_fits"] == sum(
        1 for r in ok if r["supported_fits"] and not r["supported"])
    assert agg["median_interval_width"] == pytest.approx(
        statistics.median(r["interval_width"] for r in ok), abs=0.05)
    assert sum(agg["evidence_tiers"].values()) == len(ok)
    # change the rows and the counts follow
    broken = [dict(ok[0], supported=False, supported_fits=True), *rows[1:],
              {"name": "refused", "budget_text": "5 s", "error": "nothing fits"}]
    again = aggregate(broken)
    assert again["n_questions"] == len(rows) + 1 and again["n_errors"] == agg["n_errors"] + 1
    assert again["n_unsupported_where_supported_fits"] == 1
    assert again["n_supported"] == agg["n_supported"] - (1 if ok[0]["supported"] else 0)


def test_report_has_machine_info_and_renders(report, tmp_path) -> None:
    m = report["machine"]
    assert m["platform"] and m["cpus"] and "loadavg_before" in m and "loadavg_after" in m
    text = to_markdown(report)
    assert all(f"| {r['name']} |" in text for r in report["rows"])
    assert f"**{report['aggregate']['n_unsupported_where_supported_fits']}**" in text
    md = write_report(report, tmp_path / "out" / "questions.json")
    assert md == tmp_path / "out" / "questions.md" and md.read_text() == text
    saved = json.loads((tmp_path / "out" / "questions.json").read_text())
    assert saved["aggregate"] == report["aggregate"]


def test_a_refused_question_is_recorded_not_raised(shipped_store) -> None:
    store, _ = shipped_store
    row = ask(Question(name="no-size", traits={"n_classes": 3}, budget="10 minutes"), store=store)
    assert row["name"] == "no-size" and "n_instances" in row["error"]
    report = {"rows": [row], "aggregate": aggregate([row]), "store": "x", "total_s": 0.0,
              "machine": {"platform": "p", "python": "3", "cpus": 1, "loadavg_before": None,
                          "loadavg_after": None}}
    assert report["aggregate"]["n_errors"] == 1
    assert "| no-size | 10 minutes (no budget) | error: a time budget needs" in to_markdown(report)


def test_cli_eval_questions(shipped_store, tmp_path) -> None:
    from ui.cli import build_app

    store, _ = shipped_store
    small = tmp_path / "two.yaml"
    small.write_text(
        "- {name: cxr, traits: {n_instances: 3000, n_classes: 3, height: 512, channels: 1, "
        "modality: x-ray}, budget: CPU only}\n"
        "- {name: derm, traits: {n_instances: 10000, n_classes: 7, modality: dermoscopy}, "
        "budget: one hour on a T4}\n")
    out = tmp_path / "res" / "q.json"
    result = CliRunner().invoke(build_app("eval"), ["eval", "questions", "--store", str(store.path),
                                                    "--out", str(out), "--questions", str(small)])
    assert result.exit_code == 0, result.output
    assert "| cxr |" in result.output and "| derm |" in result.output
    saved = json.loads(out.read_text())
    assert [r["name"] for r in saved["rows"]] == ["cxr", "derm"]
    assert out.with_suffix(".md").is_file()


def test_default_questions_file_is_the_shipped_one() -> None:
    assert QUESTIONS_FILE.name == "questions.yaml" and QUESTIONS_FILE.parent.name == "eval"
