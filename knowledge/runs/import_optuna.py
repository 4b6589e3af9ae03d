"""An Optuna study of the user's runs, mapped onto the search space (docs/RUN_IMPORT.md).

    added, result = import_optuna(store, "sqlite:///study.db", "my-study", user_dataset(traits, name="x"),
                                  mapping={"learning_rate": "lr", "arch": "model"}, fixed={"resolution": 224})

COMPLETE trials become ok runs, FAIL trials failed runs, with provenance source `user`. Strict: a
field that cannot be mapped, a value outside the search space, an objective that is not an accuracy:
one error naming the trial and the param, and nothing is imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from knowledge.errors import StoreError
from knowledge.runs.imports import FIELDS, VALUE_KINDS, RunImportError, UserDataset, field_value
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig

_DEFAULTS = TrainConfig.model_construct(model="")


@dataclass
class OptunaImport:
    """What `records_from_study` made of a study."""

    study: str
    records: list[RunRecord]
    mapping: dict[str, str]  # their param -> our field
    defaulted: list[str]  # our fields taken from the TrainConfig defaults
    unused: list[str]  # their params that map onto nothing
    skipped: dict[str, int] = field(default_factory=dict)  # trial state -> count not imported
    value_is: str = "test_acc"

    def text(self) -> str:
        """'3 complete, 1 failed; skipped 2 pruned; defaults for epochs; ignored params dropout'."""
        ok = sum(r.status == "ok" for r in self.records)
        parts = [f"{ok} complete" + (f", {len(self.records) - ok} failed" if len(self.records) > ok else "")]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items())))
        if self.defaulted:
            parts.append("defaults for " + ", ".join(self.defaulted))
        if self.unused:
            parts.append("ignored params " + ", ".join(self.unused))
        return "; ".join(parts)


def resolve_mapping(params: Iterable[str], mapping: Mapping[str, str], fixed: Mapping[str, Any], *,
                    defaults_for_missing: bool, study: str = "the study"
                    ) -> tuple[dict[str, str], list[str], list[str]]:
    """(their param -> our field, our fields left to the defaults, their unused params).

    A param named like one of our fields maps onto it unless `mapping` or `fixed` says otherwise.
    RunImportError when a mapped name is unknown on either side, two params map onto one field, a
    field is both mapped and fixed, or fields stay unmapped (without `defaults_for_missing`; `model`
    has no default)."""
    theirs = sorted(set(params))
    for their, ours in mapping.items():
        if ours not in FIELDS:
            raise RunImportError(f"--map {their}={ours}: {ours!r} is not a search-space field; "
                                 f"fields: {', '.join(FIELDS)}")
        if their not in theirs:
            raise RunImportError(f"--map {their}={ours}: {study} has no param {their!r}; its params: "
                                 f"{', '.join(theirs) or 'none'}")
    targets: dict[str, str] = {}
    for their, ours in mapping.items():
        if ours in targets:
            raise RunImportError(f"--map: {targets[ours]!r} and {their!r} both map onto {ours}")
        targets[ours] = their
    for name in theirs:
        if name in FIELDS and name not in mapping and name not in targets and name not in fixed:
            targets[name] = name
    both = [f for f in fixed if f in targets]
    if both:
        raise RunImportError(f"{both[0]} is both mapped (from param {targets[both[0]]!r}) and "
                             f"fixed (--fixed); give one")
    missing = [f for f in FIELDS if f not in targets and f not in fixed]
    unused = [p for p in theirs if p not in targets.values()]
    if missing and (not defaults_for_missing or "model" in missing):
        fix = ("map them with --map THEIR=OURS or pin them with --fixed OURS=VALUE"
               + ("" if defaults_for_missing else
                  " (or take the TrainConfig defaults with --defaults-for-missing; model has none)"))
        raise RunImportError(
            f"cannot map search-space field(s) {', '.join(missing)} from {study}: {fix}; "
            f"params of the study not used: {', '.join(unused) or 'none'}")
    mapped = {their: ours for ours, their in targets.items()}
    return mapped, missing, unused


def _objective(study: Any, value_is: str | None, objective: int | None) -> tuple[int, str]:
    """(which objective is the accuracy, what it is); RunImportError when that cannot be told."""
    import optuna  # lazy: optuna (and SQLAlchemy) load only for this import

    directions = list(study.directions)
    name = study.study_name
    if value_is is not None and value_is not in VALUE_KINDS:
        raise RunImportError(f"--value-is {value_is!r}: use one of {', '.join(VALUE_KINDS)}")
    if len(directions) > 1:
        names = getattr(study, "metric_names", None) or [f"#{i}" for i in range(len(directions))]
        listed = ", ".join(f"{i}: {n} ({d.name.lower()})" for i, (n, d) in enumerate(zip(names, directions)))
        if objective is None or value_is is None:
            raise RunImportError(
                f"study {name!r} has {len(directions)} objectives ({listed}); say which one is the "
                f"accuracy with --objective N and what it is with --value-is "
                f"{'|'.join(VALUE_KINDS)}")
    if objective is not None and not 0 <= objective < len(directions):
        raise RunImportError(f"--objective {objective}: study {name!r} has {len(directions)} "
                             f"objective(s), numbered from 0")
    index = objective or 0
    minimize = directions[index] == optuna.study.StudyDirection.MINIMIZE
    if value_is is None:
        if minimize:
            raise RunImportError(
                f"study {name!r} minimizes its objective, so its value is not an accuracy: if it "
                f"is an error rate (1 - accuracy) say --value-is test_error (or val_error); if it "
                f"is an accuracy after all say --value-is test_acc (or val_acc); a loss cannot be "
                f"imported")
        value_is = "test_acc"
    elif value_is.endswith("_error") and not minimize:
        raise RunImportError(f"study {name!r} maximizes its objective: --value-is {value_is} (an "
                             f"error rate) contradicts it")
    return index, value_is


def _when(trial: Any) -> str:
    stamp = trial.datetime_complete or trial.datetime_start
    return (stamp or datetime.now(timezone.utc)).isoformat()


def records_from_study(study: Any, dataset: UserDataset, mapping: Mapping[str, str] | None = None,
                       fixed: Mapping[str, Any] | None = None, *, value_is: str | None = None,
                       objective: int | None = None, defaults_for_missing: bool = False
                       ) -> OptunaImport:
    """The study's COMPLETE trials as ok runs and its FAIL trials as failed runs (a FAIL trial
    that stopped before all its params were drawn is skipped); other states are skipped."""
    import optuna  # lazy: optuna (and SQLAlchemy) load only for this import

    State = optuna.trial.TrialState
    name = study.study_name
    index, kind = _objective(study, value_is, objective)
    error_rate = kind.endswith("_error")
    target = kind.replace("_error", "_acc")
    trials = study.get_trials(deepcopy=False)
    usable = [t for t in trials if t.state in (State.COMPLETE, State.FAIL)]
    skipped: dict[str, int] = {}
    for t in trials:
        if t.state not in (State.COMPLETE, State.FAIL):
            skipped[t.state.name.lower()] = skipped.get(t.state.name.lower(), 0) + 1
    if not any(t.state == State.COMPLETE for t in usable):
        raise RunImportError(f"study {name!r} has no COMPLETE trial to import "
                             f"({len(trials)} trials in all)")
    fixed = dict(fixed or {})
    params = {p for t in usable for p in t.params}
    mapped, defaulted, unused = resolve_mapping(params, dict(mapping or {}), fixed,
                                                defaults_for_missing=defaults_for_missing,
                                                study=f"study {name!r}")
    base = {f: getattr(_DEFAULTS, f) for f in defaulted} | fixed
    records: list[RunRecord] = []
    for t in usable:
        failed = t.state == State.FAIL
        values = dict(base)
        absent = [their for their in mapped if their not in t.params]
        if absent and failed:
            skipped["fail (params missing)"] = skipped.get("fail (params missing)", 0) + 1
            continue
        for their in absent:
            ours = mapped[their]
            if not defaults_for_missing or ours == "model":
                raise RunImportError(f"trial {t.number}: no value for param {their!r} ({ours}); "
                                     f"pin it with --fixed {ours}=VALUE or use --defaults-for-missing")
            values[ours] = getattr(_DEFAULTS, ours)
        for their, ours in mapped.items():
            if their not in t.params:
                continue
            try:
                values[ours] = field_value(ours, t.params[their])
            except ValueError as exc:
                raise RunImportError(f"trial {t.number}: param {their!r} ({ours}): {exc}") from None
        config = TrainConfig(**values)
        outcome: dict[str, Any] = {}
        if not failed:
            raw_value = t.values[index] if t.values else None
            if raw_value is None or not math.isfinite(raw_value):
                raise RunImportError(f"trial {t.number}: objective value {raw_value!r} is not a number")
            acc = 1.0 - raw_value if error_rate else raw_value
            if not 0.0 <= acc <= 1.0:
                raise RunImportError(
                    f"trial {t.number}: objective value {raw_value:g} gives {target} {acc:g}, not a "
                    f"fraction in [0, 1] (a percentage? MetaLLMiX reads 0.912, not 91.2)")
            outcome[target] = float(acc)
        reason = t.system_attrs.get("fail_reason") if failed else None
        record = RunRecord(
            run_id=RunRecord.stable_id("user-optuna", name, t.number, dataset.dataset_id),
            dataset_id=dataset.dataset_id, base_dataset=dataset.base_dataset,
            variant=dataset.variant, medical=dataset.medical, meta_features=dataset.meta_features,
            config=config, outcome=Outcome(**outcome), status="failed" if failed else "ok",
            error=(str(reason)[:500] if reason else "failed in Optuna") if failed else None,
            provenance=Provenance(source="user", study=f"optuna:{name}", timestamp=_when(t)),
        )
        records.append(record)
    return OptunaImport(name, records, mapped, defaulted, unused, skipped, kind)


def _storage_url(storage: str) -> str:
    """An Optuna storage URL; a plain path to an existing file becomes `sqlite:///<resolved>`. A
    SQLite file must exist and hold Optuna's tables (Optuna would create them in any file)."""
    import sqlite3

    text = (storage or "").strip()
    if not text:
        raise RunImportError("--optuna-storage is empty")
    if "://" not in text:
        path = Path(text).expanduser()
        if not path.exists():
            raise RunImportError(f"--optuna-storage {text}: no such file (or give a URL, e.g. "
                                 f"sqlite:///study.db)")
        text = f"sqlite:///{path.resolve()}"
    if text.startswith("sqlite:///"):
        path = Path(text.removeprefix("sqlite:///")).expanduser().resolve()
        if not path.is_file():
            raise RunImportError(f"--optuna-storage: no such SQLite file: {path}")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise RunImportError(f"--optuna-storage {path}: not a readable SQLite file ({exc})") from None
        if not {"studies", "trials"} <= tables:
            raise RunImportError(f"--optuna-storage {path}: not an Optuna storage (no studies/trials tables)")
        text = f"sqlite:///{path}"
    return text


