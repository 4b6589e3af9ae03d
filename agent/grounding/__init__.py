"""Is every number of an answer a tool output's number of the same kind, about the same thing?

    check_answer(answer, sources, pick=config)   # [] when grounded, else the violations

A small model copies numbers but also invents, recomputes or misplaces them ("71.9 % ± 0.3" where
71.9 came from one row and 0.3 from another run's card). So a number of the answer must match a
number of the sources (tool outputs, the user's messages, the recommendation)

- of the same KIND: a percentage matches a percentage (or a fraction x 100, or accuracy points),
  a duration a duration in any unit (76 min = 1.3 h), a learning rate a learning rate in any
  notation (3e-4 = 0.0003 = 3 x 10^-4), likewise weight decay, batch size, epochs, resolution
  (px), counts; the "± 0.3" after a value must be the spread written after that same value;
  a number written without a unit or a telling word matches any source number;
- up to its written precision (72.67 in a source is "72.7" or "73" in an answer; "72.8" is not);
- ABOUT the right thing, for the kinds that belong to one config (accuracy, time, resolution and
  the hyperparameters): a number attributed to a model (named before it on its line, or on a
  "Model: X" line of its paragraph) must come from a source about that model, and with `pick`
  (the recommended config) the numbers at the head of an answer, before any alternative or past
  run is mentioned, must be the pick's own; a number found in a source about no model in
  particular (the dataset's traits, the user's budget) is accepted anywhere.

Integers up to `SMALL_INT` without a unit ("two alternatives", "top 5") are always allowed, and
digits inside names (ResNet-18, ViT-B/16, efficientnet_b4, run ids) are not numbers.
`agent.entities` checks the names themselves; `check_answer` does both.

An answer that presents a recommendation must also STATE it, `unstated_pick(answer, pick, ...)`:
"I like turtles." has no number or name to refute, so it passes `check_answer`, yet says nothing.
The pick's model, pretrained / scratch, scheme, resolution, learning rate, epochs, predicted
accuracy and (when predicted) training time must each be in the answer, with the pick's values.

The package: `numbers` (the tokenizer: numbers and their kinds, `user_source`), `sources`
(records of the sources; JSON keys read with `agent.facts.KEY_KINDS`), `matching` (a number
against a reading, `Violation`), `attribution` (what a number is about; `check_answer`),
`comparisons` ("lower ... than"), `launch` (claims of training), `pick` (`unstated_pick`),
`meaning` (`meaning_violations`: what the sentences mean — comparisons of equal values, dataset
traits attributed to models (`traits`), "more accurate" / "faster" / "within the budget" against
the tools' predictions and a claimed recommendation against the pick (`claims`), reading the
tools' configs, budget and traits with `toolfacts`; `check_answer` includes them).
"""

from __future__ import annotations

from agent.grounding.attribution import (
    check_answer,
    name_violations,
    number_violations,
    ungrounded_numbers,
)
from agent.grounding.launch import launch_violations, launched_ok
from agent.grounding.matching import Violation, agrees, matches
from agent.grounding.meaning import equal_comparisons, meaning_violations
from agent.grounding.numbers import (
    BOUND_KINDS,
    SMALL_INT,
    USER_UNTRUSTED,
    Number,
    find_numbers,
    normalize_text,
    user_source,
)
from agent.grounding.pick import NOT_STATED, unstated_pick
from agent.grounding.sources import Reading, Record, config_identity, source_records

__all__ = ["BOUND_KINDS", "NOT_STATED", "Number", "Reading", "Record", "SMALL_INT",
           "USER_UNTRUSTED", "Violation", "agrees", "launch_violations", "launched_ok",
           "check_answer", "config_identity", "equal_comparisons", "find_numbers", "matches",
           "meaning_violations", "name_violations",
           "normalize_text", "number_violations", "source_records",
           "ungrounded_numbers", "unstated_pick", "user_source"]
