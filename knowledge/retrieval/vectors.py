"""The numeric index's vectors: meta-features as z-scores (counts on a log scale), missing flags
and modality / task one-hot (`FeatureScaler`, `feature_matrix`), and a query that states only some
traits as one weighted inner-product search against records stored as `[x, x²]` (`NumericQuery`;
see the module doc of `knowledge.retrieval.index`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.metafeatures import MODALITIES, NUMERIC_FEATURES, TASK_TYPES, MetaFeatures
from knowledge.retrieval.hit import RetrievalError

# Features compared on a log scale (counts and sizes); the others (entropy, channels) as they are.
LOG_FEATURES = frozenset({"n_instances", "n_classes", "imbalance_ratio", "height", "width",
                          "class_size_mean", "class_size_std", "class_size_min", "class_size_max"})
# How much each stated trait counts in the distance (in squared z-units). The four class-size
# statistics largely repeat n_instances and n_classes, so they count for little.
FEATURE_WEIGHTS: dict[str, float] = {
    "n_instances": 1.0, "n_classes": 1.5, "imbalance_ratio": 1.0, "class_entropy": 0.5,
    "height": 0.5, "width": 0.5, "channels": 0.5,
    "class_size_mean": 0.25, "class_size_std": 0.25, "class_size_min": 0.25, "class_size_max": 0.25,
}
MODALITY_WEIGHT = 4.0  # distance added by a different modality (half of it when the record has none)
TASK_WEIGHT = 1.0
MISSING_WEIGHT = 0.5  # a record that lacks a trait the query states

_F, _M, _T = len(NUMERIC_FEATURES), len(MODALITIES), len(TASK_TYPES)
_DIM = 2 * _F + _M + _T  # z-scores, missing flags, modality one-hot, task one-hot


@dataclass(frozen=True)
class FeatureScaler:
    """Per-feature mean and std of the transformed meta-features (log scale where in LOG_FEATURES)."""

    mean: dict[str, float]
    std: dict[str, float]

    @staticmethod
    def transformed(metas: Sequence[MetaFeatures]) -> np.ndarray:
        """(n, F) float64: log1p of counts, raw otherwise, NaN where missing."""
        raw = np.array([[m.numeric()[f] for f in NUMERIC_FEATURES] for m in metas],
                       dtype=np.float64).reshape(len(metas), _F)
        logged = [i for i, f in enumerate(NUMERIC_FEATURES) if f in LOG_FEATURES]
        raw[:, logged] = np.log1p(raw[:, logged])
        return raw

    @classmethod
    def fit(cls, metas: Sequence[MetaFeatures]) -> FeatureScaler:
        """Statistics over the distinct meta-feature vectors (so a dataset with many runs does not
        dominate); a feature nobody states gets mean 0, std 1."""
        unique = list({m.model_dump_json(): m for m in metas}.values())
        values = cls.transformed(unique)
        mean, std = {}, {}
        for i, name in enumerate(NUMERIC_FEATURES):
            col = values[:, i][~np.isnan(values[:, i])]
            mean[name] = float(col.mean()) if col.size else 0.0
            sd = float(col.std()) if col.size > 1 else 0.0
            std[name] = sd if sd > 1e-9 else 1.0
        return cls(mean, std)

    def z(self, metas: Sequence[MetaFeatures]) -> np.ndarray:
        """(n, F) z-scores, NaN where missing."""
        mean = np.array([self.mean[f] for f in NUMERIC_FEATURES])
        std = np.array([self.std[f] for f in NUMERIC_FEATURES])
        return (self.transformed(metas) - mean) / std


def _one_hot(value: str | None, choices: tuple[str, ...]) -> np.ndarray:
    out = np.zeros(len(choices))
    if value is not None:
        out[choices.index(value)] = 1.0
    return out


def feature_matrix(metas: Sequence[MetaFeatures], scaler: FeatureScaler) -> np.ndarray:
    """(n, D) float32 record vectors: [z (mean-imputed), missing flags, modality, task one-hot]."""
    z = scaler.z(metas)
    missing = np.isnan(z)
    cats = np.array([np.concatenate([_one_hot(m.modality, MODALITIES), _one_hot(m.task, TASK_TYPES)])
                     for m in metas]).reshape(len(metas), _M + _T)
    return np.hstack([np.where(missing, 0.0, z), missing, cats]).astype(np.float32)


@dataclass(frozen=True)
class NumericQuery:
    """A query's target vector `q`, per-dimension weights `w` (0 = not stated) and total weight."""

    q: np.ndarray
    w: np.ndarray
    total_weight: float

    @classmethod
    def from_meta(cls, meta: MetaFeatures, scaler: FeatureScaler) -> NumericQuery:
        z = scaler.z([meta])[0]
        q, w = np.zeros(_DIM), np.zeros(_DIM)
        total = 0.0
        for i, name in enumerate(NUMERIC_FEATURES):
            if not np.isnan(z[i]):
                q[i], w[i] = z[i], FEATURE_WEIGHTS[name]
                w[_F + i] = MISSING_WEIGHT  # target 0 = "the record knows it too"
                total += FEATURE_WEIGHTS[name]
        for value, choices, start, weight in ((meta.modality, MODALITIES, 2 * _F, MODALITY_WEIGHT),
                                              (meta.task, TASK_TYPES, 2 * _F + _M, TASK_WEIGHT)):
            if value is not None:
                q[start:start + len(choices)] = _one_hot(value, choices)
                w[start:start + len(choices)] = weight / 2  # a mismatch differs in two dimensions
                total += weight
        if total == 0:
            raise RetrievalError("similar_runs: no meta-features given; state at least one trait "
                                 "(classes, images, imbalance, image size, modality, task)")
        return cls(q, w, total)

    def faiss_vector(self) -> np.ndarray:
        """The (1, 2D) inner-product query against records stored as [x, x²]."""
        return np.concatenate([2 * self.w * self.q, -self.w])[None, :].astype(np.float32)

    def squared_distance_from_ip(self, ip: np.ndarray) -> np.ndarray:
        return float(np.sum(self.w * self.q**2)) - ip.astype(np.float64)

    def squared_distance(self, x: np.ndarray) -> np.ndarray:
        """Exact weighted squared distance to record vectors (n, D), float64."""
        return ((x.astype(np.float64) - self.q) ** 2 * self.w).sum(axis=1)

    def score(self, squared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, distance): distance = RMS over the stated weight, score = exp(-distance)."""
        distance = np.sqrt(np.maximum(squared, 0.0) / self.total_weight)
        return np.exp(-distance), distance