def load_study(storage: str, study: str | None) -> Any:
    """The Optuna study `study` of `storage` (the only one when `study` is None)."""
    import optuna  # lazy: optuna (and SQLAlchemy) load only for this import

    url = _storage_url(storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        names = sorted(optuna.study.get_all_study_names(storage=url))
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy / Optuna raise many kinds for a bad storage
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RunImportError(f"--optuna-storage: cannot read the studies: {first}") from None
    listed = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
    if study is None:
        if len(names) != 1:
            raise RunImportError(f"the storage holds {len(names)} studies; name one with --study: "
                                 f"{listed or 'none'}")
        study = names[0]
    elif study not in names:
        raise RunImportError(f"--study {study!r}: no such study in the storage; it holds: {listed or 'none'}")
    return optuna.load_study(study_name=study, storage=url)


def import_optuna(store: RunStore, storage: str, study: str | None, dataset: UserDataset,
                  mapping: Mapping[str, str] | None = None, fixed: Mapping[str, Any] | None = None,
                  *, value_is: str | None = None, objective: int | None = None,
                  defaults_for_missing: bool = False, replace: bool = False) -> tuple[int, OptunaImport]:
    """Map a stored Optuna study's trials onto the search space and add them (one transaction)."""
    result = records_from_study(load_study(storage, study), dataset, mapping, fixed,
                                value_is=value_is, objective=objective,
                                defaults_for_missing=defaults_for_missing)
    try:
        added = store.add_many(result.records, replace=replace)
    except StoreError as exc:
        raise RunImportError(f"study {result.study!r}: {exc}; nothing was imported") from None
    return added, result
