"""Drivers and values as a CSM reads them (issue 5 review, docs/research/scoring-review.md).

Each test pins one problem found when the demo's scores were read beside the raw data: units
guessed from names, value and reference written with different precision, booleans compared with
'0', missing values worded as 'none recorded', drivers that contradict the reference they are
shown with, undirected features (ARR, emails sent) listed as reasons, and actions sharpened by a
missing value or a negligible pull. Contributions are given explicitly where a test needs a
known sign; the score_frame test runs a real LightGBM booster.
"""

from __future__ import annotations

from datetime import date

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.health_model import Calibrator, FeatureInfo, HealthModel, Tier, TierPolicy
from serving.batch import account_context, score_frame
from serving.explain import (
    Playbook,
    describe_driver,
    explain,
    format_value,
    missing_words,
    value_unit,
)

INFO = {
    "active_users_7d": FeatureInfo(
        "usage", "average daily active users over the last 7 days", 1, 2.857
    ),
    "distinct_features_30d": FeatureInfo(
        "adoption", "distinct product features used per day, last 30 days", 1, 9.0
    ),
    "nps_latest": FeatureInfo("satisfaction", "latest NPS answer (0-10)", 1, 8.0),
    "mean_days_late_180d": FeatureInfo(
        "financial", "mean days late of invoices paid in the last 180 days", -1, 0.0
    ),
    "late_invoices_180d": FeatureInfo(
        "financial", "invoices paid late in the last 180 days", -1, 0.0
    ),
    "arr": FeatureInfo(
        "financial", "annual recurring revenue of the current contract, USD", 0, 13_097.5
    ),
    "emails_sent_90d": FeatureInfo(
        "engagement", "emails sent to the customer in the last 90 days", 0, 4.0
    ),
    "days_to_renewal": FeatureInfo(
        "contract", "days until the current contract's renewal date", 0, 30.0
    ),
}
FEATURES = list(INFO)
TIERS = TierPolicy(
    "fixed",
    (Tier("healthy", "green", 0.85), Tier("at risk", "yellow", 0.65), Tier("unhealthy", "red", 0)),
)


@pytest.fixture(scope="module")
def model() -> HealthModel:
    """A real booster over catalog-named features (values in realistic ranges)."""
    rng = np.random.default_rng(3)
    n = 3_000
    X = pd.DataFrame(
        {
            "active_users_7d": rng.gamma(2, 2, n),
            "distinct_features_30d": rng.uniform(1, 18, n),
            "nps_latest": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 11, n)),
            "mean_days_late_180d": np.where(rng.random(n) < 0.4, np.nan, rng.exponential(5, n)),
            "late_invoices_180d": rng.poisson(0.5, n).astype(float),
            "arr": rng.lognormal(9.5, 1, n),
            "emails_sent_90d": rng.poisson(5, n).astype(float),
            "days_to_renewal": rng.integers(0, 365, n).astype(float),
        }
    )
    logit = (
        1.5
        + 0.3 * X["active_users_7d"]
        + 0.15 * X["distinct_features_30d"]
        - 0.5 * X["late_invoices_180d"]
        + 0.2 * X["nps_latest"].fillna(5)
        - 1.0
    )
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(X, y),
        num_boost_round=40,
    )
    return HealthModel(
        booster=booster,
        features=FEATURES,
        categorical={},
        calibrator=Calibrator("none"),
        tiers=TIERS,
        info=INFO,
        metadata={"feature_service": "account_health_v1"},
    )


def _row(**values: object) -> dict:
    base = {f: INFO[f].healthy_median for f in FEATURES}
    return {"account_id": "X", **base, **values}


# -- values and units --------------------------------------------------------------------------


