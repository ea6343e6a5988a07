"""The service on the production online store: Redis (skipped locally without it; CI=true
requires it)."""

from __future__ import annotations

import shutil
import socket
import threading
import uuid

import pytest

from features import store as fs
from tests.conftest import require_service
from tests.serving.conftest import AS_OF, changed, serve_asgi


@pytest.mark.redis
def test_scores_from_redis_equal_batch_scores(served: dict, tmp_path) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    project = f"hs_serve_{uuid.uuid4().hex[:8]}"
    cfg = fs.StoreConfig(
        repo_dir=tmp_path / "repo",
        feature_dir=served["config"].store.feature_dir,
        online_store="redis",
        project=project,
    )
    store = fs.open_store(cfg)
    objects = fs.definitions(cfg.feature_dir)
    store.apply(objects)
    try:
        fs.materialize(store, AS_OF)
        scores = served["batch"].scores.set_index("account_id")
        ids = list(scores.index[:: max(1, len(scores) // 50)])
        with serve_asgi(changed(served["config"], store=cfg)) as client:
            r = client.post("/score", json={"account_ids": [*ids, "NOPE"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [e["account_id"] for e in body["errors"]] == ["NOPE"]  # Redis says PRESENT
        assert [x["account_id"] for x in body["results"]] == ids
        for x in body["results"]:
            row = scores.loc[x["account_id"]]
            assert x["renewal_probability"] == row["renewal_probability"]
            assert (x["tier"], x["actions"]) == (row["tier"], list(row["actions"]))
            assert x["drivers"]["negative"] == list(row["drivers_negative"])
            assert x["features_as_of"] == "2026-11-01T00:00:00Z"
    finally:
        store.apply([], objects_to_delete=objects, partial=False)
        shutil.rmtree(tmp_path / "repo", ignore_errors=True)


def test_a_redis_that_drops_connections_fails_at_once_without_retries(served: dict) -> None:
    """A server that accepts and closes every connection: the online read raises after one
    connection (redis-py's default would retry three times with a growing back-off)."""
    accepted: list[int] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(0.2)
        port = server.getsockname()[1]
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        cfg = served["config"].store
        dead = fs.StoreConfig(
            repo_dir=cfg.repo_dir,
            feature_dir=cfg.feature_dir,
            online_store="redis",
            redis_connection=f"127.0.0.1:{port}",
        )
        try:
            with pytest.raises(Exception, match=r"(?i)connection"):
                fs.online_features(fs.open_store(dead), ["A0000001"])
        finally:
            stop.set()
            thread.join(5)
    assert len(accepted) == 1
