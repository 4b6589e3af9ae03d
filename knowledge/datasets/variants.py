"""ZAP-style dataset variants: a query suffix that subsamples or unbalances the training split.

`digits?n=200&imbalance=0.1&seed=1` keeps, in the training split only (val/test are untouched):

- `imbalance=F`: a fraction F (0 < F <= 1) of the images of the chosen classes, at least one image
  each; `classes=1,3` chooses them, by default every second class (1, 3, 5, ...);
- then `n=N` or `frac=F`: a stratified subsample of N images (or the fraction F of them), which keeps
  the class proportions and at least one image of every class;
- `seed` (default 0) seeds both steps, so the same query always gives the same images.

`Variant.canonical()` sorts the keys and writes numbers one way, so equal variants get equal ids.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import parse_qsl

import numpy as np

from knowledge.datasets.base import ImageDataset, Split
from knowledge.errors import DatasetError

ALLOWED_KEYS: tuple[str, ...] = ("n", "frac", "imbalance", "classes", "seed")


def _int(key: str, value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"variant {key}={value!r} is not a whole number: {where}") from None


def _float(key: str, value: str, where: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise DatasetError(f"variant {key}={value!r} is not a number: {where}") from None
    if not np.isfinite(out):
        raise DatasetError(f"variant {key}={value!r} is not a finite number: {where}")
    return out


@dataclass(frozen=True)
class Variant:
    """A validated variant query (see the module docstring)."""

    n: int | None = None
    frac: float | None = None
    imbalance: float | None = None
    classes: tuple[int, ...] | None = None
    seed: int = 0

    @classmethod
    def parse(cls, query: str, where: str = "") -> Variant | None:
        """Parse `n=500&imbalance=0.2&seed=0`; None for an empty query. `where` names the dataset
        in errors."""
        if not query:
            return None
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise DatasetError(f"malformed variant query {query!r} (expected key=value&...): "
                               f"{where}") from None
        seen: dict[str, str] = {}
        for key, value in pairs:
            key = key.strip().lower()
            if key not in ALLOWED_KEYS:
                raise DatasetError(f"unknown variant key {key!r}; allowed: {', '.join(ALLOWED_KEYS)}: "
                                   f"{where}")
            if key in seen:
                raise DatasetError(f"variant key {key!r} given twice: {where}")
            seen[key] = value.strip()
        fields: dict[str, object] = {}
        if "n" in seen:
            fields["n"] = _int("n", seen["n"], where)
        if "frac" in seen:
            fields["frac"] = _float("frac", seen["frac"], where)
        if "imbalance" in seen:
            fields["imbalance"] = _float("imbalance", seen["imbalance"], where)
        if "seed" in seen:
            fields["seed"] = _int("seed", seen["seed"], where)
        if "classes" in seen:
            parts = [p for p in seen["classes"].split(",") if p.strip()]
            if not parts:
                raise DatasetError(f"variant classes= is empty (expected e.g. classes=1,3): {where}")
            fields["classes"] = tuple(sorted({_int("classes", p.strip(), where) for p in parts}))
        variant = cls(**fields)  # type: ignore[arg-type]
        variant.validate(where)
        return variant

    def validate(self, where: str = "") -> None:
        """Check the values on their own (`apply` checks them against the dataset)."""
        if self.n is not None and self.frac is not None:
            raise DatasetError(f"variant takes n or frac, not both: {where}")
        if self.n is not None and self.n < 2:
            raise DatasetError(f"variant n={self.n} must be at least 2 (one image per class): {where}")
        if self.frac is not None and not 0 < self.frac <= 1:
            raise DatasetError(f"variant frac={self.frac:g} must be in (0, 1]: {where}")
        if self.imbalance is not None and not 0 < self.imbalance <= 1:
            raise DatasetError(f"variant imbalance={self.imbalance:g} must be in (0, 1]: {where}")
        if self.classes is not None and self.imbalance is None:
            raise DatasetError(f"variant classes= only applies with imbalance=: {where}")
        if self.classes is not None and min(self.classes) < 0:
            raise DatasetError(f"variant classes must be class ids >= 0: {where}")
        if self.seed < 0:
            raise DatasetError(f"variant seed={self.seed} must be >= 0: {where}")

    def canonical(self) -> str:
        """The normalised query: keys sorted, numbers written one way, seed always present."""
        parts = {
            "classes": ",".join(map(str, self.classes)) if self.classes is not None else None,
            "frac": repr(float(self.frac)) if self.frac is not None else None,
            "imbalance": repr(float(self.imbalance)) if self.imbalance is not None else None,
            "n": str(self.n) if self.n is not None else None,
            "seed": str(self.seed),
        }
        return "&".join(f"{k}={v}" for k, v in sorted(parts.items()) if v is not None)

    def params(self) -> dict[str, object]:
        """The given values as a plain dict (for `ImageDataset.extra`)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items() if v is not None}

    # ------------------------------------------------------------------ application
    def train_indices(self, labels: np.ndarray, where: str = "") -> np.ndarray:
        """Sorted indices of the training images this variant keeps."""
        rng = np.random.default_rng(self.seed)
        idx = np.arange(len(labels))
        if self.imbalance is not None:
            idx = self._unbalance(labels, rng, where)
        if self.n is not None or self.frac is not None:
            sub = labels[idx]
            k = len(np.unique(sub)) if sub.ndim == 1 else 1
            frac = self.frac if self.frac is not None else 1.0
            target = self.n if self.n is not None else int(round(frac * len(idx)))
            if target > len(idx):
                raise DatasetError(f"variant n={target} exceeds the {len(idx)} training images "
                                   f"available: {where}")
            if target < max(k, 2):
                what = f"n={self.n}" if self.n is not None else f"frac={self.frac:g} ({target} images)"
                raise DatasetError(f"variant {what} is too small: need at least {max(k, 2)} images "
                                   f"(one per class): {where}")
            picked = (stratified_indices(sub, target, rng) if sub.ndim == 1
                      else np.sort(rng.choice(len(idx), size=target, replace=False)))
            idx = idx[picked]
        return idx

    def _unbalance(self, labels: np.ndarray, rng: np.random.Generator, where: str) -> np.ndarray:
        if labels.ndim != 1:
            raise DatasetError(f"variant imbalance= is not supported for multi-label datasets: {where}")
        present = np.unique(labels)
        chosen = np.asarray(self.classes if self.classes is not None else present[1::2])
        unknown = sorted(set(chosen.tolist()) - set(present.tolist()))
        if unknown:
            raise DatasetError(f"variant classes {unknown} are not in the training split (classes: "
                               f"{', '.join(map(str, present.tolist()))}): {where}")
        if set(chosen.tolist()) == set(present.tolist()) and self.imbalance != 1:
            raise DatasetError(f"variant classes= must leave at least one class at full size: {where}")
        keep: list[np.ndarray] = []
        for c in present:
            members = np.flatnonzero(labels == c)
            if c in chosen:
                size = max(1, int(round(self.imbalance * len(members))))  # type: ignore[operator]
                members = rng.choice(members, size=size, replace=False)
            keep.append(members)
        return np.sort(np.concatenate(keep))

    def apply(self, ds: ImageDataset) -> ImageDataset:
        """A copy of `ds` with the variant's training split, `variant`, `id` and `extra` set."""
        where = ds.id
        idx = self.train_indices(ds.train.labels, where)
        imgs = ds.train.images
        images = imgs[idx] if isinstance(imgs, np.ndarray) else [imgs[i] for i in idx]
        canonical = self.canonical()
        return dataclasses.replace(
            ds,
            id=f"{ds.id}?{canonical}",
            train=Split(images=images, labels=ds.train.labels[idx]),
            variant=canonical,
            extra={**ds.extra, "variant_params": self.params(), "n_train_full": len(ds.train)},
        )


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a stratified sample of `n` of `labels` (1-D): each class gets its share
    rounded by largest remainder, but at least one image (so n must be >= the number of classes)."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if n < len(classes) or n > len(labels):
        raise ValueError(f"cannot draw {n} of {len(labels)} labels with {len(classes)} classes")
    quota = n * counts / counts.sum()
    alloc = np.minimum(np.maximum(1, np.floor(quota)).astype(np.int64), counts)
    while alloc.sum() > n:  # the one-per-class floor overshot: take from the most over-served
        alloc[np.argmax(np.where(alloc > 1, alloc - quota, -np.inf))] -= 1
    while alloc.sum() < n:  # hand out the remainder by largest remaining quota
        alloc[np.argmax(np.where(alloc < counts, quota - alloc, -np.inf))] += 1
    picked = [rng.choice(np.flatnonzero(inverse == i), size=int(a), replace=False)
              for i, a in enumerate(alloc)]
    return np.sort(np.concatenate(picked))
