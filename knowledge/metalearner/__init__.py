"""The meta-learner: featurize runs, fit XGBoost models, rank candidate configs within a budget.

    from knowledge.metalearner import load_or_fit, rank, parse_budget
    learner = load_or_fit()                                  # the user's run store
    top = rank(meta, learner, top_k=5, budget=parse_budget("one hour on a T4"))

Modules: `features` (model inputs), `model` (`MetaLearner`: the accuracy quantiles and what it
predicts), `targets` (training rows and targets), `calibration` (the conformal interval margins
and grouped folds), `cputime` (the CPU time model), `extrapolation` (the training evidence),
`boosters` (fitted / lazily loaded boosters), `cv` (grouped cross-validation), `blend` (the pairwise
ranker and its cross-validated weight), `forest` (the boosters as NumPy arrays: predictions and
TreeSHAP without xgboost), `candidates`, `constraints` (candidates within a budget), `ranking`
(scoring and ordering), `pareto` (accuracy / time trade-off), `budget` (with `duration` and
`device_text`: parsing a budget), `cost` (GPU time from timm's benchmark; its table is built by
`throughput_build`), `memory` (peak memory; `memory_fit`, `memory_calibration`), `artifact`
(saved learner).
"""

from knowledge.metalearner.artifact import load, load_or_fit, save
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.metalearner.candidates import candidate_configs
from knowledge.metalearner.features import FEATURE_LABELS, featurize, featurize_one
from knowledge.metalearner.model import MetaLearner, grouped_cv
from knowledge.metalearner.ranking import (
    RankedConfig,
    Scored,
    fastest_within,
    pareto_front,
    rank,
    score_candidates,
)

__all__ = [
    "Budget",
    "FEATURE_LABELS",
    "MetaLearner",
    "RankedConfig",
    "Scored",
    "candidate_configs",
    "fastest_within",
    "featurize",
    "featurize_one",
    "grouped_cv",
    "load",
    "load_or_fit",
    "parse_budget",
    "pareto_front",
    "rank",
    "save",
    "score_candidates",
]
