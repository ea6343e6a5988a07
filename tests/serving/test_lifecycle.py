"""Readiness and model updates: not ready until the model and the online store answer; a newly
promoted version is picked up while requests run, with no failed request."""

from __future__ import annotations

import threading
import time

from features import store as fstore
from features.store import StoreConfig
from healthscore import pipeline
from serving import batch
from tests.serving.conftest import (
    AS_OF,
    changed,
    prepare,
    register_variant,
    serve_asgi,
    service_config,
    wait_ready,
    workspace_copy,
)


def _snapshot(settings, n: int):
    store = fstore.open_store(pipeline.store_config(settings))
    return batch.snapshot(store, AS_OF).iloc[:n]


def _ids(settings, n: int) -> list[str]:
    return list(_snapshot(settings, n)["account_id"])


def test_not_ready_until_a_model_is_promoted(trained, tmp_path) -> None:
    settings = workspace_copy(trained, tmp_path / "ws")  # a challenger, no champion, no online data
    with serve_asgi(service_config(settings, poll_seconds=0.2), ready=False) as client:
        time.sleep(1.0)
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code == 503
        r = client.post("/score", json={"account_ids": ["A0000001"]})
        assert r.status_code == 503 and "not loaded" in r.json()["error"]
        pipeline.promote(settings, None, force=False, reason="")
        wait_ready(client.get, 60)
        ids = _ids(settings, 3)
        r = client.post("/score", json={"account_ids": ids})  # the online store is still empty
        assert r.status_code == 200 and len(r.json()["errors"]) == 3
        pipeline.features_materialize(settings, AS_OF)
        r = client.post("/score", json={"account_ids": ids})
        assert r.status_code == 200 and len(r.json()["results"]) == 3


def test_an_unreachable_online_store_is_not_ready_and_answers_503(served) -> None:
    cfg = served["config"].store
    dead = StoreConfig(
        repo_dir=cfg.repo_dir,
        feature_dir=cfg.feature_dir,
        online_store="redis",
        redis_connection="127.0.0.1:1",  # nothing listens there
    )
    config = changed(served["config"], store=dead, poll_seconds=0.2)
    with serve_asgi(config, ready=False) as client:
        time.sleep(3.0)
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code == 503
        r = client.post("/score", json={"account_ids": ["A0000001"]})
        assert r.status_code == 503 and "Traceback" not in r.text, r.text
        assert "online feature store (redis at 127.0.0.1:1)" in r.json()["error"]
        assert client.get("/readyz").status_code == 503


def test_a_promoted_version_is_served_without_a_failed_request(trained, tmp_path) -> None:
    settings = workspace_copy(trained, tmp_path / "ws")
    prepare(settings, batch=False)
    rows = _snapshot(settings, 4)
    ids = list(rows["account_id"])
    with serve_asgi(service_config(settings, poll_seconds=0.2)) as client:
        before = client.post("/score", json={"account_ids": ids}).json()
        old = before["model_version"]
        seen: list[list[tuple[int, str | None, list]]] = [[] for _ in range(4)]
        stop = threading.Event()

        def hammer(log: list) -> None:
            while not stop.is_set():
                r = client.post("/score", json={"account_ids": ids})
                body = r.json() if r.status_code == 200 else {}
                log.append((r.status_code, body.get("model_version"), body.get("results")))

        threads = [threading.Thread(target=hammer, args=(log,)) for log in seen]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            new, variant = register_variant(settings, shift=-1.0)
            promoted = pipeline.promote(settings, new, force=True, reason="test: swap under load")
            assert promoted.promoted, promoted
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                v == new for log in seen for _, v, _ in log
            ):
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    responses = [x for log in seen for x in log]
    assert responses and all(status == 200 for status, _, _ in responses)
    assert {v for _, v, _ in responses} == {old, new}
    for log in seen:  # per client: the old version, then only the new one
        versions = [v for _, v, _ in log]
        assert versions == sorted(versions, key=lambda v: v == new), versions
    by_version = {}
    for _, version, results in responses:
        assert all(r["model_version"] == version for r in results)
        probs = [r["renewal_probability"] for r in results]
        assert by_version.setdefault(version, probs) == probs  # a response is one model's
    assert by_version[old] == [r["renewal_probability"] for r in before["results"]]
    assert by_version[new] == list(variant.probability(rows))  # the new model's numbers
    assert by_version[new] != by_version[old]
