"""Segment profiles and vocabularies of the synthetic book of business."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentProfile:
    """How accounts of one segment look and behave. Rates are per account-week."""

    arr_median: float
    arr_sigma: float
    seats_median: float
    seats_sigma: float
    terms: tuple[tuple[int, float], ...]  # (term months, share)
    health_mean: float  # mean long-run latent health
    ticket_rate: float
    email_rate: float
    meeting_rate: float
    review_rate: float  # business reviews (QBRs)
    exec_rate: float
    webinar_rate: float
    survey_contacts: int
    csat_survey_share: float
    discount_max: float
    due_days: int
    monthly_billing_share: float  # share of annual contracts billed monthly
    card_share: float  # share paying by card (failed payments happen there)


PROFILES: dict[str, SegmentProfile] = {
    "smb": SegmentProfile(
        arr_median=9_000,
        arr_sigma=0.6,
        seats_median=12,
        seats_sigma=0.6,
        terms=((1, 0.2), (12, 0.8)),
        health_mean=0.25,
        ticket_rate=0.06,
        email_rate=0.3,
        meeting_rate=0.02,
        review_rate=0.0,
        exec_rate=0.003,
        webinar_rate=0.05,
        survey_contacts=1,
        csat_survey_share=0.3,
        discount_max=10,
        due_days=14,
        monthly_billing_share=0.4,
        card_share=0.7,
    ),
    "mid_market": SegmentProfile(
        arr_median=48_000,
        arr_sigma=0.5,
        seats_median=90,
        seats_sigma=0.5,
        terms=((12, 0.75), (24, 0.25)),
        health_mean=0.45,
        ticket_rate=0.2,
        email_rate=0.8,
        meeting_rate=0.15,
        review_rate=1 / 26,
        exec_rate=0.02,
        webinar_rate=0.1,
        survey_contacts=2,
        csat_survey_share=1.0,
        discount_max=20,
        due_days=30,
        monthly_billing_share=0.0,
        card_share=0.2,
    ),
    "enterprise": SegmentProfile(
        arr_median=260_000,
        arr_sigma=0.5,
        seats_median=700,
        seats_sigma=0.5,
        terms=((12, 0.55), (24, 0.25), (36, 0.2)),
        health_mean=0.55,
        ticket_rate=0.6,
        email_rate=1.5,
        meeting_rate=0.5,
        review_rate=1 / 13,
        exec_rate=0.08,
        webinar_rate=0.2,
        survey_contacts=4,
        csat_survey_share=1.0,
        discount_max=30,
        due_days=45,
        monthly_billing_share=0.0,
        card_share=0.0,
    ),
}

INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "manufacturing",
    "retail",
    "education",
    "media",
    "logistics",
)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_WEIGHTS = (0.45, 0.3, 0.17, 0.08)
NAME_PREFIXES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Nakatomi",
    "Pied Piper",
    "Dunder",
    "Prestige",
    "Monarch",
    "Blue Sun",
    "Black Mesa",
    "Massive",
    "Sirius",
    "Zorg",
)
NAME_SUFFIXES = ("Corp", "Inc", "Labs", "Group", "Systems", "Holdings", "GmbH", "Ltd", "Partners")
CSM_FIRST = (
    "Maya",
    "Liam",
    "Ava",
    "Noah",
    "Zoe",
    "Ethan",
    "Lea",
    "Omar",
    "Ines",
    "Ravi",
    "Sofia",
    "Jonas",
    "Mei",
    "Tomas",
    "Amara",
    "Felix",
)
CSM_LAST = (
    "Chen",
    "Okafor",
    "Garcia",
    "Novak",
    "Schmidt",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Haddad",
    "Silva",
    "Larsen",
    "Moreau",
)
TICKET_CATEGORY_WEIGHTS = {
    # severity -> weights over contract.TICKET_CATEGORIES
    # (bug, how_to, outage, billing, integration, feature_request)
    1: (0.45, 0.0, 0.45, 0.0, 0.1, 0.0),
    2: (0.5, 0.05, 0.1, 0.05, 0.25, 0.05),
    3: (0.3, 0.35, 0.0, 0.1, 0.15, 0.1),
    4: (0.1, 0.45, 0.0, 0.1, 0.05, 0.3),
}
ROLE_WEIGHTS = (0.15, 0.3, 0.25, 0.3)  # executive, champion, admin, end_user
N_PRODUCT_FEATURES = 40
