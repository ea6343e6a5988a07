"""The raw-data contract: the sources a customer-success team has, column by column.

This module is the single definition of the public input interface. Validation (pandera schemas),
the generated documentation (`docs/data-contract.md`), the synthetic generator and, later, the
column mappings for a team's own exports are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LogicalType = Literal["string", "int", "float", "bool", "timestamp", "date"]

SEGMENTS = ("smb", "mid_market", "enterprise")
OUTCOMES = ("renewed", "churned", "expanded", "contracted")
ENGAGEMENT_EVENTS = (
    "email_sent",
    "email_opened",
    "email_clicked",
    "webinar_attended",
    "meeting",
    "business_review",
    "exec_sponsor_contact",
    "champion_change",
)
ENABLEMENT_EVENTS = ("training_completed", "user_certified")
TICKET_CATEGORIES = ("bug", "how_to", "outage", "billing", "integration", "feature_request")
SURVEY_TYPES = ("nps", "csat")
RESPONDENT_ROLES = ("executive", "champion", "admin", "end_user")
PLAN_CHANGES = ("upgrade", "downgrade", "seats_added", "seats_removed", "price_increase")


def check_per_segment(name: str, values: dict[str, float], shares: bool = False) -> None:
    """Raise ValueError naming `name` unless it has one value per segment (shares: sum to 1)."""
    if set(values) != set(SEGMENTS):
        raise ValueError(
            f"{name}: needs exactly the segments {', '.join(SEGMENTS)}, got "
            f"{', '.join(sorted(values))}"
        )
    if shares and abs(sum(values.values()) - 1) > 1e-6:
        raise ValueError(f"{name}: shares must sum to 1")


@dataclass(frozen=True)
class Column:
    """One column of a source: its logical type, meaning and the values it may take."""

    name: str
    type: LogicalType
    description: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False


@dataclass(frozen=True)
class Source:
    """One raw source: a Parquet file or a folder of Parquet parts with the same schema."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # Column holding the moment the row describes; features are computed as of this time.
    time_column: str | None = None
    # (earlier, later): when both are set, `later` must not precede `earlier`.
    time_order: tuple[tuple[str, str], ...] = ()
    # Whether `account_id` values must exist in `accounts.account_id`.
    references_accounts: bool = True
    # Extra rules that span columns, as (name, pandas-eval expression true for valid rows).
    row_rules: tuple[tuple[str, str], ...] = ()
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _account_id(unique: bool = False) -> Column:
    return Column(
        "account_id", "string", "Account identifier, stable across all sources.", unique=unique
    )


ACCOUNTS = Source(
    name="accounts",
    description="One row per customer account (the entity every health score is about).",
    key=("account_id",),
    references_accounts=False,
    columns=(
        _account_id(unique=True),
        Column("account_name", "string", "Display name of the customer."),
        Column("segment", "string", "Customer segment.", allowed=SEGMENTS),
        Column("industry", "string", "Industry of the customer."),
        Column("region", "string", "Sales region (e.g. NA, EMEA, APAC, LATAM)."),
        Column(
            "csm_owner", "string", "Customer-success manager who owns the account.", nullable=True
        ),
        Column("created_at", "timestamp", "When the account became a customer (first contract)."),
    ),
)

CONTRACTS = Source(
    name="contracts",
    description=(
        "One row per contract term. The end date is the renewal date; the outcome is the renewal "
        "decision, empty while the term is still running. These decisions are the training labels."
    ),
    key=("contract_id",),
    time_column="start_date",
    time_order=(("start_date", "end_date"),),
    columns=(
        Column("contract_id", "string", "Contract identifier.", unique=True),
        _account_id(),
        Column("start_date", "date", "First day of the term."),
        Column("end_date", "date", "Last day of the term: the renewal date."),
        Column(
            "term_months", "int", "Length of the term in months (1, 12, 24, 36).", min=1, max=120
        ),
        Column("arr", "float", "Annual recurring revenue of the term, in USD.", min=0),
        Column("seats", "int", "Licensed seats.", min=1),
        Column(
            "outcome",
            "string",
            "Renewal decision at the end date; empty while open.",
            nullable=True,
            allowed=OUTCOMES,
        ),
    ),
)