def test_units_come_from_the_description() -> None:
    # a percent (0-100) keeps its decimal: a 0.2% median discount is not "0%"
    assert format_value("discount_pct", 0.2) == "0.2%"
    assert format_value("discount_pct", 12.0) == "12%"
    # a share (0-1) is a percentage
    assert format_value("seat_utilisation_30d", 0.41) == "41%"
    assert format_value("survey_response_rate_365d", 0.0) == "0%"
    # an average keeps one decimal, whether or not it happens to be whole
    assert format_value("distinct_features_30d", 13.6) == "13.6"
    assert format_value("distinct_features_30d", 9.0) == "9.0"
    assert format_value("ticket_csat_90d", 3.0) == "3.0"
    # days and hours carry their unit (singular for one); a mean of days keeps a decimal
    assert format_value("mean_days_late_180d", 36.0) == "36 days"
    assert format_value("mean_days_late_180d", 3.5) == "3.5 days"
    assert format_value("days_since_last_login", 1) == "1 day"
    assert format_value("median_hours_to_resolve_90d", 72.0918) == "72 hours"
    # a slope per day is a direction and a size, and ~0 is flat
    assert format_value("active_users_slope_90d", -0.4) == "down 0.40 a day"
    assert format_value("active_users_slope_90d", 0.0006) == "flat"
    # a difference of answers is signed; counts are whole numbers
    assert format_value("nps_change", 3) == "+3"
    assert format_value("nps_change", -2) == "-2"
    assert format_value("logins_30d", 28366.0) == "28,366"
    # booleans, and their median reference, read yes / no (not "0")
    assert format_value("has_nps_response", 0.0) == "no"
    assert format_value("has_tickets_90d", True) == "yes"


def test_a_feature_outside_the_catalog_is_worded_from_its_own_description() -> None:
    assert value_unit("handling", "median hours to first reply, last 30 days") == "hours"
    assert format_value("handling", 5.25, "median hours to first reply") == "5.2 hours"
    assert value_unit("renewal_share", "share of seats renewed") == "share"
    assert value_unit("fee", "onboarding fee, USD") == "money"
    assert value_unit("x_rate_30d") == "share"  # explicit name pattern without a description
    # a name with "rate" inside a word is not a share ("moderated" contains "rate")
    assert value_unit("moderated_posts_30d", "posts moderated in the last 30 days") == "count"


def test_missing_values_say_what_is_missing() -> None:
    assert format_value("nps_latest", None) == "no answer yet"
    assert format_value("days_since_last_training", float("nan")) == "none yet"
    assert format_value("mean_days_late_180d", None) == "nothing in the period"
    assert format_value("arr_change_365d", None) == "nothing earlier to compare with"
    assert format_value("nps_change", None) == "nothing earlier to compare with"
    assert format_value("email_open_rate_90d", None) == "nothing to measure yet"
    assert missing_words("discount_pct") == "none recorded"  # 'latest invoice' is no answer


def test_value_and_reference_are_written_alike(model: HealthModel) -> None:
    text = describe_driver(model, "distinct_features_30d", 13.6)
    assert text.endswith(": 13.6 (renewing accounts: 9.0)")
    assert describe_driver(model, "arr", 1_387_469.6).endswith(
        "$1,387,470 (renewing accounts: $13,098)"
    )


# -- which drivers are shown -------------------------------------------------------------------


def test_drivers_never_contradict_the_reference_they_are_shown_with(model: HealthModel) -> None:
    """A value healthier than the renewing accounts' is not listed as pulling the score down
    (and the next signal takes its place); undirected features are never drivers."""
    frame = pd.DataFrame([_row(active_users_7d=3.14, distinct_features_30d=4.0, arr=250_000.0)])
    contrib = pd.DataFrame(
        [
            {
                "active_users_7d": -0.30,  # 3.14 > 2.86 renewing: reads as healthy, not a risk
                "distinct_features_30d": -0.20,  # 4 < 9: a real risk
                "nps_latest": 0.0,
                "mean_days_late_180d": 0.0,
                "late_invoices_180d": 0.05,  # 0 late invoices (= reference): a plus
                "arr": -0.40,  # size: no direction, never a driver
                "emails_sent_90d": -0.25,  # CSM effort: no direction, never a driver
                "days_to_renewal": -1.0,  # context
                "bias": 1.0,
            }
        ]
    )
    why = explain(model, frame, contrib).iloc[0]
    neg = [d["feature"] for d in why["drivers_negative"]]
    pos = [d["feature"] for d in why["drivers_positive"]]
    assert neg == ["distinct_features_30d"]
    assert pos == ["late_invoices_180d"]
    # the domain breakdown still holds every contribution
    assert why["domain_usage"] == pytest.approx(-0.30)
    assert why["domain_financial"] == pytest.approx(-0.35)
    assert why["domain_engagement"] == pytest.approx(-0.25)
    assert why["domain_contract"] == pytest.approx(-1.0)
    assert why["risk_domains"] == ["adoption"]


