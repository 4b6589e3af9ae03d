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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from knowledge import paths
from knowledge.errors import DatasetError, StoreError
from knowledge.explain import Explanation, explain
from knowledge.metafeatures import (
    FEATURE_LABELS,
    ClassCount,
    MetaFeatures,
    from_traits,
    short_repr,
    validation_message,
)
from knowledge.metalearner.budget import Budget, format_seconds, parse_budget
from knowledge.metalearner.ranking import (
    RankedConfig,
    Scored,
    pareto_positions,
    score_candidates,
)
from knowledge.retrieval.index import Hit
from knowledge.search_space import PROTOCOL_PATIENCE, is_published_protocol

if TYPE_CHECKING:
    import pandas as pd

    from knowledge.metalearner.model import MetaLearner
    from knowledge.retrieval.embeddings import Embedder
    from knowledge.retrieval.index import RunIndex
    from knowledge.runs.record import RunRecord
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

FASTER_WITHIN_POINTS = 2.0  # the faster alternative may lose at most this many accuracy points
SIMILAR_K = 5
RANK_BY = "score"  # what orders the candidates: "score" (accuracy blended with the ranker) or "acc"
_ACC_EPS = 1e-6  # predicted accuracies closer than this count as equal

# Traits a user (or an LLM) may state: every meta-feature, plus per-class counts.
TRAIT_KEYS: tuple[str, ...] = (*MetaFeatures.model_fields, "class_counts")
_FROM_TRAITS_KEYS = ("n_instances", "n_classes", "imbalance_ratio", "class_counts", "height", "width",
                     "channels", "modality", "task")
_COUNTS = TypeAdapter(list[ClassCount])
# Traits whose value is compared with the range the meta-dataset records (`recorded_ranges`).
RANGE_TRAITS: tuple[str, ...] = ("n_instances", "n_classes", "imbalance_ratio", "height", "width",
                                 "channels")


# --- traits --------------------------------------------------------------------------------------

def meta_from_traits(traits: Mapping[str, Any]) -> MetaFeatures:
    """Meta-features from stated traits (keys: `TRAIT_KEYS`; None values are ignored).

    The `from_traits` keys derive what follows from them (class sizes, entropy, square images);
    the other meta-features (class_entropy, class_size_*) are taken as stated. Raises DatasetError,
    one line naming the key and the value, for an unknown key or a value no dataset can have (a
    boolean, NaN, a count below 1, beyond the hard limits, contradicting another trait: see
    `knowledge.metafeatures`). A value merely outside what the meta-dataset records is accepted
    (the recommendation notes it).
    """
    if not isinstance(traits, Mapping):
        raise DatasetError(f"traits must be a JSON object of trait: value, got {type(traits).__name__}")
    unknown = [k for k in traits if k not in TRAIT_KEYS]
    if unknown:
        raise DatasetError(f"traits: unknown key {short_repr(str(unknown[0]), limit=40)}; "
                           f"allowed keys: {', '.join(TRAIT_KEYS)}")
    given = {k: v for k, v in traits.items() if v is not None}
    counts = given.pop("class_counts", None)
    try:
        checked = MetaFeatures.model_validate(given)  # types and ranges, before any arithmetic
    except ValidationError as exc:
        raise DatasetError(f"traits: {validation_message(exc)}") from None
    derived_args = {k: getattr(checked, k) for k in _FROM_TRAITS_KEYS if k in given}
    if counts is not None:
        try:
            derived_args["class_counts"] = _COUNTS.validate_python(counts)
        except ValidationError as exc:
            raise DatasetError(f"traits: {validation_message(exc, 'class_counts')}") from None
    try:
        derived = from_traits(**derived_args)
        explicit = {k: getattr(checked, k) for k in given if k not in _FROM_TRAITS_KEYS}
        return MetaFeatures.model_validate({**derived.model_dump(), **explicit})
    except ValidationError as exc:
        message = validation_message(exc)
        where = "class_counts: " if counts is not None and "class_counts" not in message else ""
        raise DatasetError(f"traits: {where}{message}") from None
    except ValueError as exc:
        raise DatasetError(f"traits: class_counts: {exc}") from None


def recorded_ranges(index: Any) -> dict[str, tuple[float, float]]:
    """[min, max] of each of `RANGE_TRAITS` over the datasets of the index's ok runs (the runs
    the meta-learner is fitted on; every run when none is ok): the range the meta-dataset covers.
    Made once per index (and again when runs are added); {} for an index without records."""
    records = getattr(index, "records", None)
    if records is None:
        return {}
    size = len(records)
    try:
        cached = _RANGES.get(index)
    except TypeError:  # not weak-referenceable: no cache
        cached = None
    if cached is not None and cached[0] == size:
        return cached[1]
    ok = [r for r in records if getattr(r, "status", "ok") == "ok"] or records
    ranges: dict[str, tuple[float, float]] = {}
    for name in RANGE_TRAITS:
        values = [float(v) for r in ok if (v := getattr(r.meta_features, name, None)) is not None]
        if values:
            ranges[name] = (min(values), max(values))
    try:
        _RANGES[index] = (size, ranges)
    except TypeError:
        pass
    return ranges


