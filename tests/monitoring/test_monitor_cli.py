"""`healthscore monitor` end to end on a trained, promoted and scored workspace: the report folder,
the verdict line, MLflow, and `--fail-on-drift`'s exit status following the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from healthscore import pipeline
from healthscore.cli import app
from tests.model.conftest import trained, workspace_copy  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def scored(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    root = tmp_path_factory.mktemp("monitor")
    settings = workspace_copy(trained, root / "ws")
    pipeline.promote(settings, None, force=False, reason="")
    pipeline.score(settings)
    return {"settings": settings, "root": root}


def invoke(scored: dict, config: str, *args: str):
    path = scored["root"] / "healthscore.yaml"
    path.write_text(config)
    ws = str(scored["settings"].workspace)
    return runner.invoke(app, ["--config", str(path), "--workspace", ws, "monitor", *args])


def latest_summary(scored: dict) -> tuple[Path, dict]:
    folder = sorted((scored["settings"].workspace / "monitoring").glob("monitor-*"))[-1]
    return folder, json.loads((folder / "summary.json").read_text())


def test_monitor_writes_the_report_and_its_verdict(scored: dict) -> None:
    result = invoke(scored, "training:\n  seed: 7\n", "--fail-on-drift")
    folder, summary = latest_summary(scored)
    assert result.exit_code == (3 if summary["drift"] else 0), result.output
    assert "verdict:" in result.output
    assert {"index.html", "evidently.html", "summary.json"} <= {p.name for p in folder.iterdir()}
    assert summary["model_version"] == "1"
    assert summary["rows"]["current"] == len(pd_scores(scored))
    run = MlflowClient(scored["settings"].mlflow_tracking_uri).get_run(summary["mlflow_run_id"])
    assert run.data.tags["model_version"] == "1"


def test_fail_on_drift_exits_3_when_drift_is_found(scored: dict) -> None:
    # A threshold no real book passes: every judged numeric feature counts as drifted.
    config = (
        "training:\n  seed: 7\nmonitoring:\n  num_threshold: 0.000001\n  min_drifted: 1\n"
        "  significance: null\n"
    )
    result = invoke(scored, config, "--fail-on-drift")
    _, summary = latest_summary(scored)
    assert summary["drift"] is True
    assert result.exit_code == 3, result.output
    assert "retrain recommended" in result.output
    assert invoke(scored, config).exit_code == 0  # without the flag the run itself succeeded


def test_monitor_needs_a_score_run(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    settings = workspace_copy(trained, tmp_path / "ws")
    pipeline.promote(settings, None, force=False, reason="")
    result = runner.invoke(app, ["--workspace", str(settings.workspace), "monitor"])
    assert result.exit_code == 1
    assert "healthscore score" in result.output


def pd_scores(scored: dict):
    import pandas as pd

    return pd.read_parquet(scored["settings"].scores_dir / "scores.parquet")
