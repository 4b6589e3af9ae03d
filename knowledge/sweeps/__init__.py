"""Sweeps: random search and TPE (Optuna) over the search space, on many datasets, resumable.

    from knowledge.sweeps import run_sweep, DEFAULT_PLAN
    report = run_sweep(DEFAULT_PLAN, trials=20, sampler="tpe", warmup=8, workers=2)

Modules: `study` (names, storage, samplers, counting), `objective` (one trial), `runner`
(`run_sweep`, workers, progress), `report` (`SweepReport`), `plan` (our meta-dataset's sources),
`backend` (the loader/trainer a sweep calls).
"""

from knowledge.sweeps.backend import Backend
from knowledge.sweeps.objective import RunNotOk, suggest_config
from knowledge.sweeps.plan import DEFAULT_PLAN
from knowledge.sweeps.report import SourceReport, SweepReport
from knowledge.sweeps.runner import TrialEvent, run_sweep
from knowledge.sweeps.study import study_name

__all__ = [
    "DEFAULT_PLAN",
    "Backend",
    "RunNotOk",
    "SourceReport",
    "SweepReport",
    "TrialEvent",
    "run_sweep",
    "study_name",
    "suggest_config",
]
