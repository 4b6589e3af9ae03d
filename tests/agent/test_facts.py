"""`agent.facts`: one serialisation of a ranked config, whose key names are exactly the ones the
grounding check reads units from (a renamed key fails here, not silently in what is verified)."""

from __future__ import annotations

import json
from typing import Any

from agent import facts
from agent.facts import (
    COMPACT_RANKED_KEYS,
    KEY_KINDS,
    RANKED_KEYS,
    chosen,
    grounding_sources,
    ranked_facts,
    recommendation_facts,
    recommendation_sources,
)
from agent.grounding import source_records, user_source
from agent.grounding.sources import _key_kind
from knowledge.metalearner.ranking import RankedConfig
from knowledge.search_space import TrainConfig
from tests.agent.helpers import FULL, Brain, make, run

RANKED = RankedConfig(
    config=TrainConfig(model="resnet18", pretrained=True, scheme="end_to_end", resolution=224,
                       lr=3e-4, weight_decay=1e-2, batch_size=64, epochs=12,
                       augmentation="none"),
    predicted_acc=0.72671, acc_lo=0.601, acc_hi=0.842, predicted_seconds=4560.0, device="t4",
    rank=1)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric_keys(d: dict[str, Any]) -> set[str]:
    return {k for k, v in d.items() if _is_number(v)
            or (isinstance(v, list) and v and all(_is_number(x) for x in v))}


def test_serialised_keys_are_exactly_the_keys_grounding_reads_units_from() -> None:
    out = ranked_facts(RANKED)
    assert tuple(out) == tuple(k for k in RANKED_KEYS if k != "evidence")  # no support here
    assert tuple(ranked_facts(RANKED, short=True)) == COMPACT_RANKED_KEYS
    numeric = _numeric_keys(out)
    assert numeric == {k for k in KEY_KINDS if k in RANKED_KEYS}
    for key in numeric:
        assert _key_kind(key, 1.5)[0] == KEY_KINDS[key], key
    assert KEY_KINDS["predicted_accuracy_pct"] == "pct" and KEY_KINDS["resolution_px"] == "px"


def test_grounding_reads_each_serialised_number_in_its_kind() -> None:
    out = ranked_facts(RANKED)
    readings = {(r.cls, round(r.value, 9)) for rec in source_records(json.dumps(out))
                for r in rec.readings}
    assert ("pct", 72.7) in readings and ("pct", 60.1) in readings and ("pct", 84.2) in readings
    assert ("px", 224) in readings and ("lr", 3e-4) in readings and ("wd", 1e-2) in readings
    assert ("batch", 64) in readings and ("epochs", 12) in readings
    assert any(cls == "dur" for cls, _ in readings)  # "training_time": "1.3 h on t4"


