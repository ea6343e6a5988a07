"""GET / shows the dashboard `healthscore dashboard` wrote, behind the API key when one is set;
a JSON 404 says how to make it when it is missing."""

from __future__ import annotations

from healthscore import pipeline
from tests.serving.conftest import changed, serve_asgi

KEY = "dashboard-key-0123456789abcdef"


def test_dashboard_at_root(served: dict, tmp_path) -> None:
    settings = served["settings"]
    page, shown = pipeline.dashboard(settings, output=tmp_path / "dashboard.html")
    assert shown == len(served["batch"].scores)
    missing = changed(served["config"], dashboard_path=str(tmp_path / "nothing.html"))
    with serve_asgi(missing) as client:
        r = client.get("/")
        assert r.status_code == 404
        assert "healthscore dashboard" in r.json()["error"]
    config = changed(served["config"], dashboard_path=str(page), api_key=KEY)
    with serve_asgi(config) as client:
        assert client.get("/").status_code == 401  # the page holds account data
        r = client.get("/", headers={"X-API-Key": KEY})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.text == page.read_text(encoding="utf-8")
        assert (
            client.post("/score", json={"account_ids": []}, headers={"X-API-Key": KEY}).status_code
            != 404
        )


def test_service_config_points_at_the_workspace_dashboard(served: dict) -> None:
    config = pipeline.service_config(served["settings"])
    assert config.dashboard_path.endswith("scores/dashboard.html")
    assert config.workers == 2 and config.threads == 1
