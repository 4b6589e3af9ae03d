"""The meta-learner's boosters (accuracy, cost, rank): fitted in memory, or loaded lazily from an
artifact's .ubj files, with their NumPy forms (`forest.Forest`) built on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.errors import StoreError
from knowledge.metalearner.forest import Forest

_MODEL_NAMES = ("acc", "cost", "rank")


class LazyBoosters:
    """The boosters of `model.MetaLearner` (its base class): `_models` (XGBoost scikit-learn
    wrappers or None), `_forests` (their NumPy forms) and `_model_files` (where an artifact keeps
    the boosters not loaded yet). xgboost is imported only when a booster is loaded or fitted."""

    _models: dict[str, Any]
    _forests: dict[str, Forest]
    _model_files: dict[str, Path]

    def _model(self, name: str) -> Any:
        model = self._models[name]
        if model is None and name in self._model_files:
            import xgboost as xgb

            model = xgb.XGBRanker() if name == "rank" else xgb.XGBRegressor()
            try:
                model.load_model(self._model_files[name])
            except (OSError, xgb.core.XGBoostError) as exc:
                raise StoreError(f"cannot load the meta-learner's {name} model from "
                                 f"{self._model_files[name]}: {str(exc).splitlines()[0]}") from None
            self._models[name] = model
        return model

    @property
    def acc_model(self) -> Any:
        """The XGBoost quantile regressor (None when not fitted)."""
        return self._model("acc")

    @acc_model.setter
    def acc_model(self, model: Any) -> None:
        self._models["acc"], self._forests = model, {k: v for k, v in self._forests.items()
                                                     if k != "acc"}

    @property
    def cost_model(self) -> Any:
        """The XGBoost cost-residual regressor (None when too few runs were timed)."""
        return self._model("cost")

    @property
    def rank_model(self) -> Any:
        """The XGBoost pairwise ranker (None when there was no task to rank within)."""
        return self._model("rank")

    def has_model(self, name: str) -> bool:
        """Whether the learner has the `name` ('acc', 'cost', 'rank') model, without loading it."""
        return (self._models.get(name) is not None or name in self._forests
                or name in self._model_files)

    def forest(self, name: str) -> Forest | None:
        """The NumPy form of the `name` model (built from the booster on first use)."""
        if name not in self._forests:
            model = self._model(name)
            if model is None:
                return None
            self._forests[name] = Forest.from_booster(model)
        return self._forests[name]

    @property
    def forests(self) -> dict[str, Forest]:
        """Every fitted model's forest, by name (what the artifact stores)."""
        return {name: f for name in _MODEL_NAMES if (f := self.forest(name)) is not None}

    @property
    def fitted(self) -> bool:
        return self.has_model("acc")