def _walk_numeric_keys(value: Any, skip: frozenset[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        found |= {k for k in _numeric_keys(value) if k not in skip}
        for k, v in value.items():
            if k not in skip:
                found |= _walk_numeric_keys(v, skip)
    elif isinstance(value, list):
        for v in value:
            found |= _walk_numeric_keys(v, skip)
    return found


def test_facts_numbers_all_have_declared_kinds(tools, store) -> None:  # noqa: F811
    from knowledge.recommend import Recommendation

    graph, _ = make(Brain(), tools, store)
    _, state = run(graph, FULL)
    rec = Recommendation.model_validate(state["recommendation"])
    skip = frozenset({"dataset_traits"})  # the traits' own names (n_classes, ...)
    for preference in (None, "accuracy", "speed"):
        for compact in (False, True):
            shown = recommendation_facts(rec, preference, compact)
            assert _walk_numeric_keys(shown, skip) <= set(KEY_KINDS)
    assert "average_over_past_runs_pct" in recommendation_facts(rec)

    # the preference rule, once
    assert chosen(rec, None) is rec.best and chosen(rec, "accuracy") is rec.best
    assert chosen(rec, "speed") is (rec.faster if rec.faster is not None else rec.best)
    speed = recommendation_facts(rec, "speed")
    assert speed["recommended"] == ranked_facts(chosen(rec, "speed"))
    assert facts.pick_config(rec, "speed") == chosen(rec, "speed").config.model_dump()

    # no faster alternative, but a config ranked lower that is faster (and forecast more
    # accurate: the anchor put it below the default): "make it faster" presents it
    best = rec.best
    quick = best.model_copy(update={"config": best.config.model_copy(update={"epochs": 4}),
                                    "predicted_seconds": best.predicted_seconds / 2,
                                    "predicted_acc": best.predicted_acc + 0.01, "rank": 2})
    lower = rec.model_copy(update={"faster": None, "more_accurate": quick, "top": [best],
                                   "more_accurate_kind": "ranked_lower",
                                   "more_accurate_within_budget": True})
    assert chosen(lower, "speed") is quick and chosen(lower, None) is best
    shown = recommendation_facts(lower, "speed")
    assert shown["recommended"] == ranked_facts(quick) and shown["chosen_for"].startswith("speed")
    assert shown["best_within_budget"] == ranked_facts(best)
    assert shown["more_accurate_alternative"] is None  # not the presented config again
    assert recommendation_facts(lower)["more_accurate_alternative"] == ranked_facts(quick)
    from agent.nodes.ground import fallback  # the deterministic answer leads with it too
    from knowledge.recommend import config_label

    card = fallback({"mode": "recommend", "recommendation": lower.model_dump(mode="json"),
                     "constraints": {"preference": "speed"}})
    assert card.startswith("You asked for speed: the faster config (ranked lower, forecast more "
                           f"accurate) is **{config_label(quick)}**")
    # the alternatives appended to a short answer name the best, not "no faster config"
    from agent.nodes.ground import completed

    speedy = {"mode": "recommend", "recommendation": lower.model_dump(mode="json"),
              "constraints": {"preference": "speed"}}
    text = completed("Train it.", speedy)
    alternatives = text.split("### Alternatives\n", 1)[1].split("\n\n")[0].splitlines()
    assert alternatives[0].startswith(f"- **Top-ranked within the budget**: {config_label(best)} — ")
    # no number of the presented config beside the best's name (it would read as the best's)
    assert alternatives[0].endswith("; the config above trains faster.") and len(alternatives) == 1
    assert "no config ranked below" not in text
    plain = completed("Train it.", {**speedy, "constraints": {}})
    assert "- **Faster**: no config ranked below the best" in plain and "**More accurate**" in plain
    # an answer without reasons gets the presented config's SHAP factors: the best's own, or this
    # turn's explain_config output for another (none without one)
    why = "### Why (SHAP contributions to its predicted accuracy)\n"
    assert why + f"- {rec.explanation.factors[0].text}" in plain and why not in text
    output = {"factors": [{"factor": "learning rate (log10)", "value": "7e-03", "points": 5.2}],
              "average_over_past_runs_pct": 70.0}
    told = {**speedy, "turn": 2, "tool_outputs": [{"tool": "explain_config", "turn": 2, "output": json.dumps(output),
                                                   "args": {"config": quick.config.model_dump()}}]}
    assert why + "- learning rate (log10) 7e-03 → +5.2 points" in completed("Train it.", told)
    assert why not in completed("Train it, because it is fast.", told)
    # one ranked higher that is faster too (the default, above the configs the anchor moved): it
    default = quick.model_copy(update={"config": best.config.model_copy(update={"epochs": 10}),
                                       "predicted_seconds": best.predicted_seconds * 0.7})
    slow = quick.model_copy(update={"predicted_seconds": best.predicted_seconds * 2})
    ranked = lower.model_copy(update={"top": [best, slow, default, quick]})
    assert chosen(ranked, "speed") is default
    # slower, beyond the budget, or a runner-up: the best stays
    assert chosen(lower.model_copy(update={"more_accurate": slow}), "speed") is best
    assert chosen(lower.model_copy(update={"more_accurate_within_budget": False}), "speed") is best
    assert chosen(lower.model_copy(update={"more_accurate_kind": "runner_up"}), "speed") is best

    # the grounding sources, once: tool outputs, the user's words (no outcomes), the recommendation
    sources = grounding_sources(["{\"x\": 1}"], [FULL + " It reaches 99.7 %."], rec)
    assert sources == ["{\"x\": 1}", user_source(FULL + " It reaches 99.7 %."),
                       *recommendation_sources(rec)]
    assert "99.7" not in sources[1]
    assert grounding_sources([], [], state["recommendation"]) == recommendation_sources(rec)
    assert grounding_sources(["a"], [], None) == ["a"]


def test_the_tools_ranked_config_numbers_keep_their_kinds() -> None:
    """`tools.advice.ranked_json` (the tool outputs' own form, not yet `ranked_facts`): a rename of
    its keys must not change the units grounding reads them in."""
    from tools.advice import ranked_json

    out = ranked_json(RANKED)
    kinds = {k: _key_kind(k, 1.5)[0] for k in _numeric_keys(out)}
    assert kinds == {"rank": "count", "predicted_accuracy_pct": "pct", "interval_80_pct": "pct"}
    # the tool output and the facts name (and write) the predicted outcome alike
    shown = ranked_facts(RANKED)
    assert {k: out[k] for k in ("predicted_accuracy_pct", "interval_80_pct")} == {
        k: shown[k] for k in ("predicted_accuracy_pct", "interval_80_pct")}
    assert shown["training_time"].startswith(out["training_time"])
    assert {k: _key_kind(k, 1.5)[0] for k in _numeric_keys(out["config"])} == {
        "resolution": "px", "lr": "lr", "weight_decay": "wd", "batch_size": "batch",
        "epochs": "epochs", "label_smoothing": "plain"}
