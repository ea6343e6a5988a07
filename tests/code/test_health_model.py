"""The health model artifact on tiny hand-made inputs: calibrator, tiers, matrix, files."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.health_model import (
    Calibrator,
    FeatureInfo,
    HealthModel,
    Tier,
    TierPolicy,
    model_matrix,
)

FIXED = TierPolicy(
    "fixed",
    (Tier("healthy", "green", 0.85), Tier("at risk", "yellow", 0.65), Tier("unhealthy", "red", 0)),
)


def test_calibrators() -> None:
    iso = Calibrator("isotonic", (0.2, 0.8), (0.1, 0.9))
    np.testing.assert_allclose(iso(np.array([0.0, 0.2, 0.5, 0.8, 1.0])), [0.1, 0.1, 0.5, 0.9, 0.9])
    platt = Calibrator("platt", a=1.0, b=0.0)
    np.testing.assert_allclose(platt(np.array([0.1, 0.5, 0.9])), [0.1, 0.5, 0.9])
    shifted = Calibrator("platt", a=1.0, b=np.log(3))  # odds x3
    np.testing.assert_allclose(shifted(np.array([0.5])), [0.75])
    np.testing.assert_allclose(Calibrator()(np.array([0.3])), [0.3])


def test_fixed_tiers_include_their_floor() -> None:
    p = np.array([1.0, 0.85, 0.8499, 0.65, 0.6499, 0.0])
    assert list(FIXED.assign(p)) == [
        "healthy",
        "healthy",
        "at risk",
        "at risk",
        "unhealthy",
        "unhealthy",
    ]


def test_quantile_tiers_split_the_population() -> None:
    population = np.linspace(0, 1, 10_001)
    policy = TierPolicy.from_quantiles(
        ["doing well", "take notice", "requires attention"],
        ["green", "yellow", "red"],
        [0.25, 0.5, 0.25],
        population,
    )
    shares = pd.Series(policy.assign(population)).value_counts(normalize=True)
    assert shares["doing well"] == pytest.approx(0.25, abs=0.001)
    assert shares["take notice"] == pytest.approx(0.5, abs=0.001)
    assert shares["requires attention"] == pytest.approx(0.25, abs=0.001)


@pytest.mark.parametrize(
    "tiers",
    [
        (Tier("a", "green", 0.5), Tier("b", "red", 0.7)),  # not descending
        (Tier("a", "green", 0.5), Tier("b", "red", 0.1)),  # last does not start at 0
        (),
    ],
)
def test_bad_tier_policies_are_refused(tiers: tuple) -> None:
    with pytest.raises(ValueError, match="tier"):
        TierPolicy("fixed", tiers)


def test_matrix_types_and_errors() -> None:
    frame = pd.DataFrame(
        {
            "x": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.Series([True, None, False], dtype=object),
            "segment": ["smb", None, "new-segment"],
        }
    )
    m = model_matrix(frame, ["x", "flag", "segment"], {"segment": ["enterprise", "smb"]})
    assert m["x"].dtype == "float64" and np.isnan(m["x"][1])
    assert list(m["flag"].fillna(-1)) == [1.0, -1.0, 0.0]
    assert list(m["segment"].astype(object).fillna("?")) == ["smb", "?", "?"]  # unseen: missing
    with pytest.raises(ValueError, match=r"missing feature column.*y"):
        model_matrix(frame, ["x", "y"], {})
    with pytest.raises(ValueError, match=r"'segment'.*not numeric"):
        model_matrix(frame, ["segment"], {})


@pytest.fixture
def tiny_model() -> HealthModel:
    rng = np.random.default_rng(0)
    n = 2_000
    X = pd.DataFrame(
        {
            "usage": rng.normal(size=n),
            "sev1": rng.poisson(1, size=n).astype(float),
            "segment": pd.Categorical(rng.choice(["smb", "enterprise"], n)),
        }
    )
    logit = 2 + 1.5 * X["usage"] - 0.8 * X["sev1"] + (X["segment"] == "enterprise") * 1.0
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(X, y),
        num_boost_round=30,
    )
    return HealthModel(
        booster=booster,
        features=["usage", "sev1", "segment"],
        categorical={"segment": ["enterprise", "smb"]},
        calibrator=Calibrator("platt", a=0.9, b=0.1),
        tiers=FIXED,
        info={
            "usage": FeatureInfo("usage", "daily active users", 1, 0.3),
            "sev1": FeatureInfo("support", "severity-1 tickets", -1, 0.0),
            "segment": FeatureInfo("contract", "customer segment", 0, None),
        },
        metadata={"feature_service": "account_health_v1", "nan": float("nan")},
    )


def test_predict_contributions_and_score(tiny_model: HealthModel) -> None:
    rows = pd.DataFrame(
        {"usage": [1.0, -2.0, None], "sev1": [0, 4, 1], "segment": ["smb", "enterprise", None]}
    )
    out = tiny_model.predict(rows)
    assert list(out.columns) == ["renewal_probability", "health_score", "tier"]
    assert out["renewal_probability"].between(0, 1).all()
    assert (out["health_score"] == np.rint(out["renewal_probability"] * 100)).all()
    contrib = tiny_model.contributions(rows)
    assert list(contrib.columns) == ["usage", "sev1", "segment", "bias"]
    raw = tiny_model.booster.predict(tiny_model.matrix(rows), raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-9)


def test_save_load_round_trip_without_pickles(tiny_model: HealthModel, tmp_path) -> None:
    folder = tiny_model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["booster.txt", "health_model.json"]
    spec = json.loads((folder / "health_model.json").read_text())  # strict JSON: NaN -> null
    assert spec["metadata"]["nan"] is None
    loaded = HealthModel.load(folder)
    rows = pd.DataFrame({"usage": [0.5, -1.0], "sev1": [2, 0], "segment": ["smb", "enterprise"]})
    pd.testing.assert_frame_equal(loaded.predict(rows), tiny_model.predict(rows))
    assert loaded.tiers == tiny_model.tiers and loaded.info == tiny_model.info


def test_load_refuses_an_unknown_format(tiny_model: HealthModel, tmp_path) -> None:
    folder = tiny_model.save(tmp_path / "m")
    spec = json.loads((folder / "health_model.json").read_text())
    spec["format_version"] = 99
    (folder / "health_model.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"health_model\.json: format_version 99"):
        HealthModel.load(folder)


def test_relative_changes_are_worded_as_percentages() -> None:
    from serving.explain import format_value

    assert format_value("arr_change_365d", -0.004) == "down 0%"
    assert format_value("arr_change_365d", 0.15) == "up 15%"
    assert format_value("active_users_trend_30d_vs_prior_60d", -0.38) == "down 38%"
    assert format_value("arr", 48_000.0) == "$48,000"
