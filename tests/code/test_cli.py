"""The `healthscore` CLI, driven as a user would (Typer's runner, real data in tmp folders)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from healthscore.cli import app

runner = CliRunner()
COMMANDS = [
    "generate",
    "validate",
    "demo",
    "features apply",
    "features materialize",
    "features show",
    "train",
    "compare",
    "promote",
    "score",
    "serve",
]


def test_root_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in COMMANDS:
        assert cmd.split()[0] in result.output


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help_with_an_example(cmd: str) -> None:
    result = runner.invoke(app, [*cmd.split(), "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"healthscore {cmd}" in result.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "healthscore"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout


def test_generate_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "book"
    result = runner.invoke(
        app, ["generate", "--accounts", "300", "--months", "6", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "ceiling AUC" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["accounts"] == 300 and manifest["config"]["seed"] == 2
    result = runner.invoke(app, ["validate", str(out)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_damaged_copy_fails_naming_file_and_column(
    tmp_path: Path, book: tuple[Path, dict]
) -> None:
    data = tmp_path / "damaged"
    shutil.copytree(book[0], data)
    part = data / "surveys" / "part-00000.parquet"
    df = pq.read_table(part).to_pandas()
    df.loc[df["nps"].notna().idxmax(), "nps"] = 11
    df.to_parquet(part, index=False)
    before = sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*"))
    result = runner.invoke(app, ["validate", str(data)])
    assert result.exit_code == 1
    assert "surveys" in result.output and "nps" in result.output
    assert sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*")) == before


def test_demo_runs_in_a_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["--workspace", str(ws), "demo", "--accounts", "300"])
    assert result.exit_code == 0, result.output
    assert (ws / "data" / "raw" / "manifest.json").exists()
    assert str(ws / "data" / "raw") in result.output.replace("\n", "")
    assert (ws / "features" / "usage.parquet").exists()
    # The online store now answers for a live account, grouped by domain...
    shown = runner.invoke(app, ["--workspace", str(ws), "features", "show", "A0000001"])
    assert shown.exit_code == 0, shown.output
    for domain in (
        "usage",
        "adoption",
        "engagement",
        "support",
        "satisfaction",
        "financial",
        "contract",
    ):
        assert domain in shown.output
    # ...and says clearly when it cannot.
    missing = runner.invoke(app, ["--workspace", str(ws), "features", "show", "NOPE"])
    assert missing.exit_code == 1 and "NOPE" in missing.output
    # The demo trained, registered and promoted the first champion, and showed the baselines.
    assert (ws / "mlflow.db").exists() and (ws / "mlartifacts").is_dir()
    for text in ("LightGBM", "scorecard", "logistic", "first champion"):
        assert text in result.output, text
    assert "accounts scored" in result.output and (ws / "scores" / "scores.parquet").exists()
    csv = runner.invoke(app, ["--workspace", str(ws), "score", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    assert (ws / "scores" / "scores.csv").exists() and "at-risk accounts" in csv.output
    compared = runner.invoke(app, ["--workspace", str(ws), "compare"])
    assert compared.exit_code == 0, compared.output
    assert "champion" in compared.output


def test_model_commands_explain_what_is_missing(tmp_path: Path) -> None:
    ws = ["--workspace", str(tmp_path / "empty")]
    result = runner.invoke(app, [*ws, "compare"])
    assert result.exit_code == 1 and "healthscore train" in result.output
    result = runner.invoke(app, [*ws, "promote"])
    assert result.exit_code == 1 and "healthscore train" in result.output
    result = runner.invoke(app, [*ws, "score"])
    assert result.exit_code == 1 and "healthscore train" in result.output
    result = runner.invoke(app, [*ws, "promote", "--force"])
    assert result.exit_code == 2 and "--reason" in result.output


def test_bad_configuration_exits_2_with_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("generate:\n  accounts: -5\n")
    result = runner.invoke(app, ["--config", str(cfg), "generate", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "generate.accounts" in result.output
    assert not (tmp_path / "x").exists()


def test_help_shows_defaults_that_markup_could_swallow() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "[default: ./.healthscore]" in result.output


def test_serve_hands_the_settings_to_the_service(tmp_path: Path) -> None:
    from healthscore import pipeline
    from healthscore.settings import load_settings
    from serving.schemas import service_config_from_env, service_config_to_env

    cfg = tmp_path / "c.yaml"
    cfg.write_text("serving:\n  api_key: s3cret\n  max_ids: 50\nscoring:\n  top_drivers: 5\n")
    settings = load_settings(cfg, workspace=tmp_path / "ws")
    config = service_config_from_env(service_config_to_env(pipeline.service_config(settings)))
    assert config.api_key.get_secret_value() == "s3cret" and config.max_ids == 50
    assert config.top_drivers == 5 and config.model_alias == "champion"
    assert str(config.store.repo_dir) == str(tmp_path / "ws" / "feature_repo")
    assert config.tracking_uri == settings.mlflow_tracking_uri
