"""A fitted XGBoost tree ensemble as plain NumPy arrays: predictions and exact TreeSHAP without xgboost.

Why: importing xgboost also imports scikit-learn and SciPy (about 0.6 s of the 1 s a `metallmix
recommend` may take). The meta-learner's boosters are small (a few hundred depth-4 trees), so
walking them with vectorised NumPy is as fast as XGBoost's own predictor on a few thousand
candidate configs. `Forest.from_booster` reads a booster's JSON dump once (at fit time); the
arrays are saved in the artifact (`save` / `load`, one `.npz`), so a recommendation loads and
evaluates them with NumPy only.

Semantics follow XGBoost exactly (checked against `Booster.predict` and `pred_contribs=True` in
tests/knowledge/test_metalearner_forest.py):

- features are compared in float32; numeric split: `x < threshold` goes left; a missing value
  (NaN) follows `default_left`;
- categorical (partition) split: a category in the node's set goes right, any other goes left,
  a missing one follows `default_left`; categorical inputs are their pandas category codes;
- output of target t = base_score[t] + sum of the leaf values of the trees of target t (or
  `base_margin` + the leaf sum, when a margin is given, as XGBoost does);
- SHAP values: path-dependent TreeSHAP (Lundberg et al., 2018) with node covers (`sum_hessian`),
  what `pred_contribs=True` computes; the last column is the bias (base_score + the cover-weighted
  mean of every tree). Per leaf, the Shapley value of feature i is
  v * (o_i - z_i) * sum_k k!(d-k-1)!/d! * e_k, where o / z are the products over the path's nodes
  on feature i of "x follows the path" / "share of cover following the path", d the number of
  distinct features on the path and e_k the k-th elementary symmetric polynomial of the others'
  (o, z) pairs; computed for every leaf at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_LEAF = -1
_CHUNK = 256  # rows walked at once: keeps the (rows x trees) work arrays in the CPU cache


@dataclass
class Forest:
    """Every tree of one booster, flattened: node arrays indexed by a global node id."""

    feature_names: list[str]
    base_score: np.ndarray  # (n_targets,)
    tree_target: np.ndarray  # (n_trees,) which output each tree adds to
    roots: np.ndarray  # (n_trees,) global id of each tree's root
    left: np.ndarray  # (n_nodes,) global id of the left child; a leaf points to itself
    right: np.ndarray
    feature: np.ndarray  # (n_nodes,) split feature (0 for leaves)
    threshold: np.ndarray  # (n_nodes,) float32 split value (numeric nodes)
    default_left: np.ndarray  # (n_nodes,) bool
    categorical: np.ndarray  # (n_nodes,) bool
    cat_right: np.ndarray  # (n_nodes, n_codes) bool: category code goes right (categorical nodes)
    value: np.ndarray  # (n_nodes,) leaf value (0 for inner nodes)
    cover: np.ndarray  # (n_nodes,) sum of hessians
    is_leaf: np.ndarray  # (n_nodes,) bool
    depth: int  # the deepest leaf's depth

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_booster(cls, booster: Any) -> Forest:
        """The forest of an `xgboost.Booster` (or a scikit-learn wrapper of one)."""
        if hasattr(booster, "get_booster"):
            booster = booster.get_booster()
        return cls.from_json(json.loads(booster.save_raw("json")))

    @classmethod
    def from_json(cls, model: dict[str, Any]) -> Forest:
        learner = model["learner"]
        gbm = learner["gradient_booster"]
        if gbm.get("name") not in (None, "gbtree"):
            raise ValueError(f"only gbtree boosters are supported, got {gbm.get('name')}")
        trees = gbm["model"]["trees"]
        names = list(learner.get("feature_names") or [])
        base = _parse_base_score(learner["learner_model_param"]["base_score"])
        n_targets = max(int(learner["learner_model_param"].get("num_target", 1)), 1)
        if base.size == 1 and n_targets > 1:
            base = np.repeat(base, n_targets)
        tree_info = np.asarray(gbm["model"]["tree_info"], dtype=np.int64)
        max_code = 0
        for t in trees:
            if t.get("categories"):
                max_code = max(max_code, max(t["categories"]) + 1)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "left", "right", "feature", "threshold", "default_left", "categorical", "value", "cover",
            "is_leaf")}
        cat_rows: list[tuple[int, list[int]]] = []
        roots, offset, depth = [], 0, 0
        for t in trees:
            left = np.asarray(t["left_children"], dtype=np.int64)
            right = np.asarray(t["right_children"], dtype=np.int64)
            n = len(left)
            leaf = left == _LEAF
            ids = np.arange(n) + offset
            parts["left"].append(np.where(leaf, ids, left + offset))
            parts["right"].append(np.where(leaf, ids, right + offset))
            parts["feature"].append(np.where(leaf, 0, np.asarray(t["split_indices"], dtype=np.int64)))
            cond = np.asarray(t["split_conditions"], dtype=np.float32)
            parts["threshold"].append(np.where(leaf, np.float32(0), cond))
            parts["value"].append(np.where(leaf, cond, np.float32(0)).astype(np.float64))
            parts["default_left"].append(np.asarray(t["default_left"], dtype=bool))
            split_type = np.asarray(t.get("split_type") or [0] * n, dtype=np.int64)
            parts["categorical"].append((split_type == 1) & ~leaf)
            parts["cover"].append(np.asarray(t["sum_hessian"], dtype=np.float64))
            parts["is_leaf"].append(leaf)
            segments, sizes = t.get("categories_segments") or [], t.get("categories_sizes") or []
            for node, start, size in zip(t.get("categories_nodes") or [], segments, sizes):
                cat_rows.append((node + offset, t["categories"][start:start + size]))
            roots.append(offset)
            depth = max(depth, _depth(left, right))
            offset += n
        arrays = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
        cat_right = np.zeros((offset, max(max_code, 1)), dtype=bool)
        for node, codes in cat_rows:
            cat_right[node, codes] = True
        return cls(
            feature_names=names, base_score=base.astype(np.float64), tree_target=tree_info,
            roots=np.asarray(roots, dtype=np.int64), left=arrays["left"].astype(np.int64),
            right=arrays["right"].astype(np.int64), feature=arrays["feature"].astype(np.int64),
            threshold=arrays["threshold"].astype(np.float32),
            default_left=arrays["default_left"].astype(bool),
            categorical=arrays["categorical"].astype(bool), cat_right=cat_right,
            value=arrays["value"].astype(np.float64), cover=arrays["cover"].astype(np.float64),
            is_leaf=arrays["is_leaf"].astype(bool), depth=depth,
        )

    # -- persistence ------------------------------------------------------------------------

    _ARRAYS = ("base_score", "tree_target", "roots", "left", "right", "feature", "threshold",
               "default_left", "categorical", "cat_right", "value", "cover", "is_leaf")

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The arrays to store (`np.savez`), keys prefixed (several forests share one file)."""
        out = {f"{prefix}{k}": getattr(self, k) for k in self._ARRAYS}
        out[f"{prefix}depth"] = np.asarray(self.depth)
        out[f"{prefix}feature_names"] = np.asarray(self.feature_names, dtype=str)
        return out

    @classmethod
    def from_arrays(cls, data: Any, prefix: str = "") -> Forest:
        """The forest stored by `arrays(prefix)` in a loaded `.npz`."""
        kwargs = {k: np.asarray(data[f"{prefix}{k}"]) for k in cls._ARRAYS}
        return cls(feature_names=[str(s) for s in data[f"{prefix}feature_names"]],
                   depth=int(data[f"{prefix}depth"]), **kwargs)

    @property
    def n_targets(self) -> int:
        return int(self.base_score.size)

    # -- evaluation -------------------------------------------------------------------------

    def _go_right(self, x: np.ndarray, nodes: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Decision at `nodes` for the feature values of `rows` of x (float32)."""
        feat = self.feature[nodes]
        v = x[rows, feat] if rows is not None else x[feat]
        missing = np.isnan(v)
        right = ~(v < self.threshold[nodes])
        cat = self.categorical[nodes]
        if cat.any():
            codes = np.where(missing | (v < 0), 0, v).astype(np.int64)
            in_range = codes < self.cat_right.shape[1]
            member = self.cat_right[nodes, np.minimum(codes, self.cat_right.shape[1] - 1)] & in_range
            right = np.where(cat, member, right)
        return np.where(missing, ~self.default_left[nodes], right)

    def leaves(self, x: np.ndarray, trees: np.ndarray | None = None) -> np.ndarray:
        """(n_rows, n_trees) global id of the leaf each row reaches in each (selected) tree."""
        x = np.asarray(x, dtype=np.float32)
        roots = self.roots if trees is None else self.roots[trees]
        if x.shape[0] == 0:
            return np.zeros((0, roots.size), dtype=np.int64)
        return np.vstack([self._walk(x[s:s + _CHUNK], roots) for s in range(0, x.shape[0], _CHUNK)])

    def _walk(self, x: np.ndarray, roots: np.ndarray) -> np.ndarray:
        """`leaves` of a few rows: every (row, tree) pair descends one level per step.

        Missing values are folded into the comparison: the rows are laid out as
        [x with NaN -> -inf | x with NaN -> +inf] and a node reads the first half when its
        default is left, the second when it is right. A numeric node goes right when
        `value >= threshold`. A categorical node has threshold +inf and a bit set of the codes
        that go right, stored shifted by one (code c -> bit c + 1): it goes right when bit
        `clip(value + 1, 0, 63)` is set, which is never the case for -inf (bit 0) or +inf
        (bit 63), so missing codes follow the comparison, i.e. their default. Numeric nodes have
        no bits set. Leaves compare against NaN (never true) and are their own children, so rows
        that reached one stay there."""
        t = self._tables
        n, width = x.shape
        missing = np.isnan(x)
        both = np.empty((n, 2 * width), dtype=np.float32)
        both[:, :width] = np.where(missing, -np.inf, x)
        both[:, width:] = np.where(missing, np.inf, x)
        flat = both.ravel()
        base = (np.arange(n, dtype=np.int32) * (2 * width))[:, None]
        node = np.broadcast_to(roots.astype(np.int32), (n, roots.size)).copy()
        for _ in range(self.depth):
            value = flat.take(base + t.column.take(node))
            right = value >= t.threshold.take(node)
            if t.any_categorical:
                shift = np.clip(value + 1, 0, 63).astype(np.int64)
                right |= ((t.category_bits.take(node) >> shift) & 1).astype(bool)
            node = t.left.take(node) + right if t.consecutive else np.where(
                right, t.right.take(node), t.left.take(node))
        return node

    @property
    def _tables(self) -> _Tables:
        tables = self.__dict__.get("_tables_cache")
        if tables is None:
            tables = self.__dict__["_tables_cache"] = _Tables.build(self)
        return tables

    def predict(self, x: np.ndarray, *, target: int | None = None,
                base_margin: np.ndarray | None = None) -> np.ndarray:
        """Raw outputs: (n_rows, n_targets), or (n_rows,) for one `target` (or a 1-target forest)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} feature columns, got shape {x.shape}")
        targets = range(self.n_targets) if target is None else [target]
        out = np.empty((x.shape[0], len(targets)))
        for j, t in enumerate(targets):
            trees = np.flatnonzero(self.tree_target == t)
            leaf_sum = self.value.take(self.leaves(x, trees)).sum(axis=1)
            start = self.base_score[t] if base_margin is None else np.asarray(base_margin, float)
            out[:, j] = start + leaf_sum
        return out[:, 0] if (target is not None or self.n_targets == 1) else out

    def contributions(self, x: np.ndarray, *, target: int = 0) -> np.ndarray:
        """Exact TreeSHAP values of one row for one target: (n_features + 1,), bias last.

        Equal to XGBoost's `Booster.predict(pred_contribs=True)` (module doc) up to float
        rounding."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        paths = self._paths(target)
        n_feat = len(self.feature_names)
        phi = np.zeros(n_feat + 1)
        phi[-1] = self.base_score[target] + float(paths.value @ np.prod(paths.node_z, axis=1))
        if paths.value.size == 0:
            return phi
        # o per path position: does x take the path's direction at that node (padding: 1)
        nodes = np.where(paths.nodes >= 0, paths.nodes, 0)
        go = self._go_right(x, nodes.ravel(), None).reshape(nodes.shape)
        o_pos = np.where(paths.nodes >= 0, (go == paths.to_right).astype(np.float64), 1.0)
        n_leaves, width = paths.slot_z.shape
        o = np.ones((n_leaves, width))
        for p in range(paths.nodes.shape[1]):  # merge repeated features into their slot
            o[np.arange(n_leaves), paths.slot_of[:, p]] *= o_pos[:, p]
        z = paths.slot_z
        valid = paths.slot_feature >= 0
        o = np.where(valid, o, 0.0)  # padding slots: the factor (z + o t) = 1
        z_f = np.where(valid, z, 1.0)
        weights = paths.weights  # (n_leaves, width): k!(d-k-1)!/d! for k = 0..width-1
        for i in range(width):
            poly = np.zeros((n_leaves, width))  # coefficients of prod_{j != i} (z_j + o_j t)
            poly[:, 0] = 1.0
            for j in range(width):
                if j == i:
                    continue
                shifted = np.zeros_like(poly)
                shifted[:, 1:] = poly[:, :-1] * o[:, j:j + 1]
                poly = poly * z_f[:, j:j + 1] + shifted
            share = (poly * weights).sum(axis=1)
            contrib = paths.value * (o[:, i] - z[:, i]) * share
            keep = valid[:, i]
            np.add.at(phi, paths.slot_feature[keep, i], contrib[keep])
        return phi

    def _paths(self, target: int) -> _Paths:
        cache = self.__dict__.setdefault("_path_cache", {})
        if target not in cache:
            cache[target] = _Paths.build(self, np.flatnonzero(self.tree_target == target))
        return cache[target]


@dataclass
class _Paths:
    """Root-to-leaf paths of the trees of one target, padded to the forest's depth."""

    value: np.ndarray  # (L,) leaf values
    nodes: np.ndarray  # (L, D) inner node per path position, -1 = padding
    to_right: np.ndarray  # (L, D) bool: the path goes to the right child there
    node_z: np.ndarray  # (L, D) cover share of the path's child (1 for padding)
    slot_of: np.ndarray  # (L, D) which distinct-feature slot the position belongs to
    slot_feature: np.ndarray  # (L, D) the slot's feature, -1 = unused slot
    slot_z: np.ndarray  # (L, D) product of the slot's cover shares
    weights: np.ndarray  # (L, D) Shapley weight of coalition size k for the leaf's d

    @classmethod
    def build(cls, forest: Forest, trees: np.ndarray) -> _Paths:
        """Every leaf's path, walked up from the leaf (the order of a path does not matter to
        TreeSHAP); vectorised over all leaves. A feature repeated on a path shares one slot: the
        position of its first occurrence (slots need not be contiguous; unused ones are -1)."""
        depth = max(forest.depth, 1)
        n_nodes = forest.left.size
        inner = np.flatnonzero(~forest.is_leaf)
        parent = np.full(n_nodes, -1, dtype=np.int64)
        parent[forest.left[inner]] = inner
        parent[forest.right[inner]] = inner
        tree_of = np.repeat(np.arange(forest.roots.size), np.diff(np.append(forest.roots, n_nodes)))
        leaves = np.flatnonzero(forest.is_leaf & np.isin(tree_of, trees))
        nodes = np.full((leaves.size, depth), -1, dtype=np.int64)
        to_right = np.zeros((leaves.size, depth), dtype=bool)
        node_z = np.ones((leaves.size, depth))
        current = leaves.copy()
        for p in range(depth):
            up = np.where(current >= 0, parent[np.maximum(current, 0)], -1)
            has = up >= 0
            safe_up, safe_cur = np.maximum(up, 0), np.maximum(current, 0)
            nodes[:, p] = up
            to_right[:, p] = has & (forest.right[safe_up] == safe_cur)
            cover = forest.cover[safe_up]
            share = np.divide(forest.cover[safe_cur], cover, out=np.zeros(leaves.size),
                              where=cover > 0)
            node_z[:, p] = np.where(has, share, 1.0)
            current = up
        feature = np.where(nodes >= 0, forest.feature[np.maximum(nodes, 0)], -1)
        same = (feature[:, :, None] == feature[:, None, :]) & (feature[:, None, :] >= 0)
        slot_of = np.where(feature >= 0, np.argmax(same, axis=2), 0)  # first equal position
        first = (slot_of == np.arange(depth)) & (feature >= 0)
        slot_feature = np.where(first, feature, -1)
        slot_z = np.stack([np.where((slot_of == s) & (feature >= 0), node_z, 1.0).prod(axis=1)
                           for s in range(depth)], axis=1)
        d = first.sum(axis=1)
        table = np.zeros((depth + 1, depth))
        for dd in range(1, depth + 1):
            for k in range(dd):
                table[dd, k] = math.factorial(k) * math.factorial(dd - k - 1) / math.factorial(dd)
        return cls(value=forest.value[leaves], nodes=nodes, to_right=to_right, node_z=node_z,
                   slot_of=slot_of, slot_feature=slot_feature, slot_z=slot_z, weights=table[d])


