"""`Recommendation`: everything `recommend` found for one dataset, and how it reads (the card's
Markdown, its evidence / alternatives / similar-run bullets, `budget_text`, `more_accurate_text`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from knowledge.explain import Explanation
from knowledge.metafeatures import FEATURE_LABELS, MetaFeatures
from knowledge.metalearner.budget import Budget
from knowledge.metalearner.ranking import RankedConfig
from knowledge.recommend.text import _pct, _time, _value, config_label
from knowledge.retrieval.index import Hit
from knowledge.search_space import PROTOCOL_PATIENCE, is_published_protocol

FASTER_WITHIN_POINTS = 2.0  # the faster alternative may lose at most this many accuracy points


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
                                "several datasets), 'shortened' (the pick is a recorded config cut "
                                "to fewer epochs to fit the budget), 'extrapolated' (the free sample "
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
    def alternative_lines(self, pareto: bool = True, presented: RankedConfig | None = None) -> list[str]:
        """The card's "Alternatives" bullets: faster, more accurate and (`pareto`) the front. With
        `presented`, a config below the best that an answer presents instead (for speed, when
        there is no faster alternative), the first bullet is the best itself."""
        b = self.best
        if presented is not None and presented is not b and presented is not self.faster:
            lines = [f"- **Top-ranked within the budget**: {config_label(b)} — {_pct(b.predicted_acc)} "
                     f"in ~{_time(b)}; the config above trains faster."]
            if self.more_accurate is not None and self.more_accurate is not presented:
                m = self.more_accurate
                lines.append(f"- **More accurate** ({more_accurate_text(self, long=True)}): "
                             f"{config_label(m)} — {_pct(m.predicted_acc)} in ~{_time(m)}.")
            return lines
        if self.faster is not None:
            f = self.faster
            lines = [f"- **Faster**: {config_label(f)} — {_pct(f.predicted_acc)} in ~{_time(f)} "
                     f"(best: {_time(b)}), at most {self.faster_within_points:g} points less."]
        else:
            lines = ["- **Faster**: no config ranked below the best and predicted at most "
                     f"{self.faster_within_points:g} points less accurate is faster."]
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
            lines += ["Unknown (the meta-learner fills them in): "
                      f"{', '.join(FEATURE_LABELS.get(k, k) for k in self.missing_traits)}.",
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


def budget_text(rec: Recommendation) -> str:
    """'1 h on NVIDIA T4', 'no time limit on CPU, CPU-friendly models only', 'none (any model, ...)'."""
    if rec.budget is None:
        return "none (any model; times on this CPU)"
    return rec.budget.describe(notes=True) + (", CPU-friendly models only" if rec.budget.cpu_only else "")