USAGE = Source(
    name="usage",
    description="Daily product usage per account, from telemetry. Days with no row are unknown.",
    key=("account_id", "date"),
    time_column="date",
    row_rules=(("active_users <= seats_used", "active_users <= seats_used"),),
    columns=(
        _account_id(),
        Column("date", "date", "Day the counts cover (UTC)."),
        Column("active_users", "int", "Distinct users active that day.", min=0),
        Column("logins", "int", "Logins that day.", min=0),
        Column("sessions", "int", "Sessions that day.", min=0),
        Column("key_feature_events", "int", "Uses of the product's key features that day.", min=0),
        Column("distinct_features_used", "int", "Distinct product features used that day.", min=0),
        Column("seats_used", "int", "Seats assigned to a named user that day.", min=0),
    ),
)

ENGAGEMENT = Source(
    name="engagement",
    description="Customer-success touchpoints: emails, webinars, meetings, reviews, sponsors.",
    key=("event_id",),
    time_column="occurred_at",
    columns=(
        Column("event_id", "string", "Event identifier.", unique=True),
        _account_id(),
        Column("occurred_at", "timestamp", "When it happened (UTC)."),
        Column(
            "event_type",
            "string",
            "What happened. `champion_change`: the customer's champion left or was replaced.",
            allowed=ENGAGEMENT_EVENTS,
        ),
    ),
)

ENABLEMENT = Source(
    name="enablement",
    description="Trainings completed and users certified.",
    key=("event_id",),
    time_column="occurred_at",
    columns=(
        Column("event_id", "string", "Event identifier.", unique=True),
        _account_id(),
        Column("occurred_at", "timestamp", "When it happened (UTC)."),
        Column("event_type", "string", "Kind of enablement.", allowed=ENABLEMENT_EVENTS),
        Column("users", "int", "Users trained or certified in this event.", min=1),
    ),
)

TICKETS = Source(
    name="tickets",
    description="Support tickets. Open tickets have no resolution time yet.",
    key=("ticket_id",),
    time_column="opened_at",
    time_order=(("opened_at", "first_response_at"), ("opened_at", "resolved_at")),
    columns=(
        Column("ticket_id", "string", "Ticket identifier.", unique=True),
        _account_id(),
        Column("opened_at", "timestamp", "When the customer opened the ticket (UTC)."),
        Column(
            "first_response_at",
            "timestamp",
            "First reply from support; empty if none yet.",
            nullable=True,
        ),
        Column(
            "resolved_at", "timestamp", "When it was resolved; empty while open.", nullable=True
        ),
        Column("severity", "int", "1 = critical (production down) … 4 = low.", min=1, max=4),
        Column("category", "string", "Ticket category.", allowed=TICKET_CATEGORIES),
        Column("escalated", "bool", "Escalated to engineering or management."),
        Column(
            "csat",
            "int",
            "Ticket satisfaction 1–5; empty if not rated.",
            nullable=True,
            min=1,
            max=5,
        ),
    ),
)

SURVEYS = Source(
    name="surveys",
    description="Surveys sent to customer contacts, answered or not (for response rates).",
    key=("survey_id",),
    time_column="sent_at",
    time_order=(("sent_at", "responded_at"),),
    row_rules=(("a response has a score", "responded_at.isna() | nps.notna() | csat.notna()"),),
    columns=(
        Column("survey_id", "string", "Survey identifier.", unique=True),
        _account_id(),
        Column("sent_at", "timestamp", "When the survey was sent (UTC)."),
        Column("responded_at", "timestamp", "When it was answered; empty if never.", nullable=True),
        Column(
            "survey_type",
            "string",
            "`nps` (0–10 likelihood to recommend) or `csat` (1–5).",
            allowed=SURVEY_TYPES,
        ),
        Column("nps", "int", "Likelihood to recommend, 0–10.", nullable=True, min=0, max=10),
        Column("csat", "int", "Satisfaction, 1–5.", nullable=True, min=1, max=5),
        Column("respondent_role", "string", "Role of the contact.", allowed=RESPONDENT_ROLES),
    ),
)

