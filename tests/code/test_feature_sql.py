"""Feature SQL on hand-written accounts: each value checked against arithmetic done by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.engineering import build_feature_tables
from features.io import write_parquet

T = pd.Timestamp


def _write(folder: Path) -> None:
    days = pd.date_range("2026-01-01", "2026-01-10", freq="D")
    tables = {
        "accounts": pd.DataFrame(
            {
                "account_id": ["acme"],
                "account_name": ["Acme Corp"],
                "segment": ["mid_market"],
                "industry": ["software"],
                "region": ["EMEA"],
                "csm_owner": ["Maya Chen"],
                "created_at": [T("2025-01-01 09:00")],
            }
        ),
        "contracts": pd.DataFrame(
            {
                "contract_id": ["c1"],
                "account_id": ["acme"],
                "start_date": [T("2025-01-01")],
                "end_date": [T("2026-12-31")],
                "term_months": [24],
                "arr": [50_000.0],
                "seats": [20],
                "outcome": [None],
            }
        ),
        # Active users 1..10 on Jan 1..10; no logins on Jan 9 and 10.
        "usage": pd.DataFrame(
            {
                "account_id": "acme",
                "date": days,
                "active_users": range(1, 11),
                "logins": [2] * 8 + [0, 0],
                "sessions": 3,
                "key_feature_events": 4,
                "distinct_features_used": 5,
                "seats_used": 15,
            }
        ),
        "engagement": pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3", "e4"],
                "account_id": "acme",
                "occurred_at": [
                    T("2026-01-02 10:00"),
                    T("2026-01-02 11:00"),
                    T("2026-01-05 10:00"),
                    T("2026-01-06 10:00"),
                ],
                "event_type": ["email_sent", "email_opened", "email_sent", "business_review"],
            }
        ),
        "enablement": pd.DataFrame(
            {
                "event_id": ["n1"],
                "account_id": ["acme"],
                "occurred_at": [T("2026-01-03 15:00")],
                "event_type": ["training_completed"],
                "users": [4],
            }
        ),
        # Resolution hours: t0 1 h (Oct 12, just outside the 90 days of Jan 10), t1 10 h (sev 1,
        # Jan 4), t4 2 h (Jan 6), t3 48 h and t5 144 h (both Jan 7); t2 is still open.
        "tickets": pd.DataFrame(
            {
                "ticket_id": ["t0", "t1", "t2", "t3", "t4", "t5"],
                "account_id": "acme",
                "opened_at": [
                    T("2025-10-12 00:00"),
                    T("2026-01-04 08:00"),
                    T("2026-01-08 08:00"),
                    T("2026-01-05 09:00"),
                    T("2026-01-06 10:00"),
                    T("2026-01-01 09:00"),
                ],
                "first_response_at": [
                    T("2025-10-12 00:30"),
                    T("2026-01-04 09:00"),
                    pd.NaT,
                    T("2026-01-05 10:00"),
                    T("2026-01-06 11:00"),
                    T("2026-01-01 10:00"),
                ],
                "resolved_at": [
                    T("2025-10-12 01:00"),
                    T("2026-01-04 18:00"),
                    pd.NaT,
                    T("2026-01-07 09:00"),
                    T("2026-01-06 12:00"),
                    T("2026-01-07 09:00"),
                ],
                "severity": [3, 1, 3, 2, 3, 3],
                "category": ["how_to", "outage", "how_to", "bug", "how_to", "bug"],
                "escalated": [False, True, False, False, False, False],
                "csat": pd.array([None, 4, None, None, None, None], dtype="Int64"),
            }
        ),
        # NPS 6 then 9 (answered Jan 7); a CSAT survey never answered.
        "surveys": pd.DataFrame(
            {
                "survey_id": ["s1", "s2", "s3"],
                "account_id": "acme",
                "sent_at": [T("2025-06-01"), T("2026-01-05"), T("2026-01-06")],
                "responded_at": [T("2025-06-02"), T("2026-01-07 12:00"), pd.NaT],
                "survey_type": ["nps", "nps", "csat"],
                "nps": pd.array([6, 9, None], dtype="Int64"),
                "csat": pd.array([None, None, None], dtype="Int64"),
                "respondent_role": ["champion", "executive", "admin"],
            }
        ),
        # Due Jan 2, paid Jan 7: 5 days late.
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["i1"],
                "account_id": ["acme"],
                "issued_at": [T("2025-12-01")],
                "due_at": [T("2026-01-02")],
                "paid_at": [T("2026-01-07")],
                "amount": [25_000.0],
                "discount_pct": [10.0],
                "failed_payments": [1],
            }
        ),
        "plan_changes": pd.DataFrame(
            {
                "change_id": ["p1"],
                "account_id": ["acme"],
                "changed_at": [T("2026-01-09")],
                "change_type": ["price_increase"],
                "arr_before": [50_000.0],
                "arr_after": [55_000.0],
            }
        ),
    }
    # A second account, beta, with usage on Jan 1, 2 and 4 only (for the slope); one email sent
    # and two opens on Jan 3 (opens are not linked to sends); a ticket opened on 2025-11-20,
    # before beta was a customer (its first grid day is Dec 1), and resolved on Dec 3.
    beta = {
        "accounts": tables["accounts"].assign(account_id="beta", account_name="Beta Ltd"),
        "contracts": tables["contracts"].assign(
            contract_id="c2", account_id="beta", start_date=T("2025-12-01")
        ),
        "usage": pd.DataFrame(
            {
                "account_id": "beta",
                "date": [T("2026-01-01"), T("2026-01-02"), T("2026-01-04")],
                "active_users": [1, 3, 9],
                "logins": 1,
                "sessions": 1,
                "key_feature_events": 1,
                "distinct_features_used": 1,
                "seats_used": 10,
            }
        ),
        "engagement": pd.DataFrame(
            {
                "event_id": ["b1", "b2", "b3"],
                "account_id": "beta",
                "occurred_at": [
                    T("2026-01-03 09:00"),
                    T("2026-01-03 10:00"),
                    T("2026-01-03 11:00"),
                ],
                "event_type": ["email_sent", "email_opened", "email_opened"],
            }
        ),
        "tickets": tables["tickets"]
        .iloc[[0]]
        .assign(
            ticket_id="b-t1",
            account_id="beta",
            opened_at=T("2025-11-20 09:00"),
            first_response_at=T("2025-11-20 10:00"),
            resolved_at=T("2025-12-03 09:00"),
        ),
    }
    for name, df in beta.items():
        tables[name] = pd.concat([tables[name], df], ignore_index=True)
    for name, df in tables.items():
        write_parquet(df, folder / f"{name}.parquet")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> list[pd.DataFrame]:
    """Every feature view's snapshots of the hand-written accounts."""
    root = tmp_path_factory.mktemp("tiny")
    _write(root / "raw")
    written = build_feature_tables(root / "raw", root / "features")
    return [pd.read_parquet(path) for path in written.values()]


