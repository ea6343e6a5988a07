"""Training end to end on a small book: Feast training set -> LightGBM + baselines -> MLflow.

The workspace is built and trained once (`trained` in conftest.py); the tests read it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.health_model import model_matrix
from features.health_model_mlflow import load_health_model, signature_frame
from healthscore import pipeline
from healthscore.settings import load_settings
from tests.conftest import require_service
from tests.model.conftest import workspace_copy
from training import tracking as trk
from training.data import LABEL
from training.train import fit_calibrator, fit_logistic, sample_rows
from training.train import train as fit


def test_split_is_by_time_and_disjoint(trained: dict) -> None:
    split = trained["split"]
    assert split.train["renewal_date"].max() < split.validation["renewal_date"].min()
    assert split.validation["renewal_date"].max() < split.test["renewal_date"].min()
    ids = [set(p["contract_id"]) for p in (split.train, split.validation, split.test)]
    assert not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])
    # prediction time is lead_days before the renewal date, and features exist for every row
    lead = (split.test["renewal_date"] - split.test["event_timestamp"]).dt.days
    assert (lead == trained["settings"].features.lead_days).all()


def test_model_beats_the_scorecard_and_is_calibrated(trained: dict) -> None:
    m = trained["run"].metrics
    assert m["lightgbm"]["roc_auc"] >= m["scorecard"]["roc_auc"] + 0.05
    assert m["lightgbm"]["roc_auc"] > 0.75
    assert m["lightgbm"]["ece"] <= 0.05  # 0.03 is the bar at 10k accounts; this book is small
    # riskier tiers churn more
    rates = [s["churn_rate"] for s in trained["run"].tiers.values() if s["n"] >= 20]
    assert rates == sorted(rates)


def test_same_seed_same_model(trained: dict) -> None:
    r = trained["result"]
    model = r.model
    again = fit(
        trained["split"],
        model.features,
        {f: i for f, i in model.info.items()},
        list(model.categorical),
        pipeline.model_params(trained["settings"]),
        pipeline.tier_spec(trained["settings"]),
        trained["settings"].training.scorecard_weights,
    )
    for name, p in r.test_predictions.items():
        np.testing.assert_array_equal(p, again.test_predictions[name], err_msg=name)


def test_sample_cap_fits_baselines_and_calibration_cv_on_a_sample(trained: dict) -> None:
    """Above `sample_cap` rows: LightGBM still sees every row, the logistic regression and the
    scorecard a seeded sample of the training rows, the calibration CV a sample of the validation
    rows (the chosen calibrator is fitted on all of them). A tiny cap takes the path fast."""
    split, r = trained["split"], trained["result"]
    model, params = r.model, pipeline.model_params(trained["settings"])
    cap = 400
    assert len(split.train) > cap and len(split.validation) > cap
    capped = fit(
        split,
        model.features,
        dict(model.info),
        list(model.categorical),
        params,
        pipeline.tier_spec(trained["settings"]),
        trained["settings"].training.scorecard_weights,
        sample_cap=cap,
    )
    # the booster is the uncapped one
    assert capped.model.booster.model_to_string() == model.booster.model_to_string()
    # the logistic regression is the one fitted on the seeded sample, not on all rows
    rows = sample_rows(len(split.train), cap, params.seed)
    assert rows is not None and len(rows) == cap and (np.diff(rows) > 0).all()
    cats = dict(model.categorical)
    X = model_matrix(split.train, model.features, cats)
    y = split.train[LABEL].to_numpy(dtype=float)
    sampled = fit_logistic(X.iloc[rows], y[rows], params.seed)
    X_test = model_matrix(split.test, model.features, cats)
    X_test = X_test.astype({c: "object" for c in cats}).fillna({c: "missing" for c in cats})
    np.testing.assert_allclose(
        capped.test_predictions["logistic_regression"], sampled.predict_proba(X_test)[:, 1]
    )
    assert not np.allclose(
        capped.test_predictions["logistic_regression"], r.test_predictions["logistic_regression"]
    )
    assert not np.allclose(capped.test_predictions["scorecard"], r.test_predictions["scorecard"])
    # calibration: the CV ran (on the sample); the pick is fitted on every validation row
    assert set(capped.calibration_cv) == {"isotonic", "platt", "none"}
    assert capped.calibration_cv != r.calibration_cv
    raw = model.booster.predict(model_matrix(split.validation, model.features, cats))
    full = fit_calibrator(
        raw, split.validation[LABEL].to_numpy(dtype=float), capped.model.calibrator.method
    )
    assert capped.model.calibrator == full
    # below the cap nothing is sampled
    assert sample_rows(cap, cap, params.seed) is None


def test_mlflow_run_has_metrics_lineage_plots_and_baselines(trained: dict) -> None:
    t = pipeline.tracking(trained["settings"])
    c = trk.client(t)
    run = c.get_run(trained["run"].run_id)
    for key in ("roc_auc", "pr_auc_churn", "log_loss", "brier", "ece", "top_decile_lift"):
        assert key in run.data.metrics, key
    assert run.data.metrics["roc_auc"] == pytest.approx(
        trained["run"].metrics["lightgbm"]["roc_auc"]
    )
    params = run.data.params
    assert params["feature_service"] == "account_health_v1"
    assert params["lead_days"] == "90" and params["seed"] == "7"
    assert len(params["training_data_hash"]) == 16 and ".." in params["label_window"]
    plots = {Path(a.path).name for a in c.list_artifacts(run.info.run_id, "plots")}
    assert {
        "roc.png",
        "calibration.png",
        "gains.png",
        "feature_importance.png",
        "shap_summary.png",
        "score_distribution.png",
    } <= plots
    children = c.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    baselines = {r.info.run_name: r.data.metrics for r in children}
    assert set(baselines) == {"scorecard", "logistic_regression"}
    assert baselines["scorecard"]["roc_auc"] == pytest.approx(
        trained["run"].metrics["scorecard"]["roc_auc"]
    )
    holdout = trk.holdout(t, run.info.run_id)
    assert len(holdout) == len(trained["split"].test) and LABEL in holdout


def test_registered_challenger_is_the_whole_model_without_pickles(trained: dict) -> None:
    settings, split = trained["settings"], trained["split"]
    name = settings.training.registered_model
    c = trk.client(pipeline.tracking(settings))
    mv = c.get_model_version_by_alias(name, "challenger")
    assert str(mv.version) == trained["run"].version
    loaded = load_health_model(f"models:/{name}@challenger")
    np.testing.assert_allclose(
        loaded.probability(split.test), trained["result"].test_predictions["lightgbm"]
    )
    assert loaded.features == trained["result"].model.features
    assert loaded.tiers == trained["result"].model.tiers
    files = [
        Path(p).name
        for p in Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}")).rglob(
            "*"
        )
    ]
    assert "booster.txt" in files and "health_model.json" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))], files
    # the generic pyfunc interface answers too
    rows = signature_frame(loaded, split.test.head(3))  # the signature's types: numbers as double
    out = mlflow.pyfunc.load_model(f"models:/{name}@challenger").predict(rows)
    assert list(out.columns) == ["renewal_probability", "health_score", "tier"]


@pytest.mark.parametrize(
    ("feature", "steps"),
    [("sev1_tickets_90d", [1, 3, 10]), ("mean_days_late_180d", [5, 30, 90])],
)
def test_more_risk_never_raises_the_score(trained: dict, feature: str, steps: list[int]) -> None:
    model = trained["result"].model
    rows = trained["split"].test.head(300).copy()
    # All else equal: from a value to a higher one. (Missing, e.g. no invoice paid yet, is not
    # "0 days late": LightGBM routes it down its own branch, outside the monotone constraint.)
    rows[feature] = rows[feature].fillna(0)
    base = model.probability(rows)
    for step in steps:
        worse = rows.copy()
        worse[feature] = worse[feature] + step
        assert (model.probability(worse) <= base + 1e-12).all(), (feature, step)
    # and the direction is learned, not only allowed: somewhere it lowers the score
    worse = rows.copy()
    worse[feature] = worse[feature] + steps[-1]
    assert (model.probability(worse) < base - 1e-6).any()


def test_account_id_does_not_change_the_score(trained: dict) -> None:
    model = trained["result"].model
    rows = trained["split"].test.head(50).copy()
    renamed = rows.assign(account_id=[f"X{i}" for i in range(len(rows))])
    np.testing.assert_array_equal(model.probability(rows), model.probability(renamed))


def test_promote_compare_and_roll_back(
    trained: dict, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # on a copy: the shared workspace keeps "version 1 @challenger, no champion" for other files
    settings = workspace_copy(trained, tmp_path / "ws")
    first = trained["run"].version
    p = pipeline.promote(settings, None, force=False, reason="")
    assert p.promoted and p.version == first and p.reason == "first champion"
    # a deliberately weak challenger: stumps, few rounds
    capfd.readouterr()
    run2, _, _ = pipeline.train(settings, run_name="stumps", num_leaves=2, max_rounds=3)
    err = capfd.readouterr().err  # MLflow's registration prints are silenced
    assert "Created version" not in err and "Registered model" not in err, err
    table = pipeline.compare(settings, last=2, n_boot=200)
    assert list(table["version"]) == [run2.version, first]
    assert table.loc[0, "aliases"] == "challenger" and table.loc[1, "aliases"] == "champion"
    assert table.loc[0, "auc_delta_low"] <= table.loc[0, "auc_delta_vs_champion"]
    assert table.loc[0, "auc_delta_vs_champion"] <= table.loc[0, "auc_delta_high"]
    refused = pipeline.promote(settings, None, force=False, reason="")
    assert not refused.promoted and "not better" in refused.reason
    c = trk.client(pipeline.tracking(settings))
    name = settings.training.registered_model
    assert str(c.get_model_version_by_alias(name, "champion").version) == first
    forced = pipeline.promote(settings, None, force=True, reason="load test of the new model")
    assert forced.promoted
    champ = c.get_model_version_by_alias(name, "champion")
    assert str(champ.version) == run2.version
    assert "load test of the new model" in champ.tags["promotion_reason"]
    back = pipeline.rollback(settings, reason="worse on live traffic")
    assert back.promoted
    assert str(c.get_model_version_by_alias(name, "champion").version) == first


@pytest.mark.postgres
def test_postgres_tracking_backend(trained: dict) -> None:
    require_service("127.0.0.1", 5432, "PostgreSQL")
    uid = uuid.uuid4().hex[:8]
    settings = load_settings(
        trained["root"] / "healthscore.yaml",
        workspace=trained["settings"].workspace,
        stores={"mlflow_tracking_uri": "postgresql://postgres@127.0.0.1:5432/test"},
        training={"experiment": f"test-{uid}", "registered_model": f"account-health-{uid}"},
    )
    t = pipeline.tracking(settings)
    assert t.tracking_uri.startswith("postgresql://")
    c = trk.client(t)
    try:
        run = trk.log_training(
            t, trained["result"], trained["split"], params={"seed": 7}, lineage={"x": 1}
        )
        assert c.get_run(run.run_id).data.metrics["roc_auc"] > 0.7
        mv = c.get_model_version_by_alias(t.registered_model, "challenger")
        assert str(mv.version) == run.version == "1"
        model = load_health_model(f"models:/{t.registered_model}@challenger")
        assert model.features == trained["result"].model.features
    finally:
        c.delete_registered_model(t.registered_model)
        exp = c.get_experiment_by_name(t.experiment)
        if exp is not None:
            c.delete_experiment(exp.experiment_id)
        mlflow.set_tracking_uri(trained["settings"].mlflow_tracking_uri)


def test_holdout_frame_is_the_test_period(trained: dict) -> None:
    t = pipeline.tracking(trained["settings"])
    holdout = trk.holdout(t, trained["run"].run_id)
    pd.testing.assert_series_equal(
        holdout["contract_id"].reset_index(drop=True),
        trained["split"].test["contract_id"].reset_index(drop=True),
    )


def test_tune_nests_trials_under_the_training_run(trained: dict, tmp_path: Path) -> None:
    settings = workspace_copy(trained, tmp_path / "ws")
    run, _, result = pipeline.train(settings, run_name="tuned", tune=2)
    c = trk.client(pipeline.tracking(settings))
    parent = c.get_run(run.run_id)
    assert parent.data.params["tuning_trials"] == "2" and "roc_auc" in parent.data.metrics
    children = c.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run.run_id}'"
    )
    kinds = sorted(r.data.tags.get("healthscore.kind", "") for r in children)
    assert kinds == ["baseline", "baseline", "tuning_trial", "tuning_trial"]
    assert (
        str(c.get_model_version_by_alias(settings.training.registered_model, "challenger").version)
        == run.version
    )
    assert result.model.metadata["tuning_trials"] == 2