_RANGES: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, tuple[float, float]]]] = (
    weakref.WeakKeyDictionary())


def outside_ranges(meta: MetaFeatures, ranges: Mapping[str, tuple[float, float]]
                   ) -> dict[str, list[float]]:
    """The traits of `meta` outside the recorded `ranges`: name -> [recorded min, recorded max]."""
    out: dict[str, list[float]] = {}
    for name in RANGE_TRAITS:
        value = getattr(meta, name)
        if value is None or name not in ranges:
            continue
        lo, hi = ranges[name]
        if value < lo - 1e-9 or value > hi + 1e-9:
            out[name] = [lo, hi]
    return out


_RANGE_WORDS = {"n_instances": "training images", "n_classes": "classes",
                "imbalance_ratio": "largest / smallest class", "height": "image height, px",
                "width": "image width, px", "channels": "channels"}


def range_note(meta: MetaFeatures, outside: Mapping[str, list[float]]) -> str | None:
    """The note of traits outside the meta-dataset's range: each trait, its value and the
    recorded range (a square image out of range is said once, as "height and width")."""
    if not outside:
        return None
    square = ("height" in outside and "width" in outside and meta.height == meta.width
              and outside["height"] == outside["width"])
    parts = []
    for name, (lo, hi) in outside.items():
        if square and name == "width":
            continue
        said, words = (("height and width", "image side, px") if square and name == "height"
                       else (name, _RANGE_WORDS.get(name, FEATURE_LABELS.get(name, name))))
        parts.append(f"{said} {_value(getattr(meta, name))} ({words}; recorded "
                     f"{_value(_whole(lo))} to {_value(_whole(hi))})")
    return ("These traits lie outside the range the meta-dataset records, and the meta-learner "
            "treats each like the nearest recorded value, so the predictions are less certain "
            "than their intervals say: " + "; ".join(parts) + ".")