def _features(tables: list[pd.DataFrame], account: str, ts: str) -> pd.Series:
    merged: dict = {}
    for df in tables:
        merged.update(
            df[(df["account_id"] == account) & (df["event_timestamp"] == T(ts))].iloc[0].to_dict()
        )
    return pd.Series(merged)


@pytest.fixture(scope="module")
def snapshot(tables: list[pd.DataFrame]) -> dict[str, pd.Series]:
    """Every feature of `acme` on Jan 10 (event_timestamp Jan 11 00:00), Jan 6, Jan 4 and on
    2025-09-30 (before any ticket or usage)."""
    days = ("2026-01-11", "2026-01-07", "2026-01-05", "2026-01-02", "2025-10-01")
    return {day: _features(tables, "acme", day) for day in days}


def test_usage_windows(snapshot: dict[str, pd.Series]) -> None:
    s = snapshot["2026-01-11"]
    assert s["active_users_7d"] == pytest.approx(sum(range(4, 11)) / 7)
    assert s["active_users_30d"] == pytest.approx(5.5)  # only 10 days of data: missing != zero
    assert s["seat_utilisation_30d"] == pytest.approx(5.5 / 20)
    assert s["logins_30d"] == 16 and s["key_feature_events_30d"] == 40
    assert s["days_since_last_login"] == 2  # last login Jan 8
    assert s["usage_days_reported_30d"] == 10
    assert pd.isna(s["active_users_trend_30d_vs_prior_60d"])  # no prior period yet


def test_active_users_slope(snapshot: dict[str, pd.Series], tables: list[pd.DataFrame]) -> None:
    # acme: 1, 2, .., 10 users on Jan 1..10 -> one more user per day.
    assert snapshot["2026-01-11"]["active_users_slope_90d"] == pytest.approx(1.0)
    # Fewer than 2 days of data (Jan 1 only, or none yet): missing, not zero.
    assert pd.isna(snapshot["2026-01-02"]["active_users_slope_90d"])
    assert pd.isna(snapshot["2025-10-01"]["active_users_slope_90d"])
    # beta: 1, 3, 9 users on days x = 0, 1, 3 (Jan 3 has no data; it is not a zero).
    # mean x = 4/3, mean y = 13/3; Sxy = (-4/3)(-10/3) + (-1/3)(-4/3) + (5/3)(14/3) = 114/9,
    # Sxx = (16 + 1 + 25)/9 = 42/9 -> slope 114/42 = 19/7 users per day.
    beta = _features(tables, "beta", "2026-01-11")
    assert beta["active_users_slope_90d"] == pytest.approx(19 / 7, rel=1e-12)
    assert _features(tables, "beta", "2026-01-03")["active_users_slope_90d"] == pytest.approx(2.0)


