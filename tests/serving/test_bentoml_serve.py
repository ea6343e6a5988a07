"""The service as an application runs it: `bentoml serve` in its own process, over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving.schemas import service_config_to_env
from tests.serving.conftest import REPO, changed, free_port, wait_ready

KEY = "serve-test-key"


@pytest.fixture(scope="module")
def server(served: dict, tmp_path_factory: pytest.TempPathFactory):
    """`bentoml serve serving.service:HealthScore --port N` (the command `healthscore serve`
    runs), with the host left to the service's default."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("bentoml")
    config = changed(served["config"], api_key=KEY)
    env = {**os.environ, **service_config_to_env(config), "BENTOML_HOME": str(tmp / "home")}
    log = tmp / "serve.log"
    bentoml = Path(sys.executable).parent / "bentoml"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(bentoml), "serve", "serving.service:HealthScore", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers die with it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(lambda path: httpx.get(base + path, timeout=5), 240)
        yield {"base": base, "log": log, "proc": proc}
    except AssertionError:
        raise AssertionError(log.read_text()[-3000:]) from None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_serve_answers_readyz_and_score(served: dict, server: dict) -> None:
    base = server["base"]
    assert httpx.get(base + "/livez").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    scores = served["batch"].scores.set_index("account_id")
    ids = list(scores.index[:3])
    r = httpx.post(
        base + "/score", json={"account_ids": [*ids, "NOPE"]}, headers={"X-API-Key": KEY}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["account_id"] for x in body["results"]] == ids and len(body["errors"]) == 1
    for x in body["results"]:
        assert x["renewal_probability"] == scores.loc[x["account_id"], "renewal_probability"]
        assert x["model_version"] == served["batch"].model_version


def test_serve_refuses_bad_requests_and_stays_up(server: dict) -> None:
    base, auth = server["base"], {"X-API-Key": KEY}
    assert httpx.post(base + "/score", json={"account_ids": ["A"]}).status_code == 401
    bad = httpx.post(base + "/score", content=b'{"account_ids": [', headers=auth)
    assert bad.status_code == 400 and "Traceback" not in bad.text
    huge = httpx.post(
        base + "/score",
        content=b'{"account_ids": ["' + b"A" * (9 * 1024 * 1024) + b'"]}',
        headers={**auth, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert httpx.get(base + "/readyz").status_code == 200
    assert server["proc"].poll() is None


def test_serve_binds_localhost_by_default(server: dict) -> None:
    port = server["base"].rsplit(":", 1)[1]
    assert f"listening on http://127.0.0.1:{port}" in server["log"].read_text()
