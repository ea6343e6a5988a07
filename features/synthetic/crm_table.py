"""A flat churn table shaped like a telecom / SaaS CRM export, for the bring-your-own-data example.

One row per customer: tenure, contract type, monthly charges, services, payment method, a few
usage and support counts, an NPS answer (often blank), and a Yes/No churn flag. Churn is a
Bernoulli draw from a logistic model with the shapes such exports show (risk falls with the log of
tenure; month-to-month contracts, electronic checks and fibre without tech support churn more;
the effect of charges depends on the contract) plus unobserved noise, so no model is perfect.
Messy like real exports: CamelCase headers, blank TotalCharges for brand-new customers, an id
column, a free-text-ish name column.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

CONTRACTS = ("Month-to-month", "One year", "Two year")
PAYMENTS = (
    "Electronic check",
    "Mailed check",
    "Bank transfer (automatic)",
    "Credit card (automatic)",
)
INTERNET = ("DSL", "Fiber optic", "No")
OWNERS = ("Ana Ruiz", "Ben Okafor", "Chen Wei", "Dana Levi", "Eli Novak")


def crm_table(rows: int = 7_000, seed: int = 7) -> pd.DataFrame:
    """The synthetic CRM export (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    n = rows
    contract = rng.choice(3, n, p=[0.55, 0.21, 0.24])
    tenure = (
        np.where(contract == 0, rng.gamma(1.1, 14, n), rng.gamma(3.0, 14, n) + 6 * contract)
        .clip(0, 72)
        .round()
        .astype(int)
    )
    internet = rng.choice(3, n, p=[0.34, 0.44, 0.22])
    has_net = internet != 2
    addon = lambda p: np.where(has_net, rng.random(n) < p, False)  # noqa: E731
    security, support, streaming = addon(0.35), addon(0.35), addon(0.45)
    payment = rng.choice(4, n, p=[0.34, 0.23, 0.22, 0.21])
    senior = rng.random(n) < 0.16
    partner = rng.random(n) < 0.48
    paperless = rng.random(n) < 0.59
    monthly = (
        (
            20
            + np.select([internet == 0, internet == 1], [25, 50], 0)
            + 10 * streaming
            + 5 * security
            + 5 * support
            + rng.normal(0, 4, n)
        )
        .clip(18, 120)
        .round(2)
    )
    logins = rng.poisson(np.where(has_net, 18, 4) * rng.gamma(2, 0.5, n))
    calls = rng.poisson(0.6 + 0.9 * (internet == 1) * ~support, n)
    z = (
        0.9
        - 0.75 * np.log1p(tenure)
        + np.select([contract == 0, contract == 1], [1.3, 0.1], -1.0)
        + 0.55 * (payment == 0)
        + 0.7 * ((internet == 1) & ~support)
        - 0.4 * security
        + 0.018 * (monthly - 65) * (contract == 0)
        + 0.35 * senior
        - 0.2 * partner
        + 0.2 * paperless
        + 0.28 * np.minimum(calls, 5)
        - 0.35 * np.log1p(logins) * has_net
        + rng.normal(0, 0.6, n)
    )
    churn = rng.random(n) < 1 / (1 + np.exp(-(z - 0.45)))
    nps = np.clip(np.rint(8 - 3 * (z > 0.5) + rng.normal(0, 1.8, n)), 0, 10)
    total = (monthly * tenure * rng.normal(1, 0.03, n)).round(2)
    yes_no = lambda v: np.where(v, "Yes", "No")  # noqa: E731
    no_net = lambda v: np.where(has_net, yes_no(v), "No internet service")  # noqa: E731
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-{c}" for i, c in enumerate(_codes(rng, n))],
            "CustomerName": [f"Customer {i:05d}" for i in range(n)],
            "AccountOwner": rng.choice(OWNERS, n),
            "SeniorCitizen": senior.astype(int),
            "Partner": yes_no(partner),
            "tenure": tenure,
            "Contract": np.array(CONTRACTS)[contract],
            "InternetService": np.array(INTERNET)[internet],
            "OnlineSecurity": no_net(security),
            "TechSupport": no_net(support),
            "StreamingTV": no_net(streaming),
            "PaperlessBilling": yes_no(paperless),
            "PaymentMethod": np.array(PAYMENTS)[payment],
            "MonthlyCharges": monthly,
            "TotalCharges": np.where(tenure == 0, " ", total.astype(str)),
            "Logins30d": logins,
            "SupportCalls90d": calls,
            "NPS": pd.array(np.where(rng.random(n) < 0.55, np.nan, nps)).astype("Int64"),
            "Churn": yes_no(churn),
        }
    )


def _codes(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return ["".join(r) for r in letters[rng.integers(0, 26, (n, 5))]]


def write_crm_table(path: Path, rows: int = 7_000, seed: int = 7) -> Path:
    """Write the example table as CSV (or Parquet for a .parquet name), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = crm_table(rows, seed)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