@dataclass
class _Tables:
    """Per-node lookup tables of `Forest._walk` (derived from the forest, not stored)."""

    column: np.ndarray  # int32: column of the [NaN->-inf | NaN->+inf] row layout the node reads
    threshold: np.ndarray  # float32; +inf for categorical nodes, NaN for leaves
    left: np.ndarray
    right: np.ndarray
    category_bits: np.ndarray  # int64: codes going right, code c at bit c + 1 (0 if numeric)
    any_categorical: bool
    consecutive: bool  # every right child is its left sibling + 1 (leaves: themselves + 0)

    @classmethod
    def build(cls, forest: Forest) -> _Tables:
        if forest.left.size >= 2**31 // 2:
            raise ValueError("forest too large for 32-bit node ids")
        if forest.cat_right.shape[1] > 61:
            raise ValueError("categorical features with more than 61 categories are not supported")
        width = len(forest.feature_names)
        bits = np.zeros(forest.left.size, dtype=np.int64)
        for code in range(forest.cat_right.shape[1]):
            bits |= (forest.cat_right[:, code] & forest.categorical).astype(np.int64) << (code + 1)
        threshold = np.where(forest.categorical, np.float32(np.inf), forest.threshold)
        return cls(
            column=np.where(forest.default_left, forest.feature, forest.feature + width).astype(np.int32),
            threshold=np.where(forest.is_leaf, np.float32(np.nan), threshold).astype(np.float32),
            left=forest.left.astype(np.int32), right=forest.right.astype(np.int32),
            category_bits=bits, any_categorical=bool(forest.categorical.any()),
            consecutive=bool(np.all(forest.is_leaf | (forest.right == forest.left + 1))),
        )


def _parse_base_score(text: str) -> np.ndarray:
    text = str(text).strip()
    if text.startswith("["):
        return np.asarray(json.loads(text), dtype=np.float64)
    return np.asarray([float(text)], dtype=np.float64)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, d = stack.pop()
        if left[node] == _LEAF:
            deepest = max(deepest, d)
            continue
        stack += [(int(left[node]), d + 1), (int(right[node]), d + 1)]
    return deepest


def save_forests(path: str | Path, forests: dict[str, Forest]) -> None:
    """Write named forests into one `.npz` (uncompressed: it loads in milliseconds)."""
    arrays: dict[str, np.ndarray] = {}
    for name, forest in forests.items():
        arrays.update(forest.arrays(prefix=f"{name}/"))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_forests(path: str | Path) -> dict[str, Forest]:
    """The forests written by `save_forests`, by name."""
    with np.load(path, allow_pickle=False) as data:
        names = sorted({key.split("/", 1)[0] for key in data.files})
        return {name: Forest.from_arrays(data, prefix=f"{name}/") for name in names}
