"""The support of a config: the recorded runs that back it, and the candidates drawn from them.

A recorded ok run (on any dataset) *backs* a config when it trained the same model (or a close
relative: `CLOSE_MODELS`) with the same pretrained flag, scheme and resolution, at a learning rate
and an epoch count each within `RATIO` (3x) of the config's.

A config is *supported* when at least `MIN_RUNS` runs back it. The support says how many runs on how
many datasets, and which is the closest (smallest lr and epoch ratios).

Candidates come from the evidence, not from a free cross product (`Evidence.candidates`):
- the *portfolio*: every distinct recorded config (all eleven fields) of a trainable model and scheme
  that was recorded on at least `PORTFOLIO_MIN_DATASETS` datasets - the published MedMNIST+ protocol
  (AdamW, lr 1e-4, weight decay 0.01, batch 64, 100 epochs) of each published model x scheme x
  resolution, and our CPU portfolio (`knowledge/data/cpu_portfolio.json`, run on every own variant);
- *shortened* variations: a portfolio config with fewer epochs (down to a third, still backed by its
  run): of those too slow for the budget beside those that fit, of all when none fits;
- linear probing of a randomly initialised network is never a candidate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from knowledge.search_space import MODELS, TRAINABLE_SCHEMES, TrainConfig

if TYPE_CHECKING:
    import pandas as pd

RATIO = 3.0  # a backing run's lr and epochs lie within this factor of the config's
MIN_RUNS = 1
PORTFOLIO_MIN_DATASETS = 3
# Models whose runs also back each other (explicit, reviewed): none so far. A pair belongs here
# only where the architectures and pretraining are the same up to size, e.g. two widths of one net.
CLOSE_MODELS: dict[str, tuple[str, ...]] = {}
_CONFIG_FIELDS = tuple(TrainConfig.model_fields)
_EPS = 1e-9


class Support(BaseModel):
    """The recorded runs that back one config (see the module doc for the rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_runs: int = Field(description="recorded ok runs that back the config")
    n_datasets: int = Field(description="distinct datasets (incl. variants) among them")
    n_exact: int = Field(0, description="runs of exactly this config (all eleven fields)")
    sources: dict[str, int] = Field(default_factory=dict, description="backing runs per source")
    n_user: int = Field(0, description="backing runs of the user's own (imported: source 'user')")
    closest: str | None = Field(None, description="the closest backing run, in words")
    nearest_unsupported: str | None = Field(
        None, description="when unsupported: the nearest recorded run of the same model, in words")
    largest_n: int | None = Field(None, description="training images of the largest backing dataset")
    user_n: int | None = Field(None, description="the user's training images, when known")

    @property
    def size_extrapolates(self) -> bool:
        """Backed only on datasets much smaller than the user's (`Evidence.covers_size`)."""
        return bool(self.largest_n and self.user_n and self.largest_n * RATIO < self.user_n)

    @property
    def supported(self) -> bool:
        return self.n_runs >= MIN_RUNS

    def text(self) -> str:
        """'backed by 12 runs on 4 datasets, 3 of them yours (published 9, user 3), the closest: ...'."""
        if not self.supported:
            near = f"; the nearest recorded run: {self.nearest_unsupported}" if self.nearest_unsupported else ""
            return f"not backed by any recorded run (an extrapolation){near}"
        src = ", ".join(f"{k} {v}" for k, v in sorted(self.sources.items()))
        runs, sets = ("run" if self.n_runs == 1 else "runs"), ("dataset" if self.n_datasets == 1 else "datasets")
        closest = f"; the closest: {self.closest}" if self.closest else ""
        size = (f"; those runs used at most {self.largest_n:,} training images and yours has "
                f"{self.user_n:,}, so the forecast extrapolates in dataset size"
                if self.size_extrapolates else "")
        yours = f", {self.n_user} of them yours" if self.n_user else ""
        return f"backed by {self.n_runs} {runs} on {self.n_datasets} {sets}{yours} ({src}){closest}{size}"


def _group(model: str, pretrained: bool, scheme: str) -> tuple[str, bool, str]:
    return (model, bool(pretrained), scheme)


def _models_backing(model: str) -> tuple[str, ...]:
    return (model, *CLOSE_MODELS.get(model, ()))


def recommendable(cfg: TrainConfig) -> bool:
    """A config the advisor may propose at all: a trainable model and scheme, and no linear probing
    of a randomly initialised network (its frozen features are noise)."""
    spec = MODELS.get(cfg.model)
    return (spec is not None and spec.trainable and cfg.scheme in TRAINABLE_SCHEMES
            and not (cfg.scheme == "linear_probing" and not cfg.pretrained))


@dataclass
class Evidence:
    """The ok runs with an accuracy that the meta-learner was fitted on, in a compact form.

    `configs`: the distinct recorded configs; per run: index into `configs`, dataset id, source,
    accuracy (fraction), and its dataset's size, classes and modality (for the closest run)."""

    configs: list[TrainConfig]
    run_config: np.ndarray  # int, per run
    run_dataset: np.ndarray  # object (str), per run
    run_source: np.ndarray  # object (str), per run
    run_acc: np.ndarray  # float, per run
    run_n: np.ndarray | None = None  # float, training images of the run's dataset (NaN unknown)
    run_classes: np.ndarray | None = None  # float, classes of the run's dataset
    run_modality: np.ndarray | None = None  # object (str), modality of the run's dataset

    def __post_init__(self) -> None:
        size = self.run_config.size  # dataset descriptors missing (or of another length): unknown
        if self.run_n is None or self.run_n.size != size:
            self.run_n = np.full(size, np.nan)
        if self.run_classes is None or self.run_classes.size != size:
            self.run_classes = np.full(size, np.nan)
        if self.run_modality is None or self.run_modality.size != size:
            self.run_modality = np.full(size, "", dtype=object)
        keys = [_group(c.model, c.pretrained, c.scheme) for c in self.configs]
        run_keys = [keys[i] for i in self.run_config]
        groups: dict[tuple[str, bool, str], list[int]] = {}
        for j, key in enumerate(run_keys):
            groups.setdefault(key, []).append(j)
        self._by_group = {k: np.asarray(v, dtype=int) for k, v in groups.items()}
        self._lr = np.array([c.lr for c in self.configs], dtype="float64")
        self._epochs = np.array([c.epochs for c in self.configs], dtype="float64")
        self._res = np.array([c.resolution for c in self.configs], dtype="float64")
        self._index = {c.key(): i for i, c in enumerate(self.configs)}
        self._datasets_per_config: np.ndarray | None = None
        self._candidates: dict[bool, tuple[TrainConfig, ...]] = {}

    # --- building and persisting ---------------------------------------------------------------
    @classmethod
    def from_frame(cls, rows: pd.DataFrame) -> Evidence:
        """From flat training rows (status ok, accuracy known: `model.training_rows`)."""
        import pandas as pd

        from knowledge.metalearner.model import accuracy_target  # lazy: import cycle (model imports support)

        configs: list[TrainConfig] = []
        index: dict[str, int] = {}
        run_config: list[int] = []
        if len(rows):
            acc = accuracy_target(rows).to_numpy("float64")
            for cfg in configs_of(rows):
                key = cfg.key()
                if key not in index:
                    index[key] = len(configs)
                    configs.append(cfg)
                run_config.append(index[key])
            datasets = rows["dataset_id"].astype(str).to_numpy(dtype=object)
            sources = (rows["prov.source"].astype(str) if "prov.source" in rows
                       else rows["dataset_id"].map(lambda _: "own")).to_numpy(dtype=object)
            n = pd.to_numeric(rows.get("mf.n_instances"), errors="coerce").to_numpy("float64")
            classes = pd.to_numeric(rows.get("mf.n_classes"), errors="coerce").to_numpy("float64")
            modality = rows.get("mf.modality").fillna("").astype(str).to_numpy(dtype=object)
        else:
            return cls.empty()
        return cls(configs, np.asarray(run_config, dtype=int), datasets, sources,
                   np.asarray(acc, dtype="float64"), n, classes, modality)

    @classmethod
    def empty(cls) -> Evidence:
        return cls([], np.zeros(0, dtype=int), np.zeros(0, dtype=object), np.zeros(0, dtype=object),
                   np.zeros(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "configs": [c.model_dump() for c in self.configs],
            "run_config": self.run_config.tolist(),
            "run_dataset": self.run_dataset.tolist(),
            "run_source": self.run_source.tolist(),
            "run_acc": [round(float(a), 6) for a in self.run_acc],
            "run_n": [None if math.isnan(v) else float(v) for v in self.run_n],  # type: ignore[union-attr]
            "run_classes": [None if math.isnan(v) else float(v) for v in self.run_classes],  # type: ignore[union-attr]
            "run_modality": list(self.run_modality),  # type: ignore[arg-type]
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls([TrainConfig.model_construct(**c) for c in data.get("configs", [])],
                   np.asarray(data.get("run_config", []), dtype=int),
                   np.asarray(data.get("run_dataset", []), dtype=object),
                   np.asarray(data.get("run_source", []), dtype=object),
                   np.asarray(data.get("run_acc", []), dtype="float64"),
                   np.asarray(data.get("run_n", []), dtype="float64"),
                   np.asarray(data.get("run_classes", []), dtype="float64"),
                   np.asarray(data.get("run_modality", []), dtype=object))

    def __len__(self) -> int:
        return int(self.run_config.size)

    # --- support -------------------------------------------------------------------------------
    def _backing(self, cfg: TrainConfig) -> np.ndarray:
        """Indices of the runs that back `cfg`."""
        parts = [self._by_group.get(_group(m, cfg.pretrained, cfg.scheme))
                 for m in _models_backing(cfg.model)]
        runs = np.concatenate([p for p in parts if p is not None]) if any(
            p is not None for p in parts) else np.zeros(0, dtype=int)
        if runs.size == 0:
            return runs
        ci = self.run_config[runs]
        lim = math.log(RATIO) + _EPS
        ok = ((self._res[ci] == cfg.resolution)
              & (np.abs(np.log(self._lr[ci] / cfg.lr)) <= lim)
              & (np.abs(np.log(self._epochs[ci] / cfg.epochs)) <= lim))
        return runs[ok]

    def support(self, cfg: TrainConfig, meta: Any = None) -> Support:
        """The runs backing `cfg`, summarised. The closest is the backing run nearest in lr and
        epochs, then (with `meta`, the user's MetaFeatures) on the most similar dataset: size,
        classes, modality."""
        runs = self._backing(cfg)
        if runs.size == 0:
            return Support(n_runs=0, n_datasets=0, nearest_unsupported=self._nearest_text(cfg))
        ci = self.run_config[runs]
        distance = np.round(np.abs(np.log(self._lr[ci] / cfg.lr))
                            + np.abs(np.log(self._epochs[ci] / cfg.epochs)), 6)
        best = int(runs[np.lexsort((self.dataset_distance(runs, meta), distance))[0]])
        sources = dict(Counter(str(s) for s in self.run_source[runs]))
        exact = self.config_index(cfg)
        return Support(
            n_runs=int(runs.size),
            n_datasets=int(len(set(self.run_dataset[runs].tolist()))),
            n_exact=int((self.run_config[runs] == exact).sum()) if exact is not None else 0,
            sources=sources, n_user=sources.get("user", 0),
            closest=self._run_text(best),
            largest_n=None if np.isnan(self.run_n[runs]).all() else int(np.nanmax(self.run_n[runs])),  # type: ignore[index]
            user_n=int(meta.n_instances) if getattr(meta, "n_instances", None) else None,
        )

    def config_index(self, cfg: TrainConfig) -> int | None:  # `cfg` recorded exactly, if any
        return self._index.get(cfg.key())

    def dataset_distance(self, runs: np.ndarray, meta: Any) -> np.ndarray:
        """How unlike the user's dataset each run's dataset is (0 without `meta`)."""
        if meta is None:
            return np.zeros(runs.size)
        out = np.zeros(runs.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            if getattr(meta, "n_instances", None):
                out += np.nan_to_num(np.abs(np.log(self.run_n[runs] / meta.n_instances)), nan=5.0)  # type: ignore[index]
            if getattr(meta, "n_classes", None):
                out += np.nan_to_num(np.abs(np.log(self.run_classes[runs] / meta.n_classes)), nan=2.0)  # type: ignore[index]
        if getattr(meta, "modality", None):
            out += 1.0 * (self.run_modality[runs] != meta.modality)  # type: ignore[index]
        return out

    def n_runs(self, configs: Sequence[TrainConfig]) -> np.ndarray:
        """Backing runs per config (vectorised use of the rule)."""
        return self.backing(configs)[0]

    def backing(self, configs: Sequence[TrainConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Per config, in one pass over the rule: the number of backing runs, and the training
        images of the largest dataset among them (NaN: no backing run, or no size known)."""
        n = np.zeros(len(configs), dtype=int)
        largest = np.full(len(configs), np.nan)
        for i, c in enumerate(configs):
            runs = self._backing(c)
            n[i] = runs.size
            sizes = self.run_n[runs]  # type: ignore[index]
            if sizes.size and not np.isnan(sizes).all():
                largest[i] = float(np.nanmax(sizes))
        return n, largest

    def n_datasets(self, configs: Sequence[TrainConfig]) -> np.ndarray:
        """Distinct datasets among the backing runs, per config."""
        return np.array([len(set(self.run_dataset[self._backing(c)].tolist())) for c in configs],
                        dtype=int)

    def max_n(self, configs: Sequence[TrainConfig]) -> np.ndarray:
        """Per config, the training images of its largest backing dataset (NaN: none known)."""
        return self.backing(configs)[1]

    def covers_size(self, configs: Sequence[TrainConfig], n_instances: float | None,
                    largest: np.ndarray | None = None) -> np.ndarray:
        """Per config, whether its backing runs include a dataset at least 1/`RATIO` the size of
        the user's (`n_instances` images; True where a size is unknown). A config run only on
        2,000-image sets, asked for 80,000, is backed but extrapolates in dataset size.
        `largest`: `max_n(configs)`, when already known."""
        if not n_instances:
            return np.ones(len(configs), dtype=bool)
        largest = self.max_n(configs) if largest is None else largest
        return np.isnan(largest) | (largest * RATIO >= float(n_instances))

    def _run_text(self, j: int) -> str:
        c = self.configs[int(self.run_config[j])]
        return (f"{self.run_dataset[j]} ({self.run_source[j]}): {MODELS[c.model].label if c.model in MODELS else c.model}"
                f"{' pretrained' if c.pretrained else ' from scratch'}, {c.scheme}, {c.resolution} px, "
                f"lr {c.lr:.0e}, {c.epochs} ep -> {100 * float(self.run_acc[j]):.1f} %")

    def _nearest_text(self, cfg: TrainConfig) -> str | None:
        same = np.flatnonzero(np.array([self.configs[i].model == cfg.model for i in self.run_config],
                                       dtype=bool)) if len(self) else np.zeros(0, dtype=int)
        if same.size == 0:
            return None
        ci = self.run_config[same]
        distance = (np.abs(np.log(self._lr[ci] / cfg.lr)) + np.abs(np.log(self._epochs[ci] / cfg.epochs))
                    + np.abs(np.log(self._res[ci] / cfg.resolution))
                    + np.array([2.0 * (self.configs[i].pretrained != cfg.pretrained)
                                + 2.0 * (self.configs[i].scheme != cfg.scheme) for i in ci]))
        return self._run_text(int(same[int(np.argmin(distance))]))

    # --- candidates ----------------------------------------------------------------------------
    def datasets_per_config(self) -> np.ndarray:
        """Distinct datasets each recorded config was run on (exactly)."""
        if self._datasets_per_config is None:
            sets: list[set[str]] = [set() for _ in self.configs]
            for i, d in zip(self.run_config, self.run_dataset):
                sets[int(i)].add(str(d))
            self._datasets_per_config = np.array([len(s) for s in sets], dtype=int)
        return self._datasets_per_config

    def portfolio(self, min_datasets: int = PORTFOLIO_MIN_DATASETS) -> list[TrainConfig]:
        """Recorded configs run on at least `min_datasets` datasets that may be recommended."""
        counts = self.datasets_per_config()
        return [c for c, n in zip(self.configs, counts) if n >= min_datasets and recommendable(c)]

    def candidates(self, shortened: bool = False) -> tuple[TrainConfig, ...]:
        """The portfolio, plus with `shortened` its supported fewer-epoch variations (cached)."""
        if shortened not in self._candidates:
            portfolio = self.portfolio()
            self._candidates[shortened] = tuple(
                portfolio + (self.shortened(portfolio) if shortened else []))
        return self._candidates[shortened]

    def shortened(self, configs: Iterable[TrainConfig]) -> list[TrainConfig]:
        """Each config with fewer epochs (half, a third; at least 1), kept where still supported."""
        out: list[TrainConfig] = []
        seen = set()
        for c in configs:
            for epochs in sorted({max(1, round(c.epochs / 2)), max(1, math.ceil(c.epochs / RATIO))}):
                if epochs >= c.epochs:
                    continue
                v = c.model_copy(update={"epochs": int(epochs)})
                if v.key() not in seen and self._backing(v).size >= MIN_RUNS:
                    seen.add(v.key())
                    out.append(v)
        return out

    def pretrained_vs_scratch(self, cfg: TrainConfig) -> str | None:
        """What the records say about pretrained weights vs from scratch for `cfg.model`: per
        (dataset, source) with runs of both, whether the best pretrained run beat the best
        from-scratch run. None when the model has runs of only one kind anywhere."""
        if not len(self):
            return None
        label = MODELS[cfg.model].label if cfg.model in MODELS else cfg.model
        best: dict[tuple[str, str, bool], float] = {}
        kinds: set[bool] = set()
        for j in range(len(self)):
            c = self.configs[int(self.run_config[j])]
            if c.model != cfg.model:
                continue
            kinds.add(bool(c.pretrained))
            key = (str(self.run_dataset[j]), str(self.run_source[j]), bool(c.pretrained))
            best[key] = max(best.get(key, -1.0), float(self.run_acc[j]))
        if len(kinds) < 2:
            return None
        pairs = sorted({(d, s) for d, s, _ in best if (d, s, True) in best and (d, s, False) in best})
        if not pairs:
            return (f"Pretrained vs from scratch ({label}): no dataset in the records was run both "
                    f"ways under the same setup, so the choice rests on the accuracy model alone.")
        margins = [(best[(d, s, True)] - best[(d, s, False)], d) for d, s in pairs]
        wins = sum(m > 0 for m, _ in margins)
        if cfg.pretrained:
            m, d = max(margins)
            return (f"Pretrained vs from scratch ({label}): on {len(pairs)} datasets run both ways, "
                    f"the best pretrained run beat the best from-scratch run on {wins} "
                    f"(largest gain: {d}, {100 * m:+.1f} points).")
        m, d = min(margins)
        return (f"From scratch vs pretrained ({label}): on {len(pairs)} datasets run both ways, the "
                f"best from-scratch run beat the best pretrained run on {len(pairs) - wins} "
                f"(largest gain: {d}, {-100 * m:+.1f} points).")


def configs_of(frame: pd.DataFrame) -> list[TrainConfig]:
    """The `TrainConfig` of each flat row (its `cfg.*` columns), unvalidated (records were
    validated when stored)."""
    records = frame[[f"cfg.{f}" for f in _CONFIG_FIELDS]].to_dict("records")
    return [TrainConfig.model_construct(**{f: (v.item() if hasattr(v, "item") else v)
                                           for f, v in zip(_CONFIG_FIELDS, r.values())})
            for r in records]


def filter_candidates(configs: Iterable[TrainConfig], *, cpu_only: bool = False,
                      pretrained_only: bool = False, max_resolution: int | None = None,
                      models: Sequence[str] | None = None) -> list[TrainConfig]:
    """The configs that satisfy the constraints (as `candidates.candidate_configs`' arguments)."""
    return [c for c in configs
            if (not cpu_only or MODELS[c.model].cpu_friendly)
            and (not pretrained_only or c.pretrained)
            and (max_resolution is None or c.resolution <= max_resolution)
            and (models is None or c.model in models)]
