"""The meta-learner's derived features: the optimizer steps of a run (issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.features import (
    FEATURE_COLUMNS,
    candidate_matrix,
    featurize,
    group_of,
    log10_steps,
    to_matrix,
)
from knowledge.search_space import TrainConfig

STEPS = FEATURE_COLUMNS.index("log10_steps")


def test_steps_are_epochs_times_images_over_batch() -> None:
    meta = MetaFeatures(n_instances=12_000, n_classes=8, height=28, width=28)
    configs = [TrainConfig(model="resnet18", epochs=1, batch_size=64),
               TrainConfig(model="resnet18", epochs=10, batch_size=64),
               TrainConfig(model="resnet18", epochs=10, batch_size=128)]
    steps = 10 ** candidate_matrix(meta, configs)[:, STEPS]
    np.testing.assert_allclose(steps, [187.5, 1875.0, 937.5])


def test_steps_link_small_and_large_datasets() -> None:
    # eight epochs of 546 images are fewer updates than one epoch of 12,000: what epochs alone hide
    small = log10_steps(8, 546, 64)
    large = log10_steps(1, 12_000, 64)
    assert small < large


def test_records_and_candidates_get_the_same_steps() -> None:
    frame = pd.DataFrame({"mf.n_instances": [4708, None], "cfg.epochs": [3, 3],
                          "cfg.batch_size": [32, 32], "cfg.model": ["resnet18", "resnet18"]})
    got = to_matrix(featurize(frame))[:, STEPS]
    assert math.isclose(10 ** got[0], 3 * 4708 / 32)
    assert math.isnan(got[1])  # unknown image count: missing, not a guess


def test_steps_explained_with_the_epochs() -> None:
    assert group_of("log10_steps") == group_of("epochs") == "epochs"


def test_the_epochs_factor_says_the_steps() -> None:
    from knowledge.explain import _group_value

    assert _group_value("epochs", {"epochs": 10.0, "log10_steps": math.log10(1875)}) == \
        "10 (1,875 optimizer steps)"
    assert _group_value("epochs", {"epochs": 3.0, "log10_steps": float("nan")}) == "3"
