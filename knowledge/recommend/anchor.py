"""The search space's default as the anchor of a pick (`anchor`).

A practitioner who asks for advice would otherwise run the default (ResNet-18, 28 px, AdamW 1e-3,
10 epochs: `search_space.is_default`). When the default fits the budget and the meta-learner ranks other
configs above it, each of those must also hold up against it where both were recorded
(`knowledge.metalearner.paired`): a config the records show *no better* than the default (at
least `paired.MIN_DATASETS` similar datasets run both ways, the mean gain minus a standard error
not above zero), or *worse* (on two or more, the mean plus a standard error below zero: pretrained
linear probing at 28 px, 12 points below the default on both datasets that ran both) moves below
it. A config cut to fewer epochs is judged by the runs of its recorded longer schedule (cutting a
schedule rarely helps). A config never run beside the default (or on one dataset only, or on two
without a clear loss) keeps its place: the records cannot tell, and the meta-learner decides.

Why (issue 17): ranked on single-seed forecasts, configs that win big on a few large sets and
lose on small or seed-sensitive ones (EfficientNet-Lite0 fine-tuned at lr 8e-3: +-3.5 points over
seeds on BreastMNIST) were picked over a default that trained in the same time and did better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.metalearner.paired import MIN_DATASETS, Paired, paired
from knowledge.metalearner.support import RATIO
from knowledge.recommend.text import config_label
from knowledge.search_space import is_default

if TYPE_CHECKING:
    from knowledge.metalearner.ranking import Scored
    from knowledge.metalearner.support import Evidence
    from knowledge.search_space import TrainConfig

def anchor(scored: Scored, evidence: Evidence, meta: Any) -> tuple[np.ndarray, list[str]]:
    """`scored.order` with the configs the records show no better than the default moved just
    below it (the rest keep their order), and a note on the pick against the default."""
    order = [int(p) for p in scored.order]
    at = next((i for i, p in enumerate(order) if is_default(scored.candidates[p])), None)
    if not at or not len(evidence):  # no default within the budget, or it is ranked first
        return np.asarray(order, dtype=int), []
    reference = scored.candidates[order[at]]
    ahead, behind, verdicts = [], [], {}
    for p in order[:at]:
        verdicts[p] = judged(evidence, scored.candidates[p], reference, meta)
        (behind if shown_no_better(verdicts[p]) else ahead).append(p)
    new = np.asarray([*ahead, order[at], *behind, *order[at + 1:]], dtype=int)
    notes = []
    if behind and behind[0] == order[0]:  # the meta-learner's first choice moved
        top, found = scored.candidates[order[0]], verdicts[order[0]]
        verdict = "show" if found.shows_loss else "do not show"
        notes.append(f"The meta-learner ranked {config_label(top)} first, but the records {verdict} "
                     f"it{_schedule(top, found)} {'worse' if found.shows_loss else 'better'} than "
                     "the search space's default "
                     f"({config_label(reference)}): {found.text()}. "
                     + ("The default fits the budget and is recommended." if not ahead else
                        "The next-ranked config, which the records cannot compare with the default "
                        "or show better, is recommended."))
    if ahead and verdicts[ahead[0]].shows_gain:
        first = verdicts[ahead[0]]
        notes.append(f"Against the search space's default ({config_label(reference)}), the pick"
                     f"{_schedule(scored.candidates[ahead[0]], first)} did better {first.text()}.")
    return new, notes


def _schedule(config: TrainConfig, found: Paired) -> str:
    """' (its recorded 8-epoch schedule)' when judged by a longer schedule's runs, else ''."""
    epochs = found.challenger.epochs
    return f" (its recorded {epochs}-epoch schedule)" if epochs != config.epochs else ""


def shown_no_better(found: Paired) -> bool:
    """Enough datasets run both ways and no gain shown on them, or a loss shown on fewer."""
    return (found.n >= MIN_DATASETS and not found.shows_gain) or found.shows_loss


def judged(evidence: Evidence, config: TrainConfig, reference: TrainConfig, meta: Any) -> Paired:
    """The paired evidence of `config` against `reference`: its own runs, or, for a config
    recorded only with more epochs (at most `RATIO` x), those of the shortest such schedule."""
    if evidence.config_index(config) is None:
        longer = [c for c in evidence.configs
                  if config.epochs < c.epochs <= RATIO * config.epochs
                  and c.model_copy(update={"epochs": config.epochs}) == config]
        if longer:
            return paired(evidence, min(longer, key=lambda c: c.epochs), reference, meta)
    return paired(evidence, config, reference, meta)
