"""Realistic monitoring inputs built with the project's own parts: the synthetic generator (with
and without `drift`), the feature SQL, and a cheap fixed score (or the trained model)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from features import engineering
from features.catalog import VIEWS
from features.synthetic.generator import GeneratorConfig, generate_book

FEATURES = [f.name for v in VIEWS for f in v.features]
CATEGORICAL = [f.name for v in VIEWS for f in v.features if f.type in ("string", "bool")]
END = date(2026, 10, 31)
# 26 weeks before the end: the same weekday (weekly usage cycle) and the same phase of the
# generator's 26-week feature-launch cycle, and before its 3-month drift window.
REFERENCE_DAY = END - timedelta(weeks=26)
# Shifted by the generator's drift: SMB usage x0.55, mid-market price increases.
SHIFTED = {"seat_utilisation_30d", "price_increases_365d"}


def snapshot(feature_dir: Path, day: date) -> pd.DataFrame:
    """Every account's features at the end of `day` (its snapshot is stamped day + 1)."""
    stamp = pd.Timestamp(day) + pd.Timedelta(days=1)
    merged = None
    for v in VIEWS:
        part = (
            ds.dataset(Path(feature_dir) / f"{v.name}.parquet")
            .to_table(filter=ds.field("event_timestamp") == pa.scalar(stamp, pa.timestamp("ns")))
            .to_pandas()
            .drop(columns="event_timestamp")
        )
        merged = part if merged is None else merged.merge(part, on="account_id", how="outer")
    return merged.sort_values("account_id").reset_index(drop=True)


def cheap_score(frame: pd.DataFrame) -> pd.DataFrame:
    """A fixed logistic score of a few features, with the default tier bands."""
    z = (
        1.2
        + 2.0 * frame["seat_utilisation_30d"].fillna(0.3).astype(float)
        - 0.4 * frame["sev1_tickets_90d"].fillna(0).astype(float)
        + 0.15 * (frame["nps_latest"].fillna(7).astype(float) - 7)
        - 0.01 * frame["days_since_last_login"].fillna(30).clip(upper=60).astype(float)
    )
    p = 1 / (1 + np.exp(-z))
    tier = np.where(p >= 0.85, "healthy", np.where(p >= 0.65, "at risk", "unhealthy"))
    return frame.assign(
        renewal_probability=p, health_score=np.round(p * 100).astype(int), tier=tier
    )


def build_pair(root: Path, seed: int, drift: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): all accounts at REFERENCE_DAY and at the last day, scored."""
    cfg = GeneratorConfig(accounts=1_500, months=24, seed=seed, drift=drift)
    generate_book(cfg, root / "raw")
    engineering.build_feature_tables(root / "raw", root / "features")
    ref = cheap_score(snapshot(root / "features", REFERENCE_DAY))
    cur = cheap_score(snapshot(root / "features", END))
    return ref, cur


@pytest.fixture(scope="session")
def drifted_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_pair(tmp_path_factory.mktemp("drifted"), seed=1, drift=True)


@pytest.fixture(scope="session")
def stable_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_pair(tmp_path_factory.mktemp("stable"), seed=1, drift=False)
