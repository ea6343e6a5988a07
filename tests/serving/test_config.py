"""The service's configuration contract and its import-time behaviour (no workspace needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from features.store import StoreConfig, redis_connection_string
from serving.schemas import (
    SERVICE_CONFIG_ENV,
    ServiceConfig,
    service_config_from_env,
    service_config_to_env,
)
from tests.serving.conftest import REPO


def _config(**overrides) -> ServiceConfig:
    store = StoreConfig(repo_dir=Path("/ws/feature_repo"), feature_dir=Path("/ws/features"))
    return ServiceConfig(tracking_uri="sqlite:////ws/mlflow.db", store=store, **overrides)


def test_the_config_travels_in_one_variable_with_its_key() -> None:
    config = _config(api_key="s3cret", max_ids=10, poll_seconds=5, playbooks={"healthy": ["x"]})
    env = service_config_to_env(config)
    assert list(env) == [SERVICE_CONFIG_ENV]
    back = service_config_from_env(env)
    assert back == config and back.api_key.get_secret_value() == "s3cret"
    assert back.store == config.store and isinstance(back.store.repo_dir, Path)
    assert "s3cret" not in repr(config) and "s3cret" not in config.model_dump_json()


def test_defaults() -> None:
    config = service_config_from_env(
        {
            SERVICE_CONFIG_ENV: json.dumps(
                {"tracking_uri": "x", "store": {"repo_dir": "r", "feature_dir": "f"}}
            )
        }
    )
    assert (config.model_alias, config.max_ids, config.poll_seconds) == ("champion", 1000, 30.0)
    assert config.api_key is None and config.store.online_store == "sqlite"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("{not json", "invalid service configuration"),
        ('{"tracking_uri": "x"}', "store"),
        (
            '{"tracking_uri": "x", "store": {"repo_dir": "r", "feature_dir": "f"}, "max_id": 3}',
            "max_id",
        ),
        (
            '{"tracking_uri": "x", "store": {"repo_dir": "r", "feature_dir": "f"}, "max_ids": 0}',
            "max_ids",
        ),
    ],
)
def test_a_missing_or_invalid_config_is_named(value, says) -> None:
    env = {} if value is None else {SERVICE_CONFIG_ENV: value}
    with pytest.raises(RuntimeError, match=SERVICE_CONFIG_ENV) as err:
        service_config_from_env(env)
    assert says in str(err.value)


def test_importing_the_service_does_nothing(tmp_path: Path) -> None:
    """No configuration read, no file written, no model loaded when the module is imported."""
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import sys, serving.service as s, serving.online, serving.schemas\n"
        "assert s.HealthScore.name == 'healthscore'\n"
        "assert 'mlflow' not in sys.modules and 'feast' not in sys.modules\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["home"]


def test_the_service_refuses_to_start_without_its_config(monkeypatch) -> None:
    from serving.service import HealthScore
    from tests.serving.conftest import _forget_bentoml_metrics, _test_client

    monkeypatch.delenv(SERVICE_CONFIG_ENV, raising=False)
    client = _test_client()(HealthScore.to_asgi())
    try:
        with pytest.raises(RuntimeError, match=SERVICE_CONFIG_ENV):
            client.__enter__()
    finally:
        _forget_bentoml_metrics()


def test_workers_and_threads_travel_in_the_config() -> None:
    from serving.schemas import concurrency_from_env

    assert concurrency_from_env({}) == (2, 1)  # absent: the defaults (the start then fails)
    env = service_config_to_env(_config(workers=3, threads=4))
    assert concurrency_from_env(env) == (3, 4)
    bad = {"tracking_uri": "x", "store": {"repo_dir": "r", "feature_dir": "f"}, "workers": 0}
    with pytest.raises(RuntimeError, match="workers"):
        service_config_from_env({SERVICE_CONFIG_ENV: json.dumps(bad)})


def test_redis_fails_fast_unless_the_connection_string_says_otherwise() -> None:
    base = StoreConfig(repo_dir=Path("r"), feature_dir=Path("f"), online_store="redis")
    assert redis_connection_string(base) == (
        "127.0.0.1:6379,socket_connect_timeout=1,socket_timeout=1,retry=null"
    )
    own = StoreConfig(
        repo_dir=Path("r"),
        feature_dir=Path("f"),
        redis_connection="redis:6379,db=2,socket_timeout=5",
        redis_timeout_seconds=0.5,
    )
    assert redis_connection_string(own) == (
        "redis:6379,db=2,socket_timeout=5,socket_connect_timeout=0.5,retry=null"
    )
