"""The configs the ranking scores for a dataset.

`evidence_candidates` (what `recommend` ranks first): the configs drawn from the recorded runs - the
portfolio of configs recorded on several datasets, and (`shortened=True`) those with fewer epochs;
see `knowledge.metalearner.support`. Every one of them is backed by recorded runs.

`candidate_configs` (the free sample, used only when no supported config fits a budget, and then
marked as extrapolation): a deterministic, seeded sample of the search space. Structure: every trainable model x {pretrained end-to-end, pretrained linear probing, from scratch
end-to-end} x resolutions; for each of those "bases", `HP_PER_EPOCHS` hyperparameter settings drawn
(seeded) from `HP_GRID` for each epochs value, plus the published MedMNIST+ setup (lr 1e-4,
weight decay 0.01, batch 64, 100 epochs, no augmentation), which is where most evidence is. About
2,800 configs for the full space, ~600 CPU-only: small enough to score in well under a second.
Linear probing of a randomly initialised network is left out (it learns nothing useful).
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from knowledge.errors import ConfigError
from knowledge.metalearner.support import Evidence, filter_candidates
from knowledge.search_space import MODELS, SPACE, TrainConfig

RESOLUTIONS: tuple[int, ...] = (28, 64, 128, 224)
HP_GRID: dict[str, tuple[Any, ...]] = {
    "lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    "weight_decay": (0.0, 1e-4, 1e-2),
    "batch_size": (32, 64, 128),
    "augmentation": ("none", "light", "strong"),
    "label_smoothing": (0.0, 0.1),
}
EPOCHS: tuple[int, ...] = (3, 10, 30, 100)
HP_PER_EPOCHS = 3
PUBLISHED_SETUP: dict[str, Any] = {
    "lr": 1e-4, "weight_decay": 1e-2, "batch_size": 64, "epochs": 100,
    "augmentation": "none", "label_smoothing": 0.0,
}
BASES: tuple[tuple[bool, str], ...] = (
    (True, "end_to_end"), (True, "linear_probing"), (False, "end_to_end"),
)


def candidate_models(*, cpu_only: bool = False, models: tuple[str, ...] | None = None) -> list[str]:
    """Trainable models (MODELS order); CPU-only keeps the cpu_friendly ones; `models` restricts."""
    if models is not None:
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise ConfigError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    chosen = [
        name for name, spec in MODELS.items()
        if spec.trainable and (spec.cpu_friendly or not cpu_only)
        and (models is None or name in models)
    ]
    if not chosen:
        raise ConfigError("no trainable model satisfies the constraints"
                          + (" (CPU only keeps " + ", ".join(
                              n for n, s in MODELS.items() if s.cpu_friendly) + ")" if cpu_only else ""))
    return chosen


@lru_cache(maxsize=32)
def _candidates(cpu_only: bool, pretrained_only: bool, max_resolution: int | None,
                models: tuple[str, ...] | None, seed: int) -> tuple[TrainConfig, ...]:
    resolutions = [r for r in RESOLUTIONS if max_resolution is None or r <= max_resolution]
    if not resolutions:
        raise ConfigError(f"max resolution {max_resolution} px is below the smallest candidate "
                          f"resolution ({min(RESOLUTIONS)} px)")
    rng = random.Random(seed)
    out: list[TrainConfig] = []
    for model in candidate_models(cpu_only=cpu_only, models=models):
        for pretrained, scheme in BASES:
            if pretrained_only and not pretrained:
                continue
            for resolution in resolutions:
                base = dict(model=model, pretrained=pretrained, scheme=scheme,
                            resolution=resolution, optimizer="adamw")
                settings = [dict(PUBLISHED_SETUP)]
                for epochs in EPOCHS:
                    for _ in range(HP_PER_EPOCHS):
                        hp = {k: rng.choice(v) for k, v in HP_GRID.items()}
                        settings.append(dict(hp, epochs=epochs))
                seen: set[tuple] = set()
                for hp in settings:
                    key = tuple(sorted(hp.items()))
                    if key not in seen:
                        seen.add(key)
                        out.append(TrainConfig(**base, **hp))
    return tuple(out)


def candidate_configs(*, cpu_only: bool = False, pretrained_only: bool = False,
                      max_resolution: int | None = None, models: list[str] | None = None,
                      seed: int = 0) -> list[TrainConfig]:
    """The candidate configs under the constraints (same arguments -> same list, cached).

    `cpu_only` keeps the cpu_friendly models; `pretrained_only` drops from-scratch training;
    `max_resolution` drops larger input sizes; `models` restricts to the named models.
    """
    key = tuple(sorted(models)) if models is not None else None
    return list(_candidates(bool(cpu_only), bool(pretrained_only), max_resolution, key, seed))


def evidence_candidates(evidence: Evidence, *, shortened: bool = False, cpu_only: bool = False,
                        pretrained_only: bool = False, max_resolution: int | None = None,
                        models: list[str] | None = None) -> list[TrainConfig]:
    """The portfolio of `evidence` (configs recorded on several datasets) under the constraints,
    plus with `shortened` their supported variations with fewer epochs."""
    return filter_candidates(evidence.candidates(shortened), cpu_only=cpu_only,
                             pretrained_only=pretrained_only, max_resolution=max_resolution,
                             models=tuple(models) if models is not None else None)


def check_candidates(configs: list[TrainConfig]) -> None:
    """ConfigError if any candidate lies outside the full search space (used by tests)."""
    for cfg in configs:
        problems = SPACE.errors(cfg.model_dump())
        if problems:
            raise ConfigError(f"candidate {cfg.key()}: {'; '.join(problems)}")