def _whole(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


# --- the result ----------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _time(r: RankedConfig) -> str:
    text = format_seconds(r.predicted_seconds)
    return text + (" (rough)" if r.time_is_estimate and r.predicted_seconds is not None else "")


def config_label(r: RankedConfig) -> str:
    """'ResNet-18, pretrained, end_to_end, 64 px, lr 1e-04, 10 ep'."""
    c = r.config
    return (f"{c.spec.label}, {'pretrained' if c.pretrained else 'from scratch'}, {c.scheme}, "
            f"{c.resolution} px, lr {c.lr:.0e}, {c.epochs} ep")


class Recommendation(BaseModel):
    """Everything `recommend` found for one dataset. Accuracies are fractions in [0, 1], times in
    seconds on `budget.device` (rough where `time_is_estimate`)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(None, description="the dataset spec, when it was read from data")
    meta_features: MetaFeatures = Field(description="the meta-features the prediction used")
    missing_traits: list[str] = Field(description="meta-features that were not known (imputed by "
                                                  "the meta-learner's default branches)")
    budget: Budget | None = Field(None, description="the compute budget applied (None: no limit, CPU)")
    best: RankedConfig = Field(description="the recommended config (the top of the ranking)")
    top: list[RankedConfig] = Field(description="the top-k configs within the budget, best first "
                                                "(ranked by the meta-learner's ranking score)")
    faster: RankedConfig | None = Field(
        None, description=f"the fastest config ranked below best, at most {FASTER_WITHIN_POINTS:g} "
                          "predicted accuracy points below it and never above it (None when "
                          "nothing is faster or times are unknown)")
    faster_within_points: float = FASTER_WITHIN_POINTS
    more_accurate: RankedConfig | None = Field(
        None, description="the config with the highest predicted accuracy when the budget is "
                          "ignored, if higher than best's, else the runner-up (see "
                          "more_accurate_kind)")
    more_accurate_kind: str | None = Field(
        None, description="'beyond_budget' (higher predicted accuracy than best, outside the "
                          "budget), 'ranked_lower' (higher predicted accuracy, within the budget, "
                          "but ranked below best), 'runner_up' (best has the highest predicted "
                          "accuracy: the next-ranked config), or None")
    more_accurate_within_budget: bool | None = None
    pareto: list[RankedConfig] = Field(description="accuracy vs time front within the budget, "
                                                   "fastest first")
    n_candidates: int = Field(description="candidate configs scored within the budget")
    evidence_tier: str = Field(
        "recorded", description="where the candidates came from: 'recorded' (configs recorded on "
                                "several datasets), 'shortened' (the same with fewer epochs: no "
                                "recorded config fit the budget), 'extrapolated' (the free sample "
                                "of the search space: no supported config fit)")
    supported_fits: bool = Field(
        True, description="whether some config backed by recorded runs fits the budget")
    pretrained_vs_scratch: str | None = Field(
        None, description="what the records say about pretrained weights vs from scratch for the "
                          "pick's model (None where they hold only one of the two)")
    nearest_supported: RankedConfig | None = Field(
        None, description="when no supported config fits: the fastest supported one, outside the "
                          "budget, with its predicted time")
    explanation: Explanation = Field(description="SHAP factors of best's predicted accuracy")
    similar_runs: list[Hit] = Field(description="best runs of the most similar past datasets "
                                                "(numeric retrieval, one per dataset)")
    excluded: list[str] = Field(default_factory=list, description="base datasets left out of "
                                                                   "similar_runs")
    notes: list[str] = Field(default_factory=list, description="caveats worth telling the user")
    memory: str | None = Field(
        None, description="will the pick fit the GPU's memory: 'estimated peak memory 5.2 GB of 16 "
                          "GB' or 'batch 64 → 32 to fit 16 GB (...)' (`metalearner.memory`); None "
                          "on a CPU budget")
    outside_range: dict[str, list[float]] = Field(
        default_factory=dict, description="traits outside the range the meta-dataset "
                                          "records: trait -> [recorded min, recorded max] (a "
                                          "note says so in words)")
    learner: dict[str, Any] = Field(description="the meta-learner: artifact version, records per "
                                                "source, fitted_at, calibration margin")
    seconds: float = Field(description="wall time of this recommendation")

    @property
    def extrapolates(self) -> bool:
        """True when the pick is not backed by recorded runs (see `RankedConfig.support`)."""
        return not self.best.supported

    def evidence_lines(self) -> list[str]:
        """The card's evidence bullets: the pick's support, the protocol it follows, and what the
        records say about pretrained weights vs training from scratch for its model."""
        b = self.best
        if b.support is None:
            return ["- The meta-learner carries no record of its runs (an old artifact): support unknown."]
        if not b.supported:
            lines = [f"- **This config extrapolates**: {b.support.text()}."]
            if self.nearest_supported is not None:
                n = self.nearest_supported
                lines.append(f"- Nearest supported option: {config_label(n)} — "
                             f"{_pct(n.predicted_acc)} in ~{_time(n)} on {n.device}, "
                             f"{n.support.text() if n.support else ''}.")
            return lines
        lines = [f"- Support: {b.support.text()}."]
        if is_published_protocol(b.config):
            lines.append("- This is the MedMNIST+ protocol the published runs used: AdamW, lr 1e-4, "
                         "weight decay 0.01, batch 64, up to 100 epochs; the launcher keeps the "
                         f"checkpoint with the best validation accuracy and stops after "
                         f"{PROTOCOL_PATIENCE} epochs without improvement.")
        if self.pretrained_vs_scratch:
            lines.append(f"- {self.pretrained_vs_scratch}")
        return lines

    # -- rendering ------------------------------------------------------------------------------
    def alternative_lines(self, pareto: bool = True) -> list[str]:
        """The card's "Alternatives" bullets: faster, more accurate and (`pareto`) the front."""
        b = self.best
        if self.faster is not None:
            f = self.faster
            lines = [f"- **Faster**: {config_label(f)} — {_pct(f.predicted_acc)} in ~{_time(f)} "
                     f"(best: {_time(b)}), at most {self.faster_within_points:g} points less."]
        else:
            lines = ["- **Faster**: none within "
                     f"{self.faster_within_points:g} points of the best is predicted faster."]
        if self.more_accurate is not None:
            m = self.more_accurate
            kind = more_accurate_text(self, long=True)
            lines.append(f"- **More accurate** ({kind}): {config_label(m)} — "
                         f"{_pct(m.predicted_acc)} in ~{_time(m)}.")
        if pareto and self.pareto:
            front = "; ".join(f"{r.config.spec.label} ({r.config.resolution} px, {r.config.epochs} "
                              f"ep) {_pct(r.predicted_acc)} in {_time(r)}" for r in self.pareto)
            lines.append(f"- Accuracy/time trade-off (Pareto front, fastest first): {front}.")
        return lines

    def similar_run_lines(self, k: int | None = None) -> list[str]:
        """The card's "Similar past runs" bullets (the first `k`; all when None)."""
        return [f"- {h.card} (similarity {h.score:.2f})" for h in self.similar_runs[:k]]

    def to_markdown(self) -> str:
        """A self-contained Markdown report (what the UI shows and the agent may quote)."""
        what = f"`{self.dataset}`" if self.dataset else "your dataset"
        b = self.best
        lines = [f"## Recommendation for {what}", ""]
        budget = budget_text(self)
        lines += [f"**{config_label(b)}** — predicted accuracy **{_pct(b.predicted_acc)}** "
                  f"(80 % interval {_pct(b.acc_lo)}–{_pct(b.acc_hi)}), training time ~{_time(b)} "
                  f"on {b.device}. Budget: {budget}.", ""]
        lines += ["### Evidence", "", *self.evidence_lines(), ""]
        c = b.config
        lines += [f"Full config: model `{c.model}`, pretrained {c.pretrained}, scheme {c.scheme}, "
                  f"resolution {c.resolution} px, optimizer {c.optimizer}, lr {c.lr:g}, "
                  f"weight decay {c.weight_decay:g}, batch size {c.batch_size}, epochs {c.epochs}, "
                  f"augmentation {c.augmentation}, label smoothing {c.label_smoothing:g}.", ""]
        if self.memory:
            lines += [f"Memory: {self.memory}.", ""]
        if b.time_source:
            lines += [f"Time estimate: {b.time_source}.", ""]

        known = [(k, v) for k, v in self.meta_features.model_dump().items() if v is not None]
        lines += ["### Dataset traits used", ""]
        lines += [", ".join(f"{FEATURE_LABELS.get(k, k)}: {_value(v)}" for k, v in known) or "none",
                  ""]
        if self.missing_traits:
            lines += [f"Unknown (the meta-learner fills them in): {', '.join(self.missing_traits)}.",
                      ""]

        lines += [f"### Top {len(self.top)} of {self.n_candidates} configs", "",
                  "Ranked by the meta-learner's ranking score (predicted accuracy blended with a "
                  "pairwise ranker: on held-out datasets it picks better than the accuracy model "
                  "alone, see docs/BENCHMARKS.md); accuracies are the accuracy model's, so a lower row "
                  "can show a higher predicted accuracy where the two disagree.", "",
                  "| # | model | pretrained | scheme | px | lr | wd | batch | epochs | aug "
                  "| predicted acc [80 % interval] | time |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.top:
            c = r.config
            lines.append(
                f"| {r.rank} | {c.spec.label} | {'yes' if c.pretrained else 'no'} | {c.scheme} | "
                f"{c.resolution} | {c.lr:.0e} | {c.weight_decay:g} | {c.batch_size} | {c.epochs} | "
                f"{c.augmentation} | {_pct(r.predicted_acc)} [{_pct(r.acc_lo)}–{_pct(r.acc_hi)}] | "
                f"{_time(r)} |")
        lines.append("")

        e = self.explanation
        lines += ["### Why (SHAP, accuracy points)", "",
                  f"Average prediction over past runs {e.base_value:.1f} %; for this config "
                  f"{e.prediction:.1f} %:", ""]
        lines += [f"- {f.text}" for f in e.factors]
        lines.append("")

        lines += ["### Alternatives", "", *self.alternative_lines(pareto=True), ""]
        lines += ["### Similar past runs", "", *(self.similar_run_lines() or ["- none found"])]
        if self.excluded:
            lines.append(f"- (left out: {', '.join(self.excluded)})")
        lines.append("")

        if self.notes:
            lines += ["### Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        records = ", ".join(f"{k} {v:,}" for k, v in (self.learner.get("n_records") or {}).items())
        lines.append(f"_Meta-learner fitted {self.learner.get('fitted_at') or 'unknown'} on "
                     f"{records or 'unknown'} records (artifact format "
                     f"{self.learner.get('format_version')}); answered in {self.seconds:.2f} s._")
        return "\n".join(lines) + "\n"


_MORE_ACCURATE_TEXT = {
    "beyond_budget": ("more accurate, outside the budget", "more accurate, outside the budget"),
    "ranked_lower": ("higher predicted accuracy, ranked lower",
                     "higher predicted accuracy, within the budget, but ranked lower"),
    "runner_up": ("runner-up", "runner-up (the best already has the highest predicted accuracy)"),
}


def more_accurate_text(rec: Recommendation, *, long: bool = False) -> str:
    """What `rec.more_accurate` is, in words (see `Recommendation.more_accurate_kind`)."""
    short, full = _MORE_ACCURATE_TEXT.get(rec.more_accurate_kind or "", ("alternative", "alternative"))
    return full if long else short


def budget_text_of(budget: Budget | None) -> str:
    """'1 h on NVIDIA T4', 'no budget'."""
    return budget.describe() if budget is not None else "no budget"


def budget_text(rec: Recommendation) -> str:
    """'1 h on NVIDIA T4', 'no time limit on CPU, CPU-friendly models only', 'none (any model, ...)'."""
    if rec.budget is None:
        return "none (any model; times on this CPU)"
    return rec.budget.describe(notes=True) + (", CPU-friendly models only" if rec.budget.cpu_only else "")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# --- loading and caching -------------------------------------------------------------------------

class _FrameSnapshot:
    """The one method `artifact.load_or_fit` calls on a store, over records already read."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def to_frame(self) -> pd.DataFrame:
        return self._frame


def _frame(records: list[RunRecord]) -> pd.DataFrame:
    import pandas as pd

    from knowledge.runs.record import record_to_row

    return pd.DataFrame([record_to_row(r) for r in records])  # as RunStore.to_frame


def store_fingerprint(store: RunStore) -> tuple[Any, ...]:
    """Cheap "did the store change" key: record count and the SQLite files' size and mtime."""
    stats = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(f"{store.path}{suffix}")
            stats.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append(None)
    return (len(store), *stats)


def artifact_dirs(store: RunStore) -> tuple[Path, Path]:
    """(meta-learner dir, retrieval index dir) for a store: the default artifact dirs for the
    default store, per-store dirs under `<artifacts>/stores/<hash>` for any other."""
    from knowledge.metalearner.artifact import default_dir as learner_dir
    from knowledge.retrieval.index import default_dir as index_dir

    real = os.path.realpath(store.path)
    if real == os.path.realpath(paths.store_path()):
        return learner_dir(), index_dir()
    key = hashlib.sha1(real.encode()).hexdigest()[:12]
    base = paths.artifacts_dir() / "stores" / key
    return base / "metalearner", base / "index"


class Advisor:
    """The loaded meta-learner and retrieval index of one run store, refreshed when it changes.

    `learner` / `index` given here are used as they are (never reloaded)."""

    def __init__(self, store: RunStore | str | Path | None = None, *,
                 learner: MetaLearner | None = None, index: RunIndex | None = None,
                 embedder: Embedder | None = None) -> None:
        from knowledge.meta_dataset.shipped import open_store
        from knowledge.runs.store import RunStore

        self.store = store if isinstance(store, RunStore) else open_store(store)
        self.embedder = embedder
        self._fixed_learner, self._fixed_index = learner, index
        self._learner, self._index = learner, index
        self._fingerprint: tuple[Any, ...] | None = None
        self._lock = threading.RLock()

    def _refresh(self) -> None:
        """Load (or fit / build) what is missing or stale, reading the store once.

        A stamp (`<artifacts>/advisor/<store hash>.json`) remembers the store's fingerprint and the
        data hashes of the learner and index that served it, so a new process (each CLI call) loads
        both without reading and hashing every record while the store is unchanged.
        """
        fingerprint = store_fingerprint(self.store)
        if fingerprint == self._fingerprint and self._learner is not None and self._index is not None:
            return
        from knowledge.metalearner import artifact
        from knowledge.retrieval.index import RunIndex

        started = time.perf_counter()
        learner_dir, index_dir = artifact_dirs(self.store)
        if self._load_stamped(fingerprint, learner_dir, index_dir):
            self._fingerprint = fingerprint
            log.info("advisor for %s loaded in %.2f s (store unchanged)", self.store.path,
                     time.perf_counter() - started)
            return
        records = self.store.query()
        if self._fixed_learner is None:
            snapshot: Any = _FrameSnapshot(_frame(records))  # all load_or_fit reads of a store
            try:
                self._learner = artifact.load_or_fit(snapshot, directory=learner_dir)
            except StoreError as exc:
                raise StoreError(f"run store {self.store.path}: {exc}") from None
        if self._fixed_index is None:
            self._index = RunIndex.load_or_build(records, index_dir, embedder=self._embedder(index_dir),
                                                 embed_text=False)
        self._fingerprint = fingerprint
        if store_fingerprint(self.store) == fingerprint:  # nothing was written while we read
            self._write_stamp(fingerprint)
        log.info("advisor for %s ready in %.2f s (%d records)", self.store.path,
                 time.perf_counter() - started, len(records))

    def _stamp_path(self) -> Path:
        key = hashlib.sha1(os.path.realpath(self.store.path).encode()).hexdigest()[:12]
        return paths.artifacts_dir() / "advisor" / f"{key}.json"

    def _write_stamp(self, fingerprint: tuple[Any, ...]) -> None:
        assert self._learner is not None and self._index is not None
        stamp = {"store": os.path.realpath(self.store.path), "fingerprint": fingerprint,
                 "learner_hash": self._learner.data_hash, "index_hash": self._index.data_hash}
        path = self._stamp_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stamp))
            os.replace(tmp, path)
        except OSError as exc:  # only a speed-up: never fail a recommendation for it
            log.debug("cannot write the advisor stamp %s: %s", path, exc)

    def _load_stamped(self, fingerprint: tuple[Any, ...], learner_dir: Path, index_dir: Path) -> bool:
        """Load the learner and index the stamp names, if the store is unchanged since; else False."""
        from knowledge.metalearner import artifact
        from knowledge.retrieval.index import FORMAT_VERSION, RetrievalError, RunIndex, _read_meta

        try:
            stamp = json.loads(self._stamp_path().read_text())
        except (OSError, ValueError):
            return False
        if stamp.get("store") != os.path.realpath(self.store.path) or (
                stamp.get("fingerprint") != json.loads(json.dumps(fingerprint))):
            return False
        try:
            learner, index = self._fixed_learner, self._fixed_index
            if learner is None:
                meta = artifact.read_metadata(learner_dir)
                if (artifact.incompatibility(meta) or meta.get("source_weight")
                        or meta.get("data_hash") != stamp.get("learner_hash")):
                    return False
                learner = artifact.load(learner_dir)
            if index is None:
                meta = _read_meta(index_dir)
                if not meta or meta.get("format_version") != FORMAT_VERSION or (
                        meta.get("data_hash") != stamp.get("index_hash")):
                    return False
                index = RunIndex.load(index_dir, self._embedder(index_dir))
        except (StoreError, RetrievalError, OSError, ValueError) as exc:
            log.debug("advisor stamp not usable: %s", exc)
            return False
        self._learner, self._index = learner, index
        return True

    def _embedder(self, index_dir: Path) -> Embedder:
        """The embedder given, else `get_embedder()` (MiniLM when installed; it loads only when a
        text search first needs it)."""
        from knowledge.retrieval.embeddings import get_embedder

        if self.embedder is None:
            self.embedder = get_embedder()
        return self.embedder

    @property
    def learner(self) -> MetaLearner:
        with self._lock:
            self._refresh()
            assert self._learner is not None
            return self._learner

    @property
    def index(self) -> RunIndex:
        with self._lock:
            self._refresh()
            assert self._index is not None
            return self._index

    def learner_info(self) -> dict[str, Any]:
        """What the UI shows about the meta-learner: version, records per source, fit time."""
        return {**_learner_info(self.learner), "store": str(self.store.path)}

    def recommend(self, meta: MetaFeatures, *, top_k: int = 5, budget: Budget | str | None = None,
                  exclude_base: Iterable[str] | None = None, supported_only: bool = False,
                  similar_k: int = SIMILAR_K, dataset: str | None = None) -> Recommendation:
        """See `recommend`."""
        started = time.perf_counter()
        with self._lock:
            self._refresh()
            learner, index = self._learner, self._index
        assert learner is not None and index is not None
        return _recommend(meta, learner, index, learner_info=self.learner_info(), top_k=top_k,
                          budget=budget, exclude_base=exclude_base, supported_only=supported_only,
                          similar_k=similar_k, dataset=dataset, started=started)

    def search_text(self, question: str, k: int = 5, **kwargs: Any) -> list[Hit]:
        """Free-text search over the run cards (the first call embeds every card: slow)."""
        return self.index.search_text(question, k, **kwargs)


_ADVISORS: dict[str, Advisor] = {}
_ADVISORS_LOCK = threading.Lock()


def get_advisor(store: RunStore | str | Path | None = None) -> Advisor:
    """The process-wide `Advisor` of a store (default: the user's store), created on first use."""
    from knowledge.runs.store import RunStore

    path = store.path if isinstance(store, RunStore) else (
        Path(store).expanduser() if store is not None else paths.store_path())
    key = os.path.realpath(path)
    with _ADVISORS_LOCK:
        advisor = _ADVISORS.get(key)
        if advisor is None:
            advisor = _ADVISORS[key] = Advisor(store)
        return advisor


def clear_cache() -> None:
    """Forget every cached advisor (tests; after replacing artifacts by hand)."""
    with _ADVISORS_LOCK:
        _ADVISORS.clear()


# --- the recommendation --------------------------------------------------------------------------

def recommend(
    meta: MetaFeatures,
    *,
    top_k: int = 5,
    budget: Budget | str | None = None,
    store: RunStore | str | Path | None = None,
    learner: MetaLearner | None = None,
    index: RunIndex | None = None,
    exclude_base: Iterable[str] | None = None,
    supported_only: bool = False,
    similar_k: int = SIMILAR_K,
    dataset: str | None = None,
) -> Recommendation:
    """Recommend configs for the dataset described by `meta`.

    `budget`: a `Budget` or free text ("one hour on a T4", "CPU only"). `store`: the run store
    whose learner / index are used (default: the user's; loaded once per process, see `Advisor`);
    `learner` / `index` override them. `exclude_base` leaves those base datasets out of the similar
    runs (leave-one-out); `supported_only` drops configs beyond the training evidence.
    Raises ConfigError (bad top_k, nothing fits the budget), DatasetError (a time limit without
    n_instances), StoreError (an empty or unreadable store).
    """
    started = time.perf_counter()
    if learner is not None and index is not None:
        info = _learner_info(learner)
        return _recommend(meta, learner, index, learner_info=info, top_k=top_k, budget=budget,
                          exclude_base=exclude_base, supported_only=supported_only,
                          similar_k=similar_k, dataset=dataset, started=started)
    advisor = get_advisor(store)
    if learner is not None or index is not None:
        advisor = Advisor(advisor.store, learner=learner or advisor.learner,
                          index=index or advisor.index, embedder=advisor.embedder)
    return advisor.recommend(meta, top_k=top_k, budget=budget, exclude_base=exclude_base,
                             supported_only=supported_only, similar_k=similar_k, dataset=dataset)


def _learner_info(learner: MetaLearner) -> dict[str, Any]:
    from knowledge.metalearner.artifact import FORMAT_VERSION

    return {
        "format_version": FORMAT_VERSION,
        "fitted_at": learner.fitted_at,
        "n_records": dict(learner.n_records),
        "n_timed": learner.n_timed,
        "interval_margin_points": round(100 * learner.interval_margin, 2),
        "has_cost_model": learner.has_model("cost"),
        "ranking_blend": learner.blend,
    }


def _recommend(meta: MetaFeatures, learner: MetaLearner, index: RunIndex, *,
               learner_info: dict[str, Any], top_k: int, budget: Budget | str | None,
               exclude_base: Iterable[str] | None, supported_only: bool, similar_k: int,
               dataset: str | None, started: float) -> Recommendation:
    from knowledge.errors import ConfigError
    from knowledge.retrieval.index import RetrievalError

    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if isinstance(budget, str):
        budget = parse_budget(budget)
    scored, tier, nearest = _score_by_evidence(meta, learner, budget, supported_only)
    order = scored.order  # every candidate within the budget, best-ranked first
    faster_pos = _faster_position(scored, order)
    pareto_pos = [int(order[i]) for i in pareto_positions(scored.acc[order], scored.seconds[order])]
    top_pos = [int(p) for p in order[:top_k]]
    runner_up_pos = next((int(p) for p in order[1:] if int(p) != faster_pos), None)
    wanted = list(dict.fromkeys([*top_pos, *([faster_pos] if faster_pos is not None else []), *pareto_pos]
                                + ([runner_up_pos] if runner_up_pos is not None else [])))
    built = dict(zip(wanted, scored.ranked(wanted)))
    best, top = built[top_pos[0]], [built[p] for p in top_pos]
    notes: list[str] = []
    outside = outside_ranges(meta, recorded_ranges(index))
    if note := range_note(meta, outside):
        notes.append(note)
    if not best.supported:
        notes.append(_extrapolation_note(budget, nearest))
    elif tier == "shortened":
        notes.append(f"no recorded config fits {budget_text_of(budget)}: the pick trains fewer epochs "
                     "than the recorded runs it comes from (still within 3x of them)")

    faster: RankedConfig | None = built[faster_pos] if faster_pos is not None else None
    if best.predicted_seconds is None:
        notes.append("training times are not predicted: state the number of training images "
                     "(n_instances)")

    # More accurate: the highest predicted accuracy when the budget is ignored (every model, no
    # time limit); the ranking may put a config below the best although its predicted accuracy
    # is higher ('ranked_lower'), else the next-ranked config is the runner-up.
    more_accurate, kind, within = _more_accurate(meta, learner, scored, budget, best, built,
                                                 runner_up_pos, supported_only)
    extrapolated = sorted({f for r in top for f in r.extrapolated})
    if extrapolated and tier == "extrapolated":
        notes.append(f"some top configs lie beyond the training evidence in: {', '.join(extrapolated)} "
                     "(predictions there are extrapolations)")
    from_timm = bool(best.time_source and best.time_source.startswith("timm"))
    if best.time_is_estimate and best.predicted_seconds is not None and not from_timm:
        notes.append(f"{best.config.spec.label} was never timed here: its time is a rough "
                     "FLOPs-based estimate")
    if budget is not None and not budget.cpu_only:
        notes.append("GPU times come from timm's published training throughput scaled to the "
                     "device (not measured here)" if from_timm else
                     "GPU times are CPU timings divided by rough public speed-up factors")

    excluded = sorted({b.lower() for b in (exclude_base or ())})
    try:
        similar = index.similar_runs(meta, k=similar_k, dedupe_datasets=True, exclude_base=excluded)
    except RetrievalError as exc:
        similar = []
        notes.append(f"no similar runs: {exc}")

    return Recommendation(
        dataset=dataset,
        meta_features=meta,
        missing_traits=meta.missing(),
        budget=budget,
        best=best,
        top=top,
        faster=faster,
        more_accurate=more_accurate,
        more_accurate_kind=kind,
        more_accurate_within_budget=None if more_accurate is None else within,
        pareto=[built[p] for p in pareto_pos],
        n_candidates=len(order),
        evidence_tier=tier,
        pretrained_vs_scratch=learner.support.pretrained_vs_scratch(best.config),
        supported_fits=scored.supported_fits,
        nearest_supported=nearest,
        explanation=explain(learner, meta, best.config),
        similar_runs=similar,
        excluded=excluded,
        notes=notes,
        memory=_memory_line(best, budget),
        outside_range=outside,
        learner=learner_info,
        seconds=round(time.perf_counter() - started, 4),
    )


def _memory_line(best: RankedConfig, budget: Budget | None) -> str | None:
    """The card's memory line for a GPU / Apple budget (`memory.memory_line`), else None."""
    if budget is None or budget.cpu_only:
        return None
    from knowledge.metalearner.memory import memory_line

    return memory_line(best.config, budget.device, best.batch_shrunk_from)


def _faster_position(scored: Scored, order: np.ndarray) -> int | None:
    """The faster alternative: the fastest config ranked below the pick whose predicted accuracy
    is at most `FASTER_WITHIN_POINTS` below the pick's and not above it (a config forecast more
    accurate than the pick is the 'more accurate' alternative, never the 'faster' one)."""
    if len(order) < 2:
        return None
    best = int(order[0])
    acc, seconds = scored.acc, np.nan_to_num(scored.seconds, nan=np.inf)
    if not np.isfinite(seconds[best]):
        return None
    rest = np.asarray(order[1:], dtype=int)
    ok = rest[(acc[rest] >= acc[best] - FASTER_WITHIN_POINTS / 100.0 - _ACC_EPS)
              & (acc[rest] <= acc[best] + _ACC_EPS) & (seconds[rest] < seconds[best])]
    if ok.size == 0:
        return None
    return int(ok[np.lexsort((-acc[ok], seconds[ok]))[0]])


def _score_by_evidence(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
                       supported_only: bool) -> tuple[Scored, str, RankedConfig | None]:
    """Score the candidates tier by tier (module doc of `knowledge.metalearner.support`): the
    recorded portfolio; with it the shortened variations; the free sample of the search space.
    The first tier with a supported candidate within the budget wins; the last is used only when
    no supported candidate fits, and then `nearest` is the fastest supported config (outside the
    budget). Raises ConfigError (naming the nearest supported option) when nothing fits at all."""
    from knowledge.errors import ConfigError
    from knowledge.metalearner.candidates import candidate_configs, evidence_candidates

    cpu_only = bool(budget and budget.cpu_only)
    evidence = learner.support
    if not len(evidence):  # an artifact without its runs: the free sample, as before
        return score_candidates(meta, learner, budget=budget, supported_only=supported_only,
                                order_by=RANK_BY), "extrapolated", None
    tiers = [("recorded", evidence_candidates(evidence, cpu_only=cpu_only)),
             ("shortened", evidence_candidates(evidence, shortened=True, cpu_only=cpu_only))]
    for tier, candidates in tiers:
        if not candidates:
            continue
        try:
            scored = score_candidates(meta, learner, budget=budget, candidates=candidates,
                                      supported_only=supported_only, order_by=RANK_BY)
        except ConfigError:
            continue
        if scored.supported_fits:
            return scored, tier, None
    nearest = _nearest_supported(meta, learner, budget, tiers[-1][1])
    free = list(dict.fromkeys([*candidate_configs(cpu_only=cpu_only), *tiers[-1][1]]))
    try:
        scored = score_candidates(meta, learner, budget=budget, candidates=free,
                                  supported_only=supported_only, order_by=RANK_BY)
    except ConfigError as exc:
        if nearest is None:
            raise
        raise ConfigError(f"{exc}. The nearest supported option: {config_label(nearest)}, "
                          f"~{_time(nearest)} on {nearest.device}") from None
    return scored, "extrapolated", nearest


def _nearest_supported(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
                       candidates: list) -> RankedConfig | None:
    """The fastest supported candidate ignoring the time limit (None when there is none)."""
    if not candidates or meta.n_instances is None:
        return None
    open_budget = budget.model_copy(update={"max_seconds": None}) if budget is not None else None
    scored = score_candidates(meta, learner, budget=open_budget, candidates=candidates)
    times = np.nan_to_num(scored.seconds, nan=np.inf)
    return scored.ranked([int(np.argmin(times))])[0]


def _extrapolation_note(budget: Budget | None, nearest: RankedConfig | None) -> str:
    """The plain-words note of an answer whose pick is not backed by recorded runs."""
    text = (f"No config backed by recorded runs fits {budget_text_of(budget)}: this pick "
            "extrapolates beyond the evidence, so its predicted accuracy and time are guesses.")
    if nearest is not None:
        text += (f" The nearest supported option is {config_label(nearest)}: "
                 f"{_pct(nearest.predicted_acc)} in ~{_time(nearest)} on {nearest.device}.")
    return text


def _more_accurate(meta: MetaFeatures, learner: MetaLearner, scored: Scored, budget: Budget | None,
                   best: RankedConfig, built: dict[int, RankedConfig], runner_up_pos: int | None,
                   supported_only: bool) -> tuple[RankedConfig | None, str | None, bool]:
    """(config, kind, within the budget) of the `more_accurate` alternative (see Recommendation)."""
    from knowledge.metalearner.candidates import candidate_configs, evidence_candidates

    if budget is None or not budget.cpu_only:
        # the same candidates as `scored` (every model); only a time limit may have removed some
        top = int(scored.by_accuracy(time_limit=False)[0])
        source, in_budget = scored, bool(scored.keep is None or scored.keep[top])
    else:  # the CPU-only candidates are their own sample: score every model's
        every = evidence_candidates(learner.support, shortened=True) or candidate_configs()
        source = score_candidates(meta, learner, budget=None, candidates=every,
                                  supported_only=supported_only, order_by="acc", times=False)
        top = int(source.by_accuracy()[0])
        config = source.candidates[top]
        same = [int(p) for p in scored.order if scored.candidates[p].model == config.model
                and scored.candidates[p] == config]
        if same:  # one of the ranked candidates after all
            source, top, in_budget = scored, same[0], True
        else:
            in_budget = False
    if source.acc[top] > best.predicted_acc + _ACC_EPS:
        if in_budget:
            found = built.get(top) or scored.ranked([top])[0]
            return found, "ranked_lower", True
        return source.ranked([top])[0], "beyond_budget", False
    if runner_up_pos is not None:
        return built[runner_up_pos], "runner_up", True
    return None, None, False


__all__ = [
    "Advisor",
    "FASTER_WITHIN_POINTS",
    "Recommendation",
    "TRAIT_KEYS",
    "clear_cache",
    "budget_text",
    "config_label",
    "more_accurate_text",
    "get_advisor",
    "meta_from_traits",
    "outside_ranges",
    "range_note",
    "recommend",
    "recorded_ranges",
    "store_fingerprint",
]
