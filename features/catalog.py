"""The feature catalog: every feature's name, type, health domain and meaning, per feature view.

The Feast definitions, generated docs and the wording of explanations all derive from this list.
Every feature is computed by `features/sql/features.sql` (one query for all views) as daily account
snapshots, written as one table per view; a test keeps the SQL output and the catalog identical.
Names follow `<what>_<window>`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

FeatureType = Literal["int", "float", "string", "bool"]
Direction = Literal[-1, 0, 1]


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType
    description: str
    # +1: higher is healthier; -1: higher is riskier; 0: no known direction. Orients the
    # scorecard baseline, the model's monotone constraints and the wording of explanations.
    direction: Direction = 0
    # The raw sources it reads besides `accounts` and `contracts` (the grid every feature is
    # computed over): a project without one of them does not get the feature
    # (`features.sources.available_views`).
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class View:
    """A feature view: one health domain, one SQL file, one snapshot table."""

    name: str
    domain: str
    description: str
    features: tuple[Feature, ...]


def _f(name: str, type_: FeatureType, description: str, direction: Direction) -> Feature:
    return Feature(name, type_, description, direction)


def _reads(sources: tuple[str, ...], *features: Feature) -> tuple[Feature, ...]:
    """The features, each marked as computed from `sources` (see `Feature.sources`)."""
    return tuple(replace(f, sources=sources) for f in features)


VIEWS: tuple[View, ...] = (
    View(
        "usage",
        "usage",
        "How much and how intensely the product is used.",
        _reads(
            ("usage",),
            _f("active_users_7d", "float", "average daily active users over the last 7 days", +1),
            _f("active_users_30d", "float", "average daily active users over the last 30 days", +1),
            _f("active_users_90d", "float", "average daily active users over the last 90 days", +1),
            _f(
                "seat_utilisation_30d",
                "float",
                "daily active users per licensed seat, last 30 days",
                +1,
            ),
            _f("logins_30d", "float", "logins over the last 30 days", +1),
            _f("key_feature_events_30d", "float", "key-feature uses over the last 30 days", +1),
            _f(
                "key_events_per_active_user_30d",
                "float",
                "key-feature uses per daily active user, last 30 days",
                +1,
            ),
            _f("days_since_last_login", "int", "days since the last day with a login", -1),
            _f(
                "active_users_trend_30d_vs_prior_60d",
                "float",
                "change in daily active users, last 30 days vs the prior 60 days",
                +1,
            ),
            _f(
                "usage_days_reported_30d", "int", "days with usage telemetry in the last 30 days", 0
            ),
            _f(
                "active_users_slope_90d",
                "float",
                "trend of daily active users: least-squares slope per day over the last 90 days",
                +1,
            ),
        ),
    ),
    View(
        "adoption",
        "adoption",
        "Breadth of product adoption and enablement.",
        (
            *_reads(
                ("usage",),
                _f(
                    "distinct_features_30d",
                    "float",
                    "distinct product features used per day, last 30 days",
                    +1,
                ),
                _f(
                    "distinct_features_trend_30d_vs_prior_60d",
                    "float",
                    "change in features used per day, last 30 days vs the prior 60 days",
                    +1,
                ),
                _f(
                    "seats_assigned_share_30d",
                    "float",
                    "share of licensed seats assigned to a user",
                    +1,
                ),
            ),
            *_reads(
                ("enablement",),
                _f("trainings_90d", "int", "trainings completed in the last 90 days", +1),
                _f("users_trained_365d", "int", "users trained in the last 365 days", +1),
                _f("certified_users_365d", "int", "users certified in the last 365 days", +1),
                _f("days_since_last_training", "int", "days since the last training", -1),
            ),
        ),
    ),
    View(
        "engagement",
        "engagement",
        "Customer-success touchpoints and the champion.",
        _reads(
            ("engagement",),
            _f("emails_sent_90d", "int", "emails sent to the customer in the last 90 days", 0),
            _f(
                "email_open_rate_90d",
                "float",
                "emails opened per email sent, last 90 days (at most 1)",
                +1,
            ),
            _f("email_clicks_90d", "int", "email clicks in the last 90 days", +1),
            _f("webinars_90d", "int", "webinars attended in the last 90 days", +1),
            _f("meetings_90d", "int", "meetings held in the last 90 days", +1),
            _f(
                "business_reviews_365d",
                "int",
                "business reviews (QBRs) held in the last 365 days",
                +1,
            ),
            _f("days_since_last_business_review", "int", "days since the last business review", -1),
            _f(
                "exec_sponsor_contacts_180d",
                "int",
                "executive-sponsor contacts in the last 180 days",
                +1,
            ),
            _f("champion_changes_365d", "int", "champion changes in the last 365 days", -1),
        ),
    ),
    View(
        "support",
        "support",
        "Support load, severity and how well it was handled.",
        _reads(
            ("tickets",),
            _f("tickets_90d", "int", "support tickets opened in the last 90 days", 0),
            _f("sev1_tickets_90d", "int", "severity-1 tickets opened in the last 90 days", -1),
            _f("escalations_90d", "int", "escalated tickets opened in the last 90 days", -1),
            _f("open_tickets", "int", "tickets open (unresolved)", -1),
            _f(
                "median_hours_to_resolve_90d",
                "float",
                "median hours to resolve the tickets resolved in the last 90 days",
                -1,
            ),
            _f("ticket_csat_90d", "float", "mean ticket satisfaction (1-5), last 90 days", +1),
            _f("has_tickets_90d", "bool", "opened at least one ticket in the last 90 days", 0),
        ),
    ),
    View(
        "satisfaction",
        "satisfaction",
        "What customers say in surveys.",
        _reads(
            ("surveys",),
            _f("nps_latest", "int", "latest NPS answer (0-10)", +1),
            _f("nps_change", "int", "latest NPS answer minus the one before", +1),
            _f("days_since_last_nps", "int", "days since the latest NPS answer", 0),
            _f("csat_180d", "float", "mean survey CSAT (1-5), last 180 days", +1),
            _f(
                "survey_response_rate_365d", "float", "share of surveys answered, last 365 days", +1
            ),
            _f("has_nps_response", "bool", "has ever answered an NPS survey", 0),
        ),
    ),
    View(
        "financial",
        "financial",
        "Revenue, payments and price.",
        (
            _f("arr", "float", "annual recurring revenue of the current contract, USD", 0),
            _f("arr_change_365d", "float", "change in ARR vs 365 days ago", +1),
            *_reads(
                ("invoices",),
                _f(
                    "mean_days_late_180d",
                    "float",
                    "mean days late of invoices paid in the last 180 days",
                    -1,
                ),
                _f("late_invoices_180d", "int", "invoices paid late in the last 180 days", -1),
                _f("overdue_unpaid_invoices", "int", "invoices past due and still unpaid", -1),
                _f("discount_pct", "float", "discount on the latest invoice, percent", 0),
                _f(
                    "failed_payments_180d",
                    "int",
                    "failed payment attempts in the last 180 days",
                    -1,
                ),
            ),
            *_reads(
                ("plan_changes",),
                _f("price_increases_365d", "int", "price increases in the last 365 days", -1),
                _f(
                    "downgrades_365d", "int", "downgrades or seat removals in the last 365 days", -1
                ),
            ),
        ),
    ),
    View(
        "contract",
        "contract",
        "The contract and the relationship.",
        (
            _f("segment", "string", "customer segment", 0),
            _f("tenure_days", "int", "days since the account became a customer", +1),
            _f("term_months", "int", "length of the current contract term, months", 0),
            _f("days_to_renewal", "int", "days until the current contract's renewal date", 0),
            _f("seats", "int", "licensed seats on the current contract", 0),
        ),
    ),
)

VIEW_BY_NAME = {v.name: v for v in VIEWS}
FEATURE_SERVICE = "account_health_v1"


_HEALTHIER = {1: "higher", -1: "lower", 0: "—"}


def feature_domains() -> dict[str, str]:
    """Feature name -> health domain."""
    return {f.name: v.domain for v in VIEWS for f in v.features}


def feature_by_name() -> dict[str, Feature]:
    """Feature name -> its catalog entry (type, description, direction)."""
    return {f.name: f for v in VIEWS for f in v.features}


def render_markdown() -> str:
    """The feature reference, generated from the catalog (`make docs`)."""
    lines = [
        "# Features",
        "",
        "<!-- Generated from features/catalog.py by `make docs`; do not edit by hand. -->",
        "",
        f"The Feast FeatureService `{FEATURE_SERVICE}` serves every feature below: it is the",
        "contract between training, batch scoring and serving. Each feature view holds one daily",
        "snapshot per account, computed by `features/sql/features.sql` from the raw sources; the",
        "snapshot of day D is stamped D+1 00:00 UTC and uses nothing recorded after D. Missing",
        "stays missing (e.g. no NPS answer yet); `has_…` flags mark where absence means something.",
        "",
    ]
    for v in VIEWS:
        lines += [
            f"## `{v.name}` — {v.domain}",
            "",
            v.description,
            "",
            "| feature | type | healthier when | meaning |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{f.name}` | {f.type} | {_HEALTHIER[f.direction]} | {f.description} |"
            for f in v.features
        ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