def test_a_missing_value_is_a_driver_only_when_its_absence_means_something(
    model: HealthModel,
) -> None:
    frame = pd.DataFrame([_row(nps_latest=None, mean_days_late_180d=None)])
    contrib = pd.DataFrame(
        [{f: 0.0 for f in FEATURES} | {"nps_latest": -0.2, "mean_days_late_180d": -0.3}]
    )
    why = explain(model, frame, contrib).iloc[0]
    assert [d["text"] for d in why["drivers_negative"]] == [
        "latest NPS answer (0-10): no answer yet (renewing accounts: 8)"
    ]
    # no invoice paid in 180 days is no billing problem: not a driver, not a risk domain
    assert why["risk_domains"] == []
    assert why["main_risk_domain"] is None


def test_risk_domains_can_require_a_material_pull(model: HealthModel) -> None:
    frame = pd.DataFrame([_row(late_invoices_180d=3.0, active_users_7d=1.0)] * 2)
    contrib = pd.DataFrame(
        [
            {f: 0.0 for f in FEATURES} | {"late_invoices_180d": -0.40, "active_users_7d": -0.03},
            {f: 0.0 for f in FEATURES} | {"late_invoices_180d": -0.02, "active_users_7d": -0.03},
        ]
    )
    # by default any pull sharpens the actions (a healthy account's weakest area), worst first
    assert explain(model, frame, contrib)["risk_domains"].tolist() == [
        ["financial", "usage"],
        ["usage", "financial"],
    ]
    why = explain(model, frame, contrib, min_risk_pull=0.05)
    assert why["risk_domains"].tolist() == [["financial"], []]
    assert why["main_risk_domain"].tolist() == ["financial", None]
    # the slight pulls are still shown as drivers, strongest first
    assert [d["feature"] for d in why.loc[1, "drivers_negative"]] == [
        "active_users_7d",
        "late_invoices_180d",
    ]
    assert why.loc[1, "drivers_negative"][0]["text"] == (
        "average daily active users over the last 7 days: 1.0 (renewing accounts: 2.9)"
    )
    # batch scoring passes the threshold on (real contributions here)
    plays = Playbook.default(TIERS.names)
    assert score_frame(model, frame, plays)["risk_domains"].map(len).sum() > 0
    assert score_frame(model, frame, plays, min_risk_pull=1e9)["risk_domains"].map(len).sum() == 0


def test_the_financial_action_names_what_the_financial_signals_are() -> None:
    plays = Playbook.default(["healthy", "at risk", "unhealthy"])
    action = plays.actions("at risk", ["financial"])[0]
    for word in ("late", "failed", "price", "ARR"):
        assert word in action
    assert plays.actions("unhealthy", ["support"])[0].startswith("Escalation review")


# -- the row a CSM reads -----------------------------------------------------------------------


def test_score_rows_carry_the_account_context(model: HealthModel) -> None:
    frame = pd.DataFrame(
        [
            _row(segment="smb", seats=10, term_months=12, days_to_renewal=8.0),
            _row(segment="enterprise", seats=900, term_months=36, days_to_renewal=947.0)
            | {"account_id": "Y", "arr": 1_387_469.6},
        ]
    )
    frame["features_as_of"] = pd.Timestamp("2026-11-01", tz="UTC")
    scores = score_frame(model, frame, Playbook.default(TIERS.names))
    assert scores["renewal_date"].tolist() == [date(2026, 11, 8), date(2029, 6, 4)]
    assert scores["days_to_renewal"].tolist() == [8, 947]
    assert scores["segment"].tolist() == ["smb", "enterprise"]
    assert scores["arr"].tolist() == [13_097.5, 1_387_469.6]
    assert scores["term_months"].tolist() == [12, 36]
    for d in scores["drivers_negative"].iloc[0] + scores["drivers_positive"].iloc[0]:
        assert d["feature"] not in ("arr", "emails_sent_90d", "days_to_renewal")
    # posted features without a snapshot time: no renewal date, nothing invented
    posted = score_frame(model, frame.drop(columns="features_as_of"), Playbook.default(TIERS.names))
    assert "renewal_date" not in posted and posted["days_to_renewal"].tolist() == [8, 947]


def test_account_context_takes_only_what_the_frame_holds() -> None:
    got = account_context(pd.DataFrame({"account_id": ["A"], "arr": [1.0]}))
    assert list(got.columns) == ["arr"]
