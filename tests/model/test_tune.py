"""Optuna tuning on a small synthetic split whose signal we control (no feature store needed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.health_model import FeatureInfo
from training.data import LABEL, time_split
from training.train import ModelParams
from training.tune import SEARCH_SPACE, TRIAL_KIND, tune

FEATURES = ["usage", "tickets", "noise", "nps", "segment"]
INFO = {
    "usage": FeatureInfo("usage", "active users per seat", 1),
    "tickets": FeatureInfo("support", "open tickets", -1),
    "noise": FeatureInfo("other", "unrelated", 0),
    "nps": FeatureInfo("satisfaction", "last NPS answer, often missing", 1),
    "segment": FeatureInfo("contract", "segment", 0),
}
CATEGORICAL = ["segment"]
BASE = ModelParams(max_rounds=150, early_stopping_rounds=15, seed=7, threads=1)
TRIALS = 4


def synthetic_split(n: int = 3000, seed: int = 0):
    """Renewal decisions over two years: P(renew) rises with usage and nps, falls with tickets."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["smb", "mid_market", "enterprise"], n, p=[0.6, 0.3, 0.1])
    usage = rng.normal(0, 1, n)
    tickets = rng.poisson(2, n).astype(float)
    nps = np.where(rng.random(n) < 0.4, np.nan, rng.normal(0, 1, n))
    alpha = pd.Series(segment).map({"smb": 0.8, "mid_market": 1.5, "enterprise": 2.2}).to_numpy()
    z = alpha + 1.5 * usage - 0.5 * tickets + 0.7 * np.nan_to_num(nps)
    renewed = rng.random(n) < 1 / (1 + np.exp(-z))
    renewal = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D")
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i:07d}" for i in range(n)],
            "event_timestamp": (renewal - pd.Timedelta(days=90)).tz_localize("UTC"),
            "contract_id": [f"C{i:07d}" for i in range(n)],
            "renewal_date": renewal,
            LABEL: renewed,
            "usage": usage,
            "tickets": tickets,
            "noise": rng.normal(0, 1, n),
            "nps": nps,
            "segment": segment,
        }
    )
    return time_split(frame.sort_values("renewal_date"), 0.2, 0.2)


@pytest.fixture(scope="module")
def split():
    return synthetic_split()


def test_best_params_lie_in_the_search_space_and_keep_the_rest_of_base(split):
    seen: list[tuple[int, int, float]] = []
    best, trials = tune(split, FEATURES, INFO, CATEGORICAL, BASE, TRIALS, lambda *a: seen.append(a))

    for name, (low, high, _log) in SEARCH_SPACE.items():
        assert low <= getattr(best, name) <= high, name
    assert isinstance(best.num_leaves, int) and isinstance(best.min_data_in_leaf, int)
    for name in ("monotone", "calibration", "seed", "threads", "max_rounds"):
        assert getattr(best, name) == getattr(BASE, name), name
    assert best.early_stopping_rounds == BASE.early_stopping_rounds

    assert len(trials) == TRIALS and trials["trial"].tolist() == list(range(TRIALS))
    assert trials["run_id"].isna().all()  # no active MLflow run: nothing logged
    winner = trials.loc[trials["validation_log_loss"].idxmin()]
    assert {name: winner[name] for name in SEARCH_SPACE} == {
        name: getattr(best, name) for name in SEARCH_SPACE
    }
    # The trials learn the signal: better than predicting the training churn rate for everyone.
    y = split.validation[LABEL].to_numpy(dtype=float)
    rate = split.train[LABEL].mean()
    constant = -np.mean(y * np.log(rate) + (1 - y) * np.log(1 - rate))
    assert trials["validation_log_loss"].min() < constant - 0.05
    assert (trials["validation_roc_auc"] > 0.7).all()
    assert (trials["best_iteration"] >= 1).all()

    assert [s[:2] for s in seen] == [(i, TRIALS) for i in range(1, TRIALS + 1)]
    best_so_far = np.minimum.accumulate(trials["validation_log_loss"].to_numpy())
    np.testing.assert_allclose([s[2] for s in seen], best_so_far)


def test_same_seed_same_trials_other_seed_other_trials(split):
    searched = list(SEARCH_SPACE)
    best_a, trials_a = tune(split, FEATURES, INFO, CATEGORICAL, BASE, TRIALS)
    best_b, trials_b = tune(split, FEATURES, INFO, CATEGORICAL, BASE, TRIALS)
    assert best_a == best_b
    pd.testing.assert_frame_equal(
        trials_a[[*searched, "validation_log_loss", "best_iteration"]],
        trials_b[[*searched, "validation_log_loss", "best_iteration"]],
    )

    other = replace(BASE, seed=BASE.seed + 1)
    _, trials_c = tune(split, FEATURES, INFO, CATEGORICAL, other, TRIALS)
    assert not trials_c[searched].equals(trials_a[searched])


def test_each_trial_is_a_nested_mlflow_run_of_the_active_run(split, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/m.db"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("tune-test", artifact_location=(tmp_path / "art").as_uri())
    try:
        with mlflow.start_run(experiment_id=exp, run_name="train") as parent:
            _, trials = tune(split, FEATURES, INFO, CATEGORICAL, BASE, TRIALS)
            assert mlflow.active_run().info.run_id == parent.info.run_id  # still the parent
        runs = client.search_runs(
            [exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        )
    finally:
        mlflow.set_tracking_uri(None)

    assert len(runs) == TRIALS
    assert {r.info.run_id for r in runs} == set(trials["run_id"])
    by_id = trials.set_index("run_id")
    for run in runs:
        row = by_id.loc[run.info.run_id]
        assert run.data.tags["healthscore.kind"] == TRIAL_KIND
        assert run.info.status == "FINISHED"
        metrics = run.data.metrics
        assert metrics["validation_log_loss"] == pytest.approx(row["validation_log_loss"])
        assert metrics["validation_roc_auc"] == pytest.approx(row["validation_roc_auc"])
        assert metrics["best_iteration"] == row["best_iteration"]
        for name in SEARCH_SPACE:
            assert float(run.data.params[name]) == pytest.approx(row[name])
    # The parent itself got no trial metrics.
    assert client.get_run(parent.info.run_id).data.metrics == {}