def test_support_counts_and_backlog(snapshot: dict[str, pd.Series]) -> None:
    s = snapshot["2026-01-11"]
    assert (s["tickets_90d"], s["sev1_tickets_90d"], s["escalations_90d"]) == (5, 1, 1)
    assert s["open_tickets"] == 1
    assert s["ticket_csat_90d"] == pytest.approx(4.0) and s["has_tickets_90d"]


def test_median_hours_to_resolve(snapshot: dict[str, pd.Series]) -> None:
    # Jan 10: the 90 days are Oct 13 .. Jan 10, so t0 (Oct 12) is out; t3 and t5 were resolved on
    # the same day. Even count: hours 2, 10, 48, 144 -> (10 + 48) / 2 (the mean would be 51).
    assert snapshot["2026-01-11"]["median_hours_to_resolve_90d"] == pytest.approx(29.0)
    # Jan 6: t0, t1, t4 -> hours 1, 2, 10 -> 2 (odd count).
    assert snapshot["2026-01-07"]["median_hours_to_resolve_90d"] == pytest.approx(2.0)
    # Jan 4: t0 (Oct 12 is inside Oct 7 .. Jan 4) and t1 -> (1 + 10) / 2.
    assert snapshot["2026-01-05"]["median_hours_to_resolve_90d"] == pytest.approx(5.5)
    # No ticket resolved yet: missing, not zero.
    assert pd.isna(snapshot["2025-10-01"]["median_hours_to_resolve_90d"])


def test_satisfaction_knows_only_answers_given(snapshot: dict[str, pd.Series]) -> None:
    now, before = snapshot["2026-01-11"], snapshot["2026-01-05"]
    assert (now["nps_latest"], now["nps_change"], now["days_since_last_nps"]) == (9, 3, 3)
    # On Jan 4 the second answer did not exist yet.
    assert before["nps_latest"] == 6
    assert now["survey_response_rate_365d"] == pytest.approx(2 / 3)


def test_financial_engagement_adoption_contract(snapshot: dict[str, pd.Series]) -> None:
    now, before = snapshot["2026-01-11"], snapshot["2026-01-05"]
    assert now["late_invoices_180d"] == 1 and now["mean_days_late_180d"] == pytest.approx(5)
    assert before["overdue_unpaid_invoices"] == 1 and now["overdue_unpaid_invoices"] == 0
    assert before["late_invoices_180d"] == 0  # lateness is known once paid
    assert now["price_increases_365d"] == 1 and now["failed_payments_180d"] == 1
    assert now["arr"] == 50_000.0
    assert now["emails_sent_90d"] == 2 and now["email_open_rate_90d"] == pytest.approx(0.5)
    assert now["business_reviews_365d"] == 1 and now["days_since_last_business_review"] == 4
    assert now["trainings_90d"] == 1 and now["users_trained_365d"] == 4
    assert now["segment"] == "mid_market" and now["term_months"] == 24
    assert now["days_to_renewal"] == (T("2026-12-31") - T("2026-01-10")).days
    assert now["tenure_days"] == (T("2026-01-10") - T("2025-01-01")).days


def test_open_backlog_counts_tickets_opened_before_the_first_grid_day(
    tables: list[pd.DataFrame],
) -> None:
    # Opened Nov 20 (before beta's first grid day, Dec 1), resolved Dec 3: open on Dec 1 and 2,
    # then 0 - never -1 (the resolution used to be counted without its opening).
    assert _features(tables, "beta", "2025-12-02")["open_tickets"] == 1
    assert _features(tables, "beta", "2025-12-03")["open_tickets"] == 1
    assert _features(tables, "beta", "2025-12-04")["open_tickets"] == 0
    support = next(df for df in tables if "open_tickets" in df.columns)
    assert (support["open_tickets"] >= 0).all()
    # It was not opened on a grid day, so it is not among the tickets opened in 90 days.
    assert _features(tables, "beta", "2025-12-04")["tickets_90d"] == 0


def test_email_open_rate_is_a_share(tables: list[pd.DataFrame]) -> None:
    # beta: 1 email sent, 2 opens in the window -> capped at 1 (was 2.0).
    assert _features(tables, "beta", "2026-01-04")["email_open_rate_90d"] == pytest.approx(1.0)


def test_chunks_of_accounts_give_the_same_tables(
    tmp_path: Path, tables: list[pd.DataFrame]
) -> None:
    """Accounts are processed in chunks; one account per chunk changes nothing."""
    _write(tmp_path / "raw")
    written = build_feature_tables(tmp_path / "raw", tmp_path / "features", chunk_accounts=1)
    for got, expected in zip(
        (pd.read_parquet(path) for path in written.values()), tables, strict=True
    ):
        pd.testing.assert_frame_equal(got, expected)
