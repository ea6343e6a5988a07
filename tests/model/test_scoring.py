"""Batch scoring with the champion: scores, tiers, drivers, actions, history, files; Acme Corp."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import store as fstore
from features.io import read_source
from healthscore import pipeline
from serving import batch
from serving.explain import Playbook, explain
from tests.model.conftest import workspace_copy

AS_OF = date(2026, 10, 31)  # the end of the shared book


@pytest.fixture(scope="module")
def scored(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = workspace_copy(trained, tmp_path_factory.mktemp("score") / "ws")
    pipeline.promote(settings, None, force=False, reason="")
    earlier = pipeline.score(settings, AS_OF - timedelta(days=28))
    latest = pipeline.score(settings, AS_OF)
    return {"settings": settings, "earlier": earlier, "latest": latest, "model": trained}


def test_every_active_account_is_scored_once(scored: dict) -> None:
    s = scored["latest"].scores
    store = fstore.open_store(pipeline.store_config(scored["settings"]))
    snap = batch.snapshot(store, AS_OF)
    assert s["account_id"].is_unique and set(s["account_id"]) == set(snap["account_id"])
    assert s["renewal_probability"].between(0, 1).all()
    assert (s["health_score"] == np.rint(s["renewal_probability"] * 100)).all()
    assert set(s["tier"]) <= set(scored["latest"].tiers)
    assert (s["model_version"] == scored["latest"].model_version).all()
    assert (s["features_as_of"] == pd.Timestamp("2026-11-01", tz="UTC")).all()
    for col in ("account_name", "csm_owner", "arr", "segment", "actions", "drivers_negative"):
        assert col in s, col


def test_snapshot_equals_feast_point_in_time_retrieval(scored: dict) -> None:
    store = fstore.open_store(pipeline.store_config(scored["settings"]))
    snap = batch.snapshot(store, AS_OF).set_index("account_id")
    ids = snap.index[:: max(1, len(snap) // 150)]
    entity = pd.DataFrame(
        {"account_id": ids, "event_timestamp": pd.Timestamp("2026-11-01", tz="UTC")}
    )
    feast = fstore.training_set(store, entity).set_index("account_id")
    names = fstore.feature_names(store)
    got = snap.loc[ids, names].astype(object).where(snap.loc[ids, names].notna(), None)
    want = feast.loc[ids, names].astype(object).where(feast.loc[ids, names].notna(), None)
    for name in names:
        a, b = got[name].tolist(), want[name].tolist()
        assert all(
            (x is None and y is None)
            or (x is not None and y is not None and (x == y or abs(float(x) - float(y)) < 1e-9))
            for x, y in zip(a, b, strict=True)
        ), name


def test_batch_equals_the_model_on_the_same_rows(scored: dict) -> None:
    model = scored["model"]["result"].model
    s = scored["latest"].scores
    store = fstore.open_store(pipeline.store_config(scored["settings"]))
    snap = batch.snapshot(store, AS_OF)
    direct = model.predict(snap)
    np.testing.assert_allclose(s["renewal_probability"], direct["renewal_probability"])
    assert list(s["tier"]) == list(direct["tier"])
    # the domain breakdown plus the bias is the booster's log-odds of renewal
    domains = [c for c in s.columns if c.startswith("domain_")]
    raw = model.booster.predict(model.matrix(snap), raw_score=True)
    bias = model.contributions(snap)["bias"]
    np.testing.assert_allclose(s[domains].sum(axis=1) + bias, raw, rtol=1e-7, atol=1e-9)


def test_drivers_are_worded_signed_and_sorted(scored: dict) -> None:
    s = scored["latest"].scores
    model = scored["model"]["result"].model
    store = fstore.open_store(pipeline.store_config(scored["settings"]))
    snap = batch.snapshot(store, AS_OF).set_index("account_id")
    for _, r in s.head(200).iterrows():
        neg, pos = r["drivers_negative"], r["drivers_positive"]
        assert len(neg) <= 3 and len(pos) <= 3
        assert all(d["impact"] < 0 for d in neg) and all(d["impact"] > 0 for d in pos)
        assert [d["impact"] for d in neg] == sorted(d["impact"] for d in neg)
        assert all(d["domain"] != "contract" for d in neg + pos)  # context, not a driver
        assert all(": " in d["text"] for d in neg + pos)
        assert len(r["actions"]) >= 3
        for sign, d in [(-1, x) for x in neg] + [(1, x) for x in pos]:
            info = model.info[d["feature"]]
            assert info.direction != 0, d  # undirected features (ARR, emails sent) are no reason
            assert "none recorded" not in d["text"], d  # a missing value says what is missing
            value = snap.at[r["account_id"], d["feature"]]
            if not pd.isna(value) and info.healthy_median is not None:
                # never listed against the reference it is shown with
                assert (float(value) - info.healthy_median) * info.direction * sign >= 0, d
    domains = [c for c in s.columns if c.startswith("domain_")]
    assert {c.removeprefix("domain_") for c in domains} >= {"usage", "support", "financial"}
    assert (
        s["main_risk_domain"]
        .dropna()
        .isin(["usage", "adoption", "engagement", "support", "satisfaction", "financial"])
        .all()
    )
    assert s["main_risk_domain"].notna().mean() > 0.5


def test_rows_carry_the_renewal_context(scored: dict) -> None:
    """A CSM reads the renewal beside the score: the renewal date is the end date of the contract
    running on the as-of day (raw contracts), days to renewal and term agree with it."""
    s = scored["latest"].scores.set_index("account_id")
    for col in ("segment", "arr", "seats", "term_months", "days_to_renewal", "renewal_date"):
        assert s[col].notna().all(), col
    contracts = read_source(scored["settings"].data_dir, "contracts")
    start, end = pd.to_datetime(contracts["start_date"]), pd.to_datetime(contracts["end_date"])
    running = contracts[(start <= pd.Timestamp(AS_OF)) & (end >= pd.Timestamp(AS_OF))]
    running = running.drop_duplicates("account_id", keep="last").set_index("account_id")
    ids = s.index.intersection(running.index)
    assert len(ids) > 0.9 * len(s)
    assert (
        pd.to_datetime(s.loc[ids, "renewal_date"]) == pd.to_datetime(running.loc[ids, "end_date"])
    ).all()
    days = (pd.to_datetime(s["renewal_date"]) - pd.Timestamp(AS_OF)).dt.days
    assert (days == s["days_to_renewal"]).all()
    assert (s.loc[ids, "term_months"] == running.loc[ids, "term_months"]).all()
    history = pd.read_parquet(scored["settings"].scores_dir / "history" / f"as_of={AS_OF}")
    assert "renewal_date" not in history  # the history keeps its columns


def test_history_trend_and_declines(scored: dict) -> None:
    settings = scored["settings"]
    history = settings.scores_dir / "history"
    assert sorted(p.name for p in history.iterdir()) == [
        f"as_of={AS_OF - timedelta(days=28)}",
        f"as_of={AS_OF}",
    ]
    first, latest = scored["earlier"].scores, scored["latest"].scores
    assert first["score_change"].isna().all() and (first["declining_runs"] == 0).all()
    before = latest["account_id"].map(first.set_index("account_id")["health_score"])
    expected = latest["health_score"] - before
    pd.testing.assert_series_equal(
        latest["score_change"].astype("float"), expected.astype("float"), check_names=False
    )
    assert (latest["declining_runs"] == (latest["score_change"].fillna(0) < 0)).all()
    # a rerun of the same day replaces its partition: declines are not counted twice
    again = pipeline.score(settings, AS_OF).scores
    assert (again["declining_runs"] == latest["declining_runs"]).all()


def test_csv_output_and_atomic_replace(scored: dict, tmp_path: Path, monkeypatch) -> None:
    settings = scored["settings"]
    out = tmp_path / "scores.csv"
    run = pipeline.score(settings, AS_OF, output=out, fmt="csv")
    back = pd.read_csv(out)
    assert len(back) == len(run.scores)
    assert isinstance(json.loads(back.loc[0, "actions"]), list)
    before = out.read_bytes()

    def crash(*args, **kwargs):
        Path(args[1]).write_text("half a file")
        raise KeyboardInterrupt  # as if killed while writing

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        pipeline.score(settings, AS_OF, output=out, fmt="csv")
    assert out.read_bytes() == before  # the previous output is whole
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no temporary left behind


def test_acme_corp_is_healthy_for_the_right_reasons(scored: dict) -> None:
    """The acceptance scenario of the product brief."""
    model = scored["model"]["result"].model
    base = {f: i.healthy_median for f, i in model.info.items()}
    acme = {
        **base,
        "segment": "mid_market",
        "term_months": 12,
        "days_to_renewal": 120,
        "tenure_days": 900,
        "seats": 40,
        "arr": 48_000,
        # logs in daily and uses the key features
        "active_users_7d": 36,
        "active_users_30d": 35,
        "active_users_90d": 34,
        "seat_utilisation_30d": 0.88,
        "logins_30d": 30 * 36,
        "days_since_last_login": 0,
        "usage_days_reported_30d": 30,
        "key_feature_events_30d": 35 * 30 * 4,
        "key_events_per_active_user_30d": 4 * 30,
        # a few tickets, resolved quickly
        "tickets_90d": 3,
        "sev1_tickets_90d": 0,
        "escalations_90d": 0,
        "open_tickets": 0,
        "median_hours_to_resolve_90d": 2.0,
        "ticket_csat_90d": 4.8,
        "has_tickets_90d": True,
        # NPS 8 (neutral)
        "nps_latest": 8,
        "days_since_last_nps": 30,
        "survey_response_rate_365d": 0.8,
        # an engaged customer: reads the emails, meets the CSM, has business reviews
        "emails_sent_90d": 12,
        "email_open_rate_90d": 0.6,
        "email_clicks_90d": 8,
        "meetings_90d": 3,
        "webinars_90d": 2,
        "business_reviews_365d": 2,
        "exec_sponsor_contacts_180d": 2,
        "champion_changes_365d": 0,
        "nps_change": 0,
        "has_nps_response": True,
        # renewed and considering an upgrade; pays on time
        "arr_change_365d": 0.15,  # a relative change: +15% (renewed with an expansion)
        "late_invoices_180d": 0,
        "mean_days_late_180d": 0,
        "failed_payments_180d": 0,
        "overdue_unpaid_invoices": 0,
        "downgrades_365d": 0,
        # adopting new features fast, but asked for more training
        "distinct_features_trend_30d_vs_prior_60d": 0.35,
        "trainings_90d": 0,
        "certified_users_365d": 0,
        "users_trained_365d": 0,
    }
    frame = pd.DataFrame([{"account_id": "ACME", **acme}])
    pred = model.predict(frame).iloc[0]
    assert pred["tier"] == model.tiers.names[0], pred.to_dict()
    why = explain(model, frame, model.contributions(frame), top=len(model.features)).iloc[0]
    for domain in ("usage", "support", "financial"):  # each pulls the score up...
        assert why[f"domain_{domain}"] > 0, (domain, why.filter(like="domain_").to_dict())
    positive_domains = {d["domain"] for d in why["drivers_positive"]}
    assert {"usage", "support", "financial"} <= positive_domains  # ...with drivers in words
    assert why["drivers_positive"][0]["domain"] == "usage"  # daily use is the strongest
    playbook = pipeline.playbook(scored["settings"], model.tiers.names)
    actions = playbook.actions(pred["tier"], why["risk_domains"])
    assert any("xpansion" in a for a in actions), actions
    assert any("training" in a.lower() for a in actions), (
        why["main_risk_domain"],
        [(d["feature"], d["impact"]) for d in why["drivers_negative"]],
    )


def test_default_playbooks_follow_the_tiers() -> None:
    three = Playbook.default(["healthy", "at risk", "unhealthy"])
    assert "Expansion" in three.tiers["healthy"][0]
    assert "champion from the buying process" in " ".join(three.tiers["unhealthy"])
    assert three.actions("unhealthy", ["support"])[0].startswith("Escalation review")
    assert three.actions("healthy", ["adoption"])[-1].startswith("Offer a training")
    both = three.actions("at risk", ["financial", "usage"])
    assert both[0].startswith("Billing") and both[1].startswith("Find which teams")
    assert three.actions("at risk", None) == list(three.tiers["at risk"])
    two = Playbook.default(["ok", "not ok"])
    assert "Expansion" in two.tiers["ok"][0] and "Dig into" in two.tiers["not ok"][0]
