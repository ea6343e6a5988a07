"""Hyperparameter search for the health model with Optuna (`healthscore train --tune N`).

Each trial fits the uncalibrated LightGBM booster exactly as `training.train` does (same matrices,
monotone constraints, early stopping on the validation period) and is scored by its log loss on the
validation period; the test period is never looked at. The TPE sampler is seeded from the base
parameters' seed, so the same data and seed give the same trials. When an MLflow run is active,
every trial is logged as a nested child run of it (tag `healthscore.kind=tuning_trial`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from features.health_model import FeatureInfo, model_matrix
from training.data import LABEL, Split
from training.train import ModelParams, _log_loss, fit_booster

KIND_TAG = "healthscore.kind"  # the same tag key training.tracking puts on every run it creates
TRIAL_KIND = "tuning_trial"

# name -> (low, high, log scale); integers where ModelParams has an int.
SEARCH_SPACE: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.01, 0.2, True),
    "num_leaves": (4, 63, False),
    "min_data_in_leaf": (10, 300, True),
    "feature_fraction": (0.5, 1.0, False),
    "bagging_fraction": (0.5, 1.0, False),
    "lambda_l2": (1e-3, 10.0, True),
}
INTEGER = {"num_leaves", "min_data_in_leaf"}
_METRICS = ("validation_log_loss", "validation_roc_auc", "best_iteration")


def _suggest(trial, name: str) -> float | int:
    low, high, log = SEARCH_SPACE[name]
    if name in INTEGER:
        return trial.suggest_int(name, int(low), int(high), log=log)
    return trial.suggest_float(name, low, high, log=log)


def tune(
    split: Split,
    features: list[str],
    info: dict[str, FeatureInfo],
    categorical: list[str],
    base: ModelParams,
    n_trials: int,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[ModelParams, pd.DataFrame]:
    """Search SEARCH_SPACE for the parameters with the lowest validation log loss.

    Returns `base` with the best trial's values (monotone, calibration, seed, threads, max_rounds
    and early stopping are kept from `base`) and one row per trial: `trial`, the searched
    parameters, `validation_log_loss`, `validation_roc_auc`, `best_iteration`, `seconds` and
    `run_id` (the nested MLflow run, or None). `progress(done, n_trials, best_log_loss)` is
    called after every trial.
    """
    import optuna
    from sklearn.metrics import roc_auc_score

    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    levels = {c: sorted(split.train[c].dropna().astype(str).unique()) for c in categorical}
    X_train = model_matrix(split.train, features, levels)
    X_valid = model_matrix(split.validation, features, levels)
    y_train = split.train[LABEL].to_numpy(dtype=float)
    y_valid = split.validation[LABEL].to_numpy(dtype=float)
    directions = [info[f].direction if f not in levels else 0 for f in features]
    parent = _active_run()

    rows: list[dict] = []

    def objective(trial) -> float:
        started = time.perf_counter()
        params = replace(base, **{name: _suggest(trial, name) for name in SEARCH_SPACE})
        booster = fit_booster(
            X_train,
            y_train,
            X_valid,
            y_valid,
            params.lightgbm(directions),
            params.max_rounds,
            params.early_stopping_rounds,
        )
        p = booster.predict(X_valid)  # at the best iteration
        row = {
            "trial": trial.number,
            **trial.params,
            "validation_log_loss": _log_loss(y_valid, p),
            "validation_roc_auc": float(roc_auc_score(y_valid, p)),
            "best_iteration": int(booster.best_iteration),
            "seconds": time.perf_counter() - started,
            "run_id": None,
        }
        if parent is not None:
            row["run_id"] = _log_trial(parent, trial.number, trial.params, row)
        rows.append(row)
        return row["validation_log_loss"]

    def report(study, trial) -> None:
        if progress is not None:
            progress(len(study.trials), n_trials, float(study.best_value))

    sampler = optuna.samplers.TPESampler(seed=base.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, callbacks=[report])

    best = replace(base, **study.best_params)
    table = pd.DataFrame(rows, columns=["trial", *SEARCH_SPACE, *_METRICS, "seconds", "run_id"])
    return best, table


def _active_run():
    import mlflow

    return mlflow.active_run()


def _log_trial(parent, number: int, params: dict, row: dict) -> str:
    """One nested child run of `parent`: the trial's parameters and metrics in one batch."""
    import mlflow
    from mlflow.entities import Metric, Param

    with mlflow.start_run(
        experiment_id=parent.info.experiment_id,
        run_name=f"trial-{number:03d}",
        nested=True,
        tags={KIND_TAG: TRIAL_KIND},
    ) as child:
        now = int(time.time() * 1000)
        mlflow.MlflowClient().log_batch(
            child.info.run_id,
            metrics=[
                Metric(k, float(row[k]), now, 0) for k in _METRICS if np.isfinite(float(row[k]))
            ],
            params=[Param(k, str(v)) for k, v in {"trial": number, **params}.items()],
        )
    return child.info.run_id