INVOICES = Source(
    name="invoices",
    description="Invoices. Days late = paid_at − due_at; unpaid invoices have no paid_at.",
    key=("invoice_id",),
    time_column="issued_at",
    time_order=(("issued_at", "due_at"), ("issued_at", "paid_at")),
    columns=(
        Column("invoice_id", "string", "Invoice identifier.", unique=True),
        _account_id(),
        Column("issued_at", "date", "Invoice date."),
        Column("due_at", "date", "Payment due date."),
        Column("paid_at", "date", "When it was paid in full; empty while unpaid.", nullable=True),
        Column("amount", "float", "Amount invoiced, in USD, after discount.", min=0),
        Column("discount_pct", "float", "Discount granted on list price, 0–100.", min=0, max=100),
        Column("failed_payments", "int", "Failed payment attempts on this invoice.", min=0),
    ),
)

PLAN_CHANGES_SOURCE = Source(
    name="plan_changes",
    description="Plan changes between renewals: upgrades, downgrades, seats, price.",
    key=("change_id",),
    time_column="changed_at",
    columns=(
        Column("change_id", "string", "Change identifier.", unique=True),
        _account_id(),
        Column("changed_at", "date", "When the change took effect."),
        Column("change_type", "string", "Kind of change.", allowed=PLAN_CHANGES),
        Column("arr_before", "float", "ARR before the change, USD.", min=0),
        Column("arr_after", "float", "ARR after the change, USD.", min=0),
    ),
)

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        ACCOUNTS,
        CONTRACTS,
        USAGE,
        ENGAGEMENT,
        ENABLEMENT,
        TICKETS,
        SURVEYS,
        INVOICES,
        PLAN_CHANGES_SOURCE,
    )
}


def render_markdown() -> str:
    """The data contract as Markdown: the documentation a team reads before exporting its data."""
    lines = [
        "# Data contract",
        "",
        "<!-- Generated from features/contract.py by `make docs`; do not edit by hand. -->",
        "",
        "healthscore reads one Parquet file, or one folder of Parquet parts, per source, named",
        "after the source (`accounts.parquet` or `accounts/part-*.parquet`). Timestamps are UTC.",
        "Every `account_id` must exist in `accounts`. `healthscore validate DIR` checks all this.",
        "",
    ]
    for s in SOURCES.values():
        lines += [f"## `{s.name}`", "", s.description, "", f"Key: `{', '.join(s.key)}`."]
        if s.time_order:
            order = "; ".join(f"`{a}` ≤ `{b}`" for a, b in s.time_order)
            lines += ["", f"Time order: {order}."]
        for rule_name, _ in s.row_rules:
            lines += ["", f"Rule: {rule_name}."]
        lines += ["", "| column | type | required | meaning | values |", "|---|---|---|---|---|"]
        for c in s.columns:
            values = []
            if c.allowed:
                values.append(", ".join(f"`{v}`" for v in c.allowed))
            if c.min is not None or c.max is not None:
                lo = "" if c.min is None else f"{c.min:g}"
                hi = "" if c.max is None else f"{c.max:g}"
                values.append(f"{lo} … {hi}".strip())
            if c.unique:
                values.append("unique")
            req = "no" if c.nullable else "yes"
            lines.append(
                f"| `{c.name}` | {c.type} | {req} | {c.description} | {'; '.join(values)} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
