"""Settings: YAML < environment < explicit overrides; errors name the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from healthscore.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.workspace == Path(".healthscore")
    assert s.data_dir == Path(".healthscore/data/raw")
    assert s.stores.online_store == "sqlite"
    assert s.mlflow_tracking_uri.startswith("sqlite:///")


def test_committed_yaml_matches_the_code_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    from_file = load_settings(REPO / "healthscore.yaml")
    monkeypatch.chdir(REPO / "tests")  # no healthscore.yaml here
    assert from_file.model_dump() == load_settings().model_dump()


def test_precedence_yaml_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "hs.yaml"
    cfg.write_text("workspace: from-yaml\ngenerate:\n  accounts: 10\n  seed: 5\n")
    s = load_settings(cfg)
    assert (s.workspace, s.generate.accounts, s.generate.seed) == (Path("from-yaml"), 10, 5)
    monkeypatch.setenv("HEALTHSCORE_GENERATE__ACCOUNTS", "20")
    s = load_settings(cfg)
    assert (s.generate.accounts, s.generate.seed, s.generate.months) == (20, 5, 24)
    monkeypatch.setenv("HEALTHSCORE_WORKSPACE", "from-env")
    assert load_settings(cfg).workspace == Path("from-env")
    assert load_settings(cfg, workspace=Path("from-flag")).workspace == Path("from-flag")
    assert load_settings(cfg, workspace=None).workspace == Path("from-env")


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("stores:\n  online_store: redis\n")
    monkeypatch.setenv("HEALTHSCORE_CONFIG", str(cfg))
    assert load_settings().stores.online_store == "redis"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("generate:\n  acounts: 10\n", "generate.acounts"),
        ("generate:\n  accounts: many\n", "generate.accounts"),
        ("stores:\n  online_store: cassandra\n", "stores.online_store"),
        ("generate:\n  segment_mix: {smb: 1.0}\n", "segment_mix"),
    ],
)
def test_invalid_yaml_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value) and field in str(exc.value)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_importing_does_nothing(tmp_path: Path) -> None:
    """No module creates folders, reads config or sets tracking URIs when imported."""
    code = (
        "import healthscore.cli, healthscore.pipeline, healthscore.settings, features.contract,"
        " features.io, features.validation, features.synthetic.generator, training, serving,"
        " monitoring"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []
