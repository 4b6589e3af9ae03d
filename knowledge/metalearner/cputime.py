"""The CPU time (cost) model of the meta-learner: CPU seconds per image-epoch of a config.

Target: log(seconds per image-epoch) = log(train_seconds / (n_instances x epochs_completed)) of
runs that were timed on a CPU (our own sweeps; published records carry no times, and GPU-timed
runs are left out because the device table of `budget.py` converts CPU time to other devices).
Prior (documented FLOPs proxy): seconds per image-epoch ~ c0 x params_m x (resolution / 28)^2,
divided by 3 for linear probing (a forward pass only: the backbone is frozen, and a forward is
about a third of a forward+backward step). c0 is the median residual of the timed runs, or
`DEFAULT_C0` (ResNet-18 at 28 px, end-to-end, measured on the 2-core development CPU) when
nothing is timed.
With at least `MIN_TIMED` timed runs an XGBoost model learns the residual over the prior
(`base_margin` = log prior), so it is exact where measured and falls back to the prior's scaling
elsewhere. Predictions for a model that was never timed here are flagged `time_is_estimate`.
Threads: the residual model also reads the intra-op threads a run trained with (`THREADS`), so a
run on all the cores of a machine is predicted from the runs timed that way (the fitted model gives
ResNet-18 ~1.3x from a second thread on the 2-core machine, EfficientNet-Lite0 ~1.15x, MobileNetV3-Small
nothing: docs/BENCHMARKS.md, "Training threads").

`fit_cost_model` fits it (called by `MetaLearner.fit`); `MetaLearner.predict_matrix` applies it.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.metalearner.features import CATEGORIES, FEATURE_COLUMNS, featurize, to_matrix

if TYPE_CHECKING:
    import pandas as pd

COST_PARAMS: dict[str, Any] = dict(
    n_estimators=200,
    learning_rate=0.05,
    max_depth=3,
    min_child_weight=2.0,
    subsample=0.9,
    tree_method="hist",
    max_cat_to_onehot=1,
    n_jobs=1,
)
COST_FEATURES: tuple[str, ...] = (
    "model", "family", "params_m", "pretrained", "scheme", "resolution", "batch_size",
    "augmentation", "channels",
)
# The cost model's last input: the intra-op CPU threads a run trains with (`prov.threads`). Own CPU
# runs recorded before threads were stored count as `ASSUMED_THREADS` (the portfolio trains on 1
# thread; the sweeps ran 2 workers x 1 thread on the 2-core machine: docs/META_DATASET.md). A
# prediction without a thread count is for `ASSUMED_THREADS` (the times the model was built on).
THREADS = "threads"
ASSUMED_THREADS = 1
MIN_TIMED = 10
# Anchor of the FLOPs-proxy prior when no run is timed: ResNet-18 (11.7 M parameters) at 28 px,
# end-to-end, ~6 ms per image-epoch. Measured once on the 2-core development machine (1 thread,
# timm model, batch 64, forward + backward + AdamW step, under load): resnet18 6.2 ms/img,
# mobilenetv3_small_100 4.5, efficientnet_lite0 11.6 at 28 px; at 64 px 18.1 / 6.0 / 20.4. So at
# low resolution the prior's params x resolution^2 overstates differences (fixed per-image overhead
# dominates); the residual model corrects this as soon as own runs are timed.
REFERENCE_RESOLUTION = 28
DEFAULT_C0 = math.log(6e-3 / 11.7)
LINEAR_PROBE_FACTOR = 1.0 / 3.0
# A run's train_seconds include a pass over the validation split after every epoch, and the
# meta-dataset's subsampled variants keep their source's full validation split (OrganAMNIST with
# 300 training images: 6,491 validation images), so per training image those runs looked up to 4x
# slower and the model over-predicted full-size datasets (ResNet-18 1.2-1.4x on the end-to-end
# datasets). A validation image costs about this fraction of a training image (forward only, no
# gradient): least squares of seconds per epoch on training and validation images over the own
# 1-thread end-to-end 28-px runs of ResNet-18 (0.15, 42 runs) and MobileNetV3-Small (0.16, 35);
# docs/BENCHMARKS.md, "Training threads". Predictions are per training image: a validation split
# of a tenth of the training set adds about 1.5 %.
VAL_COST = 0.15
_GPU_DEVICE = re.compile(r"nvidia|cuda|tesla|geforce|rtx|quadro|radeon|\bmps\b|apple m\d|h100|a100",
                         re.IGNORECASE)


def target_definition() -> dict[str, Any]:
    """What defines the time model's target beside the data (a learner fitted to another target
    is refitted: `artifact.incompatibility`, `model.definition_fingerprint`)."""
    return {"cost_val_cost": VAL_COST}


def log_cost_target(frame: pd.DataFrame) -> pd.Series:
    """log(seconds per image-epoch) of CPU-timed runs; NaN for untimed (or GPU-timed) rows. An
    epoch's images: the training images plus `VAL_COST` x the validation images its closing pass
    evaluated (`out.val_images`, where recorded)."""
    import pandas as pd

    def col(name: str) -> pd.Series:
        return pd.to_numeric(frame.get(name, pd.Series(np.nan, index=frame.index)), errors="coerce")

    seconds = col("out.train_seconds")
    epochs = col("out.epochs_completed").fillna(col("cfg.epochs"))
    n = col("mf.n_instances") + VAL_COST * col("out.val_images").fillna(0.0)
    per = seconds / (n * epochs)
    device = frame.get("prov.device", pd.Series(None, index=frame.index)).astype("object")
    on_gpu = device.map(lambda d: bool(_GPU_DEVICE.search(d)) if isinstance(d, str) else False)
    ok = frame["status"].eq("ok") if "status" in frame else pd.Series(True, index=frame.index)
    return np.log(per.where((per > 0) & ok & ~on_gpu.astype(bool))).astype("float64")


def thread_column(frame: pd.DataFrame) -> pd.Series:
    """The threads each run trained with (`prov.threads`; `ASSUMED_THREADS` where not recorded)."""
    import pandas as pd

    threads = pd.to_numeric(frame.get("prov.threads", pd.Series(np.nan, index=frame.index)),
                            errors="coerce")
    return threads.fillna(ASSUMED_THREADS).astype("float64")


def cost_frame(X: pd.DataFrame, threads: Any) -> pd.DataFrame:
    """The cost model's input frame from `featurize` output: `COST_FEATURES`, then the threads."""
    return X[list(COST_FEATURES)].assign(**{THREADS: np.asarray(threads, dtype="float64")})


