""" "Were we right?" on a hand-made history whose numbers are known."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.io import write_parquet
from monitoring.performance import (
    COLUMNS,
    decisions,
    expected_calibration_error,
    performance,
    performance_from_files,
    read_history,
)


def _history() -> pd.DataFrame:
    run1 = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D", "E", "F"],
            "renewal_probability": [0.9, 0.5, 0.6, 0.3, 0.8, 0.7],
            "tier": ["healthy", "unhealthy", "at risk", "unhealthy", "at risk", "at risk"],
        }
    ).assign(as_of=pd.Timestamp("2025-01-01"))
    run2 = run1.assign(as_of=pd.Timestamp("2025-06-01"), renewal_probability=0.5)
    return pd.concat([run1, run2], ignore_index=True)


def _contracts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C", "D", "E", "F"],
            "end_date": pd.to_datetime(
                [
                    "2025-03-01",
                    "2025-09-01",
                    "2025-04-01",
                    "2025-05-01",
                    "2025-12-01",
                    "2026-03-01",
                    "2025-02-01",
                ]
            ),
            # E renews after the one-year horizon of run 1; F's renewal is still open.
            "outcome": ["renewed", "expanded", "renewed", "churned", "churned", "renewed", None],
        }
    )


def test_auc_and_counts_of_a_known_example() -> None:
    perf = performance(_history(), _contracts(), horizon_days=365)
    assert list(perf.columns) == COLUMNS
    first = perf[(perf["as_of"].astype(str) == "2025-01-01") & (perf["tier"] == "all")].iloc[0]
    # run 1 decides A (0.9, renewed), B (0.5, renewed), C (0.6, churned), D (0.3, churned):
    # of the 4 renewed/churned pairs, 3 are ranked right -> AUC 0.75
    assert first["decisions"] == 4
    assert first["churned"] == 2
    assert first["churn_rate"] == 0.5
    assert first["auc"] == pytest.approx(0.75)
    brier = ((0.9 - 1) ** 2 + (0.5 - 1) ** 2 + 0.6**2 + 0.3**2) / 4
    assert first["brier"] == pytest.approx(brier)
    # run 2 (all at 0.5): A's second term (renewed), D (churned), E (renewed, now within a year)
    second = perf[(perf["as_of"].astype(str) == "2025-06-01") & (perf["tier"] == "all")].iloc[0]
    assert second["decisions"] == 3 and second["churned"] == 1
    assert second["auc"] == pytest.approx(0.5)
    assert second["ece"] == pytest.approx(abs(2 / 3 - 0.5))
    tiers = perf[perf["as_of"].astype(str) == "2025-01-01"].set_index("tier")
    assert tiers.loc["unhealthy", "churn_rate"] == 0.5  # B renewed, D churned
    assert tiers.loc["healthy", "decisions"] == 1 and pd.isna(tiers.loc["healthy", "auc"])


def test_first_renewal_after_the_run_within_the_horizon() -> None:
    d = decisions(_history(), _contracts(), horizon_days=365)
    a = d[d["account_id"] == "A"].set_index(d[d["account_id"] == "A"]["as_of"].astype(str))
    assert str(a.loc["2025-01-01", "end_date"].date()) == "2025-03-01"
    assert str(a.loc["2025-06-01", "end_date"].date()) == "2025-09-01"
    assert "F" not in set(d["account_id"])  # open outcome
    assert len(decisions(_history(), _contracts(), horizon_days=30)) == 0


def test_no_outcomes_yet_is_an_empty_table() -> None:
    contracts = _contracts().assign(outcome=None)
    perf = performance(_history(), contracts)
    assert perf.empty and list(perf.columns) == COLUMNS


def test_from_files(tmp_path: Path) -> None:
    history = _history()
    for as_of, run in history.groupby("as_of"):
        write_parquet(
            run.drop(columns="as_of").assign(health_score=50, model_version="1"),
            tmp_path / "scores" / "history" / f"as_of={as_of.date()}" / "scores.parquet",
        )
    write_parquet(_contracts(), tmp_path / "raw" / "contracts.parquet")
    assert len(read_history(tmp_path / "scores" / "history")) == len(history)
    perf = performance_from_files(tmp_path / "scores" / "history", tmp_path / "raw")
    assert perf[perf["tier"] == "all"]["auc"].round(3).tolist() == [0.75, 0.5]
    empty = performance_from_files(tmp_path / "nothing", tmp_path / "raw")
    assert empty.empty and list(empty.columns) == COLUMNS


def test_bad_input_names_the_column() -> None:
    with pytest.raises(ValueError, match=r"contracts: missing column.*outcome"):
        performance(_history(), _contracts().drop(columns="outcome"))


def test_ece_of_a_perfectly_calibrated_bin() -> None:
    import numpy as np

    y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    p = np.array([0.75] * 4 + [0.25] * 4)
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
