"""Configured limits and the API key: required on every endpoint but the probes when set,
compared in constant time, refused with a JSON 401."""

from __future__ import annotations

import pytest

from tests.serving.conftest import changed, serve_asgi

KEY = "k3y-with-enough-entropy-0123456789"


@pytest.fixture(scope="module")
def client(served: dict):
    config = changed(served["config"], api_key=KEY, max_ids=5, max_body_bytes=4096)
    with serve_asgi(config) as c:
        yield c


@pytest.fixture(scope="module")
def ids(served: dict) -> list[str]:
    return list(served["batch"].scores["account_id"].iloc[:5])


def test_probes_stay_open(client) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("key", [None, "", "wrong", KEY.upper(), KEY + " ", KEY[:-1]])
def test_endpoints_need_the_key(client, ids, key) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    for path, body in [
        ("/score", {"account_ids": ids}),
        ("/score_features", {"accounts": [{"account_id": "X"}]}),
    ]:
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["detail"][0]["loc"] == ["header", "X-API-Key"]
    assert client.get("/docs.json", headers=headers).status_code == 401
    assert client.get("/metrics", headers=headers).status_code == 401


def test_the_key_opens_them(client, ids) -> None:
    r = client.post("/score", json={"account_ids": ids}, headers={"X-API-Key": KEY})
    assert r.status_code == 200 and len(r.json()["results"]) == 5
    r = client.post(
        "/score_features", json={"accounts": [{"account_id": "X"}]}, headers={"x-api-key": KEY}
    )
    assert r.status_code == 200


def test_configured_limits(client, ids) -> None:
    headers = {"X-API-Key": KEY}
    r = client.post("/score", json={"account_ids": [*ids, "one-too-many"]}, headers=headers)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["account_ids"]
    assert "at most 5" in r.json()["detail"][0]["msg"]
    r = client.post("/score", json={"account_ids": ["A" * 1000] * 5}, headers=headers)
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body"]
    r = client.post("/score", json={"account_ids": ["A" * 129]}, headers=headers)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["account_ids", 0]