def cost_inputs(M: np.ndarray, threads: float | np.ndarray | None, names: list[str]) -> np.ndarray:
    """The cost forest's input rows from a `to_matrix` array: `COST_FEATURES`, then (when the forest
    was fitted with it, i.e. `names` holds it) the threads (`ASSUMED_THREADS` when None)."""
    cols = M[:, [FEATURE_COLUMNS.index(c) for c in COST_FEATURES]]
    if THREADS not in names:  # an artifact fitted before the cost model read threads
        return cols
    t = np.broadcast_to(np.asarray(ASSUMED_THREADS if threads is None else threads, dtype="float64"),
                        (M.shape[0],))
    return np.column_stack([cols.astype("float64"), t])


def cost_prior_shape(features: pd.DataFrame) -> np.ndarray:
    """log(params_m x (resolution/28)^2 x scheme factor): the FLOPs proxy without its constant."""
    return cost_prior_matrix(to_matrix(features[list(FEATURE_COLUMNS)]))


def cost_prior_matrix(M: np.ndarray) -> np.ndarray:
    """`cost_prior_shape` of a `to_matrix` array (columns `FEATURE_COLUMNS`)."""
    params = M[:, FEATURE_COLUMNS.index("params_m")].astype("float64")
    res = M[:, FEATURE_COLUMNS.index("resolution")].astype("float64") / REFERENCE_RESOLUTION
    probe = M[:, FEATURE_COLUMNS.index("scheme")] == CATEGORIES["scheme"].index("linear_probing")
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.log(params) + 2.0 * np.log(res)
    shape = shape + np.where(probe, math.log(LINEAR_PROBE_FACTOR), 0.0)
    return np.nan_to_num(shape, nan=0.0, posinf=0.0, neginf=0.0)



def fit_cost_model(frame: pd.DataFrame, seed: int, params: dict[str, Any]
                   ) -> tuple[Any, float, list[str], int]:
    """Fit the cost model on the CPU-timed runs of `frame`: (the XGBoost residual regressor, or
    None with fewer than `MIN_TIMED` timed runs; the prior constant c0; the timed models; the
    number of timed runs)."""
    import pandas as pd

    target = log_cost_target(frame) if len(frame) else pd.Series(dtype="float64")
    timed = frame.loc[target.notna()] if len(frame) else frame
    n_timed = int(len(timed))
    if n_timed == 0:
        return None, DEFAULT_C0, [], 0
    X = featurize(timed)
    shape = cost_prior_shape(X)
    y = target.loc[timed.index].to_numpy()
    c0 = float(np.median(y - shape))
    timed_models = sorted(timed["cfg.model"].astype(str).unique())
    model = None
    if n_timed >= MIN_TIMED:
        import xgboost as xgb

        model = xgb.XGBRegressor(objective="reg:squarederror", enable_categorical=True,
                                 random_state=seed, **params)
        model = model.fit(cost_frame(X, thread_column(timed)), y, base_margin=shape + c0)
    return model, c0, timed_models, n_timed
