"""`recommend`: the whole answer for one dataset, without an LLM.

    from knowledge.recommend import recommend, meta_from_traits
    rec = recommend(meta_from_traits({"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}),
                    budget="one hour on a T4")
    rec.best.summary(); rec.explanation.text(); print(rec.to_markdown())

One call ranks every candidate config with the meta-learner's ranking score (within the budget),
picks the best, a faster alternative (the fastest config within `FASTER_WITHIN_POINTS` of the
highest predicted accuracy) and a more accurate one (the highest predicted accuracy, ignoring the
budget), the accuracy/time Pareto front, explains the best's predicted accuracy with SHAP and
retrieves the runs of the most similar past datasets. Only the configs that end up in the answer
get their accuracy intervals computed (`Scored.ranked`). The result, `Recommendation`, is what
the CLI, the agent's tools and the UI render (`to_markdown`, or its JSON).

The fitted meta-learner and the numeric retrieval index are loaded once per process and store
(`Advisor`, cached by `get_advisor`), and reloaded when the store changes; the first use on a store
fits / builds and saves them (`artifact.load_or_fit`, `RunIndex.load_or_build`). The text index of
the retriever is not needed here and stays pending until a free-text search asks for it.

The package, one concept a module: `traits` (stated traits -> meta-features, the recorded ranges),
`result` (`Recommendation` and its Markdown / text), `text` (labels and number formats),
`algorithm` (how one recommendation is made), `advisor` (`Advisor`: the loaded learner and index
of a store), `cache` (`get_advisor`, `clear_cache`, `recommend`) and `export` (the top-k for the
user's own tuner: Optuna `enqueue_trial`, Ray Tune `points_to_evaluate`, JSON, `metallmix train` lines). Every public name is
importable from `knowledge.recommend`; patch a name in the module that uses it.
"""

from knowledge.recommend.advisor import Advisor, artifact_dirs, store_fingerprint
from knowledge.recommend.algorithm import RANK_BY, SIMILAR_K, _memory_line
from knowledge.recommend.cache import clear_cache, get_advisor, recommend
from knowledge.recommend.result import (
    FASTER_WITHIN_POINTS,
    Recommendation,
    budget_text,
    more_accurate_text,
)
from knowledge.recommend.text import budget_text_of, config_label
from knowledge.recommend.traits import (
    RANGE_TRAITS,
    TRAIT_KEYS,
    meta_from_traits,
    outside_ranges,
    range_note,
    recorded_ranges,
)

__all__ = [
    "Advisor",
    "FASTER_WITHIN_POINTS",
    "RANGE_TRAITS",
    "RANK_BY",
    "Recommendation",
    "SIMILAR_K",
    "TRAIT_KEYS",
    "artifact_dirs",
    "budget_text",
    "budget_text_of",
    "clear_cache",
    "config_label",
    "get_advisor",
    "meta_from_traits",
    "more_accurate_text",
    "outside_ranges",
    "range_note",
    "recommend",
    "recorded_ranges",
    "store_fingerprint",
]
