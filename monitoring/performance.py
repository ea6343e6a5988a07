""" "Were we right?": past score runs joined with the renewal decisions that have happened since.

For each score run (history partition `as_of=YYYY-MM-DD`), the decisions that count are the
accounts' renewals whose date falls within `horizon_days` after the run and whose outcome is now
known. One decision per account and run: the first renewal after the run. The score predicted
"renews" (any outcome but `churned`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

HISTORY_COLUMNS = ["account_id", "renewal_probability", "tier"]
CONTRACT_COLUMNS = ["account_id", "end_date", "outcome"]
ALL_TIERS = "all"
COLUMNS = [
    "as_of",
    "tier",
    "decisions",
    "churned",
    "churn_rate",
    "mean_predicted_churn",
    "auc",
    "log_loss",
    "brier",
    "ece",
]


def read_history(history_dir: Path) -> pd.DataFrame:
    """All score runs under `history_dir` (partitions `as_of=YYYY-MM-DD/scores.parquet`), with
    an `as_of` column. Empty frame when there is no run yet."""
    parts = []
    for folder in sorted(Path(history_dir).glob("as_of=*")):
        file = folder / "scores.parquet"
        if not file.is_file():
            continue
        try:
            as_of = date.fromisoformat(folder.name.split("=", 1)[1])
        except ValueError as exc:
            raise ValueError(f"{folder}: partition name is not as_of=YYYY-MM-DD") from exc
        frame = pd.read_parquet(file)
        missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{file}: missing column(s) {', '.join(missing)}")
        parts.append(frame.assign(as_of=pd.Timestamp(as_of)))
    if not parts:
        return pd.DataFrame(columns=[*HISTORY_COLUMNS, "as_of"])
    return pd.concat(parts, ignore_index=True)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width probability bins, by count."""
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in np.unique(idx):
        m = idx == b
        err += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(err / len(y))


def _metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """y = 1 renewed; p = predicted renewal probability."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    two = len(np.unique(y)) == 2
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    return {
        "decisions": len(y),
        "churned": int((y == 0).sum()),
        "churn_rate": float((y == 0).mean()),
        "mean_predicted_churn": float((1 - p).mean()),
        "auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "log_loss": float(log_loss(y, pc, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }


def decisions(
    history: pd.DataFrame, contracts: pd.DataFrame, horizon_days: int = 365
) -> pd.DataFrame:
    """Each run's scored accounts joined with their first decided renewal in
    (as_of, as_of + horizon_days]: as_of, account_id, renewal_probability, tier, end_date,
    outcome, renewed."""
    if horizon_days < 1:
        raise ValueError(f"horizon_days: must be at least 1, got {horizon_days}")
    for frame, cols, name in ((history, [*HISTORY_COLUMNS, "as_of"], "history"),
                              (contracts, CONTRACT_COLUMNS, "contracts")):  # fmt: skip
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    decided = contracts.loc[contracts["outcome"].notna(), CONTRACT_COLUMNS].copy()
    decided["end_date"] = pd.to_datetime(decided["end_date"])
    runs = history[[*HISTORY_COLUMNS, "as_of"]].copy()
    runs["as_of"] = pd.to_datetime(runs["as_of"])
    joined = runs.merge(decided, on="account_id", how="inner")
    after = joined["end_date"] > joined["as_of"]
    within = joined["end_date"] <= joined["as_of"] + pd.Timedelta(days=horizon_days)
    joined = joined[after & within].sort_values(["as_of", "account_id", "end_date"])
    joined = joined.drop_duplicates(["as_of", "account_id"], keep="first")
    joined["renewed"] = (joined["outcome"] != "churned").astype(int)
    return joined.reset_index(drop=True)


def performance(
    history: pd.DataFrame,
    contracts: pd.DataFrame,
    horizon_days: int = 365,
    tiers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per score run: decisions, churn rate, AUC, log loss, Brier score and ECE over all its
    decided accounts (tier "all") and per tier. Tidy: one row per (as_of, tier). Empty, with the
    same columns, when no outcome is known yet."""
    joined = decisions(history, contracts, horizon_days)
    rows = []
    for as_of, run in joined.groupby("as_of", sort=True):
        y, p = run["renewed"].to_numpy(), run["renewal_probability"].to_numpy(float)
        rows.append({"as_of": as_of.date(), "tier": ALL_TIERS} | _metrics(y, p))
        names = list(tiers) if tiers is not None else sorted(run["tier"].dropna().unique())
        for tier in names:
            t = run[run["tier"] == tier]
            if len(t):
                y, p = t["renewed"].to_numpy(), t["renewal_probability"].to_numpy(float)
                rows.append({"as_of": as_of.date(), "tier": tier} | _metrics(y, p))
    return pd.DataFrame(rows, columns=COLUMNS)


def performance_from_files(
    history_dir: Path, data_dir: Path, horizon_days: int = 365
) -> pd.DataFrame:
    """`performance` over a workspace: score history and the raw contracts source."""
    from features.io import read_source

    history = read_history(history_dir)
    if history.empty:
        return pd.DataFrame(columns=COLUMNS)
    contracts = read_source(Path(data_dir), "contracts", columns=CONTRACT_COLUMNS)
    return performance(history, contracts, horizon_days)
