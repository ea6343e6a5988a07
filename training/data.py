"""Training data: renewal decisions joined point-in-time with the FeatureService, split by time.

A row is one renewal decision seen `lead_days` before its renewal date; the label `renewed` is
False when the account churned. The split is by renewal date — train on the oldest decisions,
validate on the next ones, test on the newest — never random across time: a model is always used on
renewals that come after the ones it learned from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features import store as feature_store
from features.catalog import FEATURE_SERVICE
from features.health_model import FeatureInfo

KEYS = ["account_id", "event_timestamp", "contract_id", "renewal_date"]
LABEL = "renewed"


@dataclass(frozen=True)
class Split:
    """Three periods of renewal decisions, oldest first."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def describe(self) -> dict[str, str | int | float]:
        """Lineage of the split: period bounds, sizes and churn rates (logged as parameters)."""
        out: dict[str, str | int | float] = {}
        for name, part in (
            ("train", self.train),
            ("validation", self.validation),
            ("test", self.test),
        ):
            out[f"{name}_rows"] = len(part)
            out[f"{name}_first_renewal"] = str(part["renewal_date"].min().date())
            out[f"{name}_last_renewal"] = str(part["renewal_date"].max().date())
            out[f"{name}_churn_rate"] = round(float(1 - part[LABEL].mean()), 4)
        return out


def training_frame(
    store, contracts: pd.DataFrame, lead_days: int, first_day: date | None = None
) -> tuple[pd.DataFrame, int]:
    """Every decided renewal with its features as of `lead_days` before the renewal date.

    Decisions whose account had no feature snapshot at prediction time (not yet a customer, or a
    gap in the data) are dropped; returns the frame and how many were dropped.
    """
    events = feature_store.label_events(contracts, lead_days, first_day)
    frame = feature_store.training_set(store, events)
    names = feature_store.feature_names(store)
    seen = frame[names].notna().any(axis=1)
    frame = frame.loc[seen].sort_values(["renewal_date", "contract_id"]).reset_index(drop=True)
    return frame, int((~seen).sum())


def events_frame(store, events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Label events given as such (a flat table's decided rows: account_id, event_timestamp,
    contract_id, renewal_date, renewed) joined point-in-time with the FeatureService; rows with
    no feature at all are dropped and counted, as in `training_frame`."""
    frame = feature_store.training_set(store, events)
    names = feature_store.feature_names(store)
    seen = frame[names].notna().any(axis=1)
    frame = frame.loc[seen].sort_values(["renewal_date", "contract_id"]).reset_index(drop=True)
    return frame, int((~seen).sum())


def stratified_split(
    frame: pd.DataFrame, validation_share: float, test_share: float, seed: int
) -> Split:
    """A seeded random split with the same churn rate in each part, for data with no time axis
    (one snapshot of every account). Weaker than `time_split`: the test rows come from the same
    moment as the training rows, so it cannot show how the model ages."""
    if not 0 < validation_share < 1 or not 0 < test_share < 1 or validation_share + test_share >= 1:
        raise ValueError("validation_share and test_share must be in (0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    part = np.empty(len(frame), dtype="int8")
    for outcome in (False, True):
        idx = np.flatnonzero(frame[LABEL].to_numpy() == outcome)
        rng.shuffle(idx)
        n_test = round(len(idx) * test_share)
        n_valid = round(len(idx) * validation_share)
        part[idx[:n_test]] = 2
        part[idx[n_test : n_test + n_valid]] = 1
        part[idx[n_test + n_valid :]] = 0
    parts = [frame[part == k].reset_index(drop=True) for k in range(3)]
    for name, p in zip(("train", "validation", "test"), parts, strict=True):
        if p[LABEL].nunique() < 2:
            raise ValueError(f"the {name} part has only one outcome: more decided accounts needed")
    return Split(*parts)


def learn_directions(
    train: pd.DataFrame, names: list[str], min_rho: float = 0.02
) -> dict[str, int]:
    """For features whose healthy direction nobody declared: the sign of their rank correlation
    with renewal on the training rows (+1: higher goes with renewing), 0 when weaker than
    `min_rho`. It orients the scorecard baseline and the wording of drivers, never a constraint."""
    y = train[LABEL].astype(float)
    out = {}
    for n in names:
        x = pd.to_numeric(train[n].astype("object"), errors="coerce").astype(float)
        ok = x.notna()
        if ok.sum() < 20 or x[ok].nunique() < 2:
            out[n] = 0
            continue
        rho = x[ok].rank().corr(y[ok].rank())
        out[n] = 0 if not np.isfinite(rho) or abs(rho) < min_rho else int(np.sign(rho))
    return out


def service_features(store) -> tuple[list[str], dict[str, FeatureInfo], list[str]]:
    """The FeatureService's features as registered: names in order, what explanations need
    (domain, description, direction tags of each Feast field) and which are categorical."""
    service = store.get_feature_service(FEATURE_SERVICE)
    fields = [f for p in service.feature_view_projections for f in p.features]
    info = {
        f.name: FeatureInfo(
            f.tags.get("domain", "other"), f.description, int(f.tags.get("direction", 0))
        )
        for f in fields
    }
    categorical = [f.name for f in fields if str(f.dtype) == "String"]
    return [f.name for f in fields], info, categorical


def time_split(frame: pd.DataFrame, validation_share: float, test_share: float) -> Split:
    """Split by renewal date: the newest `test_share` of decisions is the test period, the
    `validation_share` before it validates; a renewal date never straddles two periods."""
    if not 0 < validation_share < 1 or not 0 < test_share < 1 or validation_share + test_share >= 1:
        raise ValueError("validation_share and test_share must be in (0, 1) and sum below 1")
    if frame.empty:
        raise ValueError("no renewal decisions to train on")
    dates = frame["renewal_date"].sort_values().to_numpy()
    n = len(dates)
    test_start = dates[min(n - 1, int(n * (1 - test_share)))]
    valid_start = dates[min(n - 1, int(n * (1 - test_share - validation_share)))]
    parts = (
        frame[frame["renewal_date"] < valid_start],
        frame[(frame["renewal_date"] >= valid_start) & (frame["renewal_date"] < test_start)],
        frame[frame["renewal_date"] >= test_start],
    )
    for name, part in zip(("train", "validation", "test"), parts, strict=True):
        if part[LABEL].nunique() < 2:
            raise ValueError(
                f"the {name} period has {len(part)} decisions and only one outcome: "
                "more history (or other split shares) is needed"
            )
    return Split(*(p.reset_index(drop=True) for p in parts))


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of the training data (rows, columns and values), for lineage."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
