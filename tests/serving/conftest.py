"""A trained, promoted and materialized workspace, and the service running on it in-process.

The workspace is the one `tests/model` trains (fixtures re-exported below); each test module that
changes the registry works on its own copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from healthscore import pipeline
from serving.schemas import ServiceConfig, service_config_to_env
from tests.model.conftest import trained, workspace_copy  # noqa: F401  (fixtures)

AS_OF = date(2026, 10, 31)  # the end of the shared book: batch scores and the online store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """BentoML's own deprecation warnings (pathspec patterns, pydantic schema hooks) are not
    ours to fix: silence them for these tests."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:pathspec.*"))
            item.add_marker(pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`"))


def service_config(settings, **overrides: object) -> ServiceConfig:
    """The service configuration `healthscore serve` would build from `settings`."""
    sc = settings.scoring
    values = {
        "tracking_uri": settings.mlflow_tracking_uri,
        "registered_model": settings.training.registered_model,
        "model_alias": sc.model_alias,
        "store": pipeline.store_config(settings),
        "playbooks": sc.playbooks,
        "domain_actions": sc.domain_actions,
        "context_domains": sc.context_domains,
        "top_drivers": sc.top_drivers,
    }
    return ServiceConfig(**(values | overrides))


def changed(config: ServiceConfig, **changes: object) -> ServiceConfig:
    """`config` with `changes`, validated (pydantic's model_copy would not)."""
    return ServiceConfig(**(config.model_dump() | changes))


def prepare(settings, batch: bool = True):
    """Promote the trained challenger, load the online store as of AS_OF and (optionally) score
    the same day in batch: what `healthscore demo` leaves behind."""
    pipeline.promote(settings, None, force=False, reason="")
    pipeline.features_materialize(settings, AS_OF)
    return pipeline.score(settings, AS_OF) if batch else None


@pytest.fixture(scope="session")
def served(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    settings = workspace_copy(trained, tmp_path_factory.mktemp("serve") / "ws")
    run = prepare(settings)
    return {"settings": settings, "config": service_config(settings), "batch": run}


@contextlib.contextmanager
def serve_asgi(config: ServiceConfig, ready: bool = True, timeout: float = 180) -> Iterator:
    """The service's ASGI app behind Starlette's TestClient (real HTTP semantics, in process);
    waits for /readyz unless `ready` is False. Server errors come back as responses."""
    from serving.service import HealthScore

    TestClient = _test_client()
    env = service_config_to_env(config)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = TestClient(HealthScore.to_asgi(), raise_server_exceptions=False)
    try:
        client.__enter__()  # lifespan: the service reads its configuration now
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        if ready:
            wait_ready(client.get, timeout)
        yield client
    finally:
        client.__exit__(None, None, None)
        _forget_bentoml_metrics()


def _forget_bentoml_metrics() -> None:
    """BentoML registers its request metrics in prometheus_client's process-wide registry when
    an app starts; a second app in the same process (the next test) would register them again."""
    import prometheus_client

    registry = prometheus_client.REGISTRY
    for collector, names in list(registry._collector_to_names.items()):
        if any(n.startswith("bentoml_") for n in names):
            registry.unregister(collector)


def _test_client():
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():  # starlette would rather use httpx2, not in the lock
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.testclient import TestClient
    return TestClient


def wait_ready(get, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get("/readyz").status_code == 200:
                return
        except (OSError, httpx.TransportError):  # a real server not listening yet
            pass
        time.sleep(0.25)
    raise AssertionError(f"service not ready within {timeout} s")


def register_variant(settings, shift: float):  # -> (version, HealthModel)
    """Register a variant of the champion (its calibrator shifted by `shift` in log-odds) as a
    new version of the registered model, tagged with the champion's training run (so `promote`
    can compare them on its holdout); returns the version and the variant."""
    import mlflow

    from features import store as fstore
    from features.health_model import Calibrator
    from features.health_model_mlflow import load_health_model, log_health_model
    from serving import batch
    from training import tracking as trk

    t = pipeline.tracking(settings)
    client = trk.client(t)
    champion = client.get_model_version_by_alias(t.registered_model, trk.CHAMPION)
    model = load_health_model(f"models:/{t.registered_model}/{champion.version}")
    variant = dataclasses.replace(model, calibrator=Calibrator("platt", a=1.0, b=shift))
    example = batch.snapshot(fstore.open_store(pipeline.store_config(settings)), AS_OF).head(5)
    with mlflow.start_run(experiment_id=trk.experiment_id(t), run_name="variant"):
        info = log_health_model(variant, example)
    version = str(mlflow.register_model(info.model_uri, t.registered_model).version)
    run_id = champion.tags.get("run_id") or champion.run_id
    client.set_model_version_tag(t.registered_model, version, "run_id", run_id)
    return version, variant


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REPO = Path(__file__).resolve().parents[2]
