"""run_monitor: the report folder appears whole or not at all, and lands in MLflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from monitoring import report
from monitoring.drift import DriftConfig
from tests.monitoring.conftest import CATEGORICAL

FEW = ["seat_utilisation_30d", "price_increases_365d", "tickets_90d", "nps_latest", "segment"]
FEW_CAT = [c for c in FEW if c in CATEGORICAL]
NOW = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def _perf() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": [pd.Timestamp("2026-01-01").date(), pd.Timestamp("2026-04-01").date()],
            "tier": ["all", "all"],
            "decisions": [100, 120],
            "churned": [10, 15],
            "churn_rate": [0.1, 0.125],
            "mean_predicted_churn": [0.11, 0.12],
            "auc": [0.81, 0.78],
            "log_loss": [0.3, 0.32],
            "brier": [0.08, 0.09],
            "ece": [0.02, 0.03],
        }
    )


def test_report_folder_summary_and_mlflow(tmp_path: Path, drifted_pair) -> None:
    ref, cur = drifted_pair
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = report.run_monitor(
        ref,
        cur,
        FEW,
        FEW_CAT,
        tmp_path / "reports",
        performance=_perf(),
        tracking_uri=uri,
        model_name="account-health",
        model_version="3",
        model_run_id="abc123",
        now=NOW,
    )
    assert result.path == tmp_path / "reports" / "monitor-20261102T063000Z"
    assert sorted(p.name for p in result.path.iterdir()) == [
        "evidently.html",
        "features.csv",
        "index.html",
        "performance.csv",
        "summary.json",
    ]
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [result.path.name]
    summary = json.loads(result.summary_json.read_text())
    assert result.drift and summary["drift"] is True
    assert summary["verdict"] == result.verdict
    assert result.verdict.startswith("drift in ") and "seat_utilisation_30d" in result.verdict
    assert {"seat_utilisation_30d", "price_increases_365d"} <= set(summary["drifted_features"])
    assert summary["model_version"] == "3" and summary["performance"][1]["auc"] == 0.78
    page = result.html.read_text()
    assert result.verdict in page.replace("&#x27;", "'") and "data:image/png;base64," in page
    assert "evidently.html" in page

    client = MlflowClient(uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == client.get_experiment_by_name(report.EXPERIMENT).experiment_id
    assert run.data.tags["model_version"] == "3"
    assert run.data.tags["model_run_id"] == "abc123"
    assert run.data.tags["drift"] == "true"
    assert run.data.metrics["drift"] == 1.0
    assert run.data.metrics["latest_auc"] == pytest.approx(0.78)
    assert run.data.metrics["drift_seat_utilisation_30d"] > 0.15
    logged = {f.path for f in client.list_artifacts(result.mlflow_run_id, "monitoring")}
    assert {"monitoring/index.html", "monitoring/summary.json"} <= logged

    again = report.run_monitor(ref, cur, FEW, FEW_CAT, tmp_path / "reports", now=NOW)
    assert again.path.name == "monitor-20261102T063000Z-1"  # never overwrites a report
    assert again.mlflow_run_id is None


def test_a_failure_midway_leaves_no_folder(tmp_path: Path, stable_pair, monkeypatch) -> None:
    ref, cur = stable_pair
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def broken_plot(perf: pd.DataFrame) -> str:
        raise RuntimeError("plotting failed")

    # the Evidently HTML is written by then; the plot that follows fails
    monkeypatch.setattr(report, "_performance_plot", broken_plot)
    with pytest.raises(RuntimeError, match="plotting failed"):
        report.run_monitor(ref, cur, FEW, FEW_CAT, tmp_path / "reports", tracking_uri=uri)
    assert list((tmp_path / "reports").iterdir()) == []
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(report.EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FAILED"


def test_empty_current_batch_still_reports(tmp_path: Path, stable_pair) -> None:
    ref, cur = stable_pair
    result = report.run_monitor(
        ref, cur.iloc[:0], FEW, FEW_CAT, tmp_path, config=DriftConfig(), now=NOW
    )
    assert not result.drift
    assert not (result.path / "evidently.html").exists()
    summary = json.loads(result.summary_json.read_text())
    assert set(summary["not_judged"]) >= set(FEW)
    assert "nothing could be judged" in result.html.read_text()
