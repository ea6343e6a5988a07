"""The service through HTTP (in process): scores by id and from posted features, equal to batch
scoring for the same accounts and day; health probes; every kind of bad input a 4xx JSON error
that names the field."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features import store as fstore
from healthscore import pipeline
from serving import batch
from serving.online import FeatureSpec, bounds, feature_errors, lookup
from serving.schemas import AccountFeatures
from tests.serving.conftest import AS_OF, serve_asgi

FEATURES_AS_OF = "2026-11-01T00:00:00Z"  # day AS_OF's snapshot is stamped the next midnight


@pytest.fixture(scope="module")
def client(served: dict):
    with serve_asgi(served["config"]) as c:
        yield c


@pytest.fixture(scope="module")
def snapshot(served: dict) -> pd.DataFrame:
    store = fstore.open_store(pipeline.store_config(served["settings"]))
    return batch.snapshot(store, AS_OF)


def _batch_rows(served: dict, ids: list[str]) -> pd.DataFrame:
    return served["batch"].scores.set_index("account_id").loc[ids]


def _assert_same_as_batch(result: dict, row: pd.Series, version: str) -> None:
    assert result["renewal_probability"] == row["renewal_probability"]  # exact: same computation
    assert result["health_score"] == row["health_score"]
    assert result["tier"] == row["tier"] and result["tier_colour"] == row["tier_colour"]
    assert result["actions"] == list(row["actions"])
    assert result["drivers"]["negative"] == list(row["drivers_negative"])
    assert result["drivers"]["positive"] == list(row["drivers_positive"])
    domains = {c.removeprefix("domain_"): row[c] for c in row.index if c.startswith("domain_")}
    assert result["domains"] == domains
    assert result["model_version"] == version == row["model_version"]


def _json_value(v: object) -> object:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


# -- health ----------------------------------------------------------------------------------


def test_probes_answer(client) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


# -- by id -----------------------------------------------------------------------------------


def test_online_scores_equal_batch_scores_for_the_same_accounts_and_day(served, client) -> None:
    """The online store was materialized as of the day batch scored: same inputs, same outputs."""
    scores = served["batch"].scores
    ids = list(scores["account_id"].iloc[:: max(1, len(scores) // 120)])
    r = client.post("/score", json={"account_ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] == [] and [x["account_id"] for x in body["results"]] == ids
    version = served["batch"].model_version
    assert body["model_version"] == version
    rows = _batch_rows(served, ids)
    for result in body["results"]:
        _assert_same_as_batch(result, rows.loc[result["account_id"]], version)
        assert result["features_as_of"] == FEATURES_AS_OF
    # one account alone gives the same answer as within a batch
    single = client.post("/score", json={"account_ids": [ids[3]]}).json()["results"][0]
    assert single == body["results"][3]


def test_unknown_ids_are_item_errors_beside_the_results(served, client) -> None:
    known = served["batch"].scores["account_id"].iloc[0]
    r = client.post("/score", json={"account_ids": ["NOPE-1", known, "NOPE-2", known]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["account_id"] for x in body["results"]] == [known]  # duplicates scored once
    assert [e["account_id"] for e in body["errors"]] == ["NOPE-1", "NOPE-2"]
    assert all("unknown account" in e["error"] for e in body["errors"])
    only_unknown = client.post("/score", json={"account_ids": ["NOPE-3"]})
    assert only_unknown.status_code == 200 and only_unknown.json()["results"] == []


def test_lookup_agrees_with_the_feature_store(served) -> None:
    """serving.online.lookup reads timestamps too; values and `found` are those of
    features.store.online_features."""
    store = fstore.open_store(pipeline.store_config(served["settings"]))
    ids = [*served["batch"].scores["account_id"].iloc[:20], "NOPE"]
    service = store.get_feature_service("account_health_v1")
    ours = lookup(store, service, ids)
    theirs = fstore.online_features(store, ids)
    pd.testing.assert_frame_equal(ours.drop(columns="features_as_of"), theirs)
    assert ours["features_as_of"].iloc[:-1].eq(pd.Timestamp(FEATURES_AS_OF)).all()
    assert pd.isna(ours["features_as_of"].iloc[-1])


# -- from posted features ----------------------------------------------------------------------


def test_posted_features_score_like_batch(served, client, snapshot) -> None:
    model_features = [c for c in snapshot.columns if c not in ("account_id", "features_as_of")]
    valid = snapshot[snapshot["open_tickets"].fillna(0) >= 0]  # see the next test
    rows = valid.iloc[:: max(1, len(valid) // 40)]
    accounts = [
        {
            "account_id": r["account_id"],
            "features": {f: _json_value(r[f]) for f in model_features},
        }
        for _, r in rows.iterrows()
    ]
    r = client.post("/score_features", json={"accounts": accounts})
    assert r.status_code == 200, r.text
    body = r.json()
    batch_rows = _batch_rows(served, list(rows["account_id"]))
    for result in body["results"]:
        _assert_same_as_batch(result, batch_rows.loc[result["account_id"]], body["model_version"])
        assert result["features_as_of"] is None


def test_the_served_features_pass_the_posted_feature_checks(client, snapshot) -> None:
    """The range rules accept every real snapshot, except negative `open_tickets`: the feature
    SQL can count more resolutions than openings (a data bug, not a valid input)."""
    specs = _specs(client)
    names = [c for c in snapshot.columns if c not in ("account_id", "features_as_of")]
    accounts = [
        AccountFeatures(
            account_id=str(a),
            features={f: _json_value(v) for f, v in zip(names, vals, strict=True)},
        )
        for a, *vals in snapshot[["account_id", *names]].itertuples(index=False)
    ]
    errors = feature_errors(accounts, specs)
    assert {loc[-1] for loc, _, _ in errors} <= {"open_tickets"}, errors[:5]


def test_missing_features_are_allowed(client) -> None:
    r = client.post("/score_features", json={"accounts": [{"account_id": "X", "features": {}}]})
    assert r.status_code == 200, r.text
    r = client.post(
        "/score_features",
        json={"accounts": [{"account_id": "Y", "features": {"segment": "smb", "arr": None}}]},
    )
    assert r.status_code == 200 and 0 <= r.json()["results"][0]["health_score"] <= 100


def _specs(client) -> dict[str, FeatureSpec]:
    from _bentoml_sdk.service import get_current_service  # the instance behind `client`

    return get_current_service().scorer.specs


def test_feature_bounds_come_from_names_and_descriptions() -> None:
    assert bounds("nps_latest", "latest NPS answer (0-10)") == (0.0, 10.0)
    assert bounds("ticket_csat_90d", "mean ticket satisfaction (1-5), last 90 days") == (1.0, 5.0)
    assert bounds("active_users_trend_30d_vs_prior_60d", "change in ...") == (None, None)
    assert bounds("nps_change", "latest NPS answer minus the one before") == (None, None)
    assert bounds("discount_pct", "discount on the latest invoice, percent") == (0.0, 100.0)
    assert bounds("sev1_tickets_90d", "severity-1 tickets opened") == (0.0, None)


# -- bad input -------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}
ONE = {"account_id": "X"}


def _features(**values: object) -> dict:
    return {"accounts": [{"account_id": "X", "features": values}]}


BAD = [
    # (id, path, body (str: sent as is), headers, status, location that must be named)
    ("empty body", "/score", "", JSON, 400, ["account_ids"]),
    ("invalid json", "/score", '{"account_ids": [', JSON, 400, []),
    ("not an object", "/score", "[1, 2]", JSON, 400, []),
    ("ids not a list", "/score", {"account_ids": "A0000001"}, JSON, 400, ["account_ids"]),
    ("id a number", "/score", {"account_ids": [17]}, JSON, 400, ["account_ids", 0]),
    ("null id", "/score", {"account_ids": ["A1", None]}, JSON, 400, ["account_ids", 1]),
    ("null ids", "/score", {"account_ids": None}, JSON, 400, ["account_ids"]),
    ("empty id", "/score", {"account_ids": [""]}, JSON, 400, ["account_ids", 0]),
    ("no ids", "/score", {"account_ids": []}, JSON, 400, ["account_ids"]),
    ("too many ids", "/score", {"account_ids": ["A"] * 1001}, JSON, 400, ["account_ids"]),
    ("unknown field", "/score", {"account_ids": ["A"], "as_of": 1}, JSON, 400, ["as_of"]),
    ("NaN id", "/score", '{"account_ids": [NaN]}', JSON, 400, ["account_ids", 0]),
    (
        "text/plain",
        "/score",
        '{"account_ids": ["A"]}',
        {"content-type": "text/plain"},
        415,
        ["header", "Content-Type"],
    ),
    (
        "form",
        "/score",
        "account_ids=A",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        ["header", "Content-Type"],
    ),
    (
        "multipart",
        "/score",
        "--x--",
        {"content-type": "multipart/form-data; boundary=x"},
        415,
        ["header", "Content-Type"],
    ),
    (
        "pickle",
        "/score",
        "x",
        {"content-type": "application/vnd.bentoml+pickle"},
        415,
        ["header", "Content-Type"],
    ),
    ("no accounts", "/score_features", {"accounts": []}, JSON, 400, ["accounts"]),
    (
        "null account id",
        "/score_features",
        {"accounts": [{"account_id": None}]},
        JSON,
        400,
        ["accounts", 0, "account_id"],
    ),
    (
        "features a list",
        "/score_features",
        {"accounts": [{**ONE, "features": [1]}]},
        JSON,
        400,
        ["accounts", 0, "features"],
    ),
    ("too many accounts", "/score_features", {"accounts": [ONE] * 1001}, JSON, 400, ["accounts"]),
    (
        "unknown feature",
        "/score_features",
        _features(logins_7d=3),
        JSON,
        400,
        ["accounts", 0, "features", "logins_7d"],
    ),
    (
        "text for a number",
        "/score_features",
        _features(sev1_tickets_90d="3"),
        JSON,
        400,
        ["accounts", 0, "features", "sev1_tickets_90d"],
    ),
    (
        "bool for a number",
        "/score_features",
        _features(arr=True),
        JSON,
        400,
        ["accounts", 0, "features", "arr"],
    ),
    (
        "number for the category",
        "/score_features",
        _features(segment=2),
        JSON,
        400,
        ["accounts", 0, "features", "segment"],
    ),
    (
        "unknown category",
        "/score_features",
        _features(segment="startup"),
        JSON,
        400,
        ["accounts", 0, "features", "segment"],
    ),
    (
        "number for a flag",
        "/score_features",
        _features(has_tickets_90d=1),
        JSON,
        400,
        ["accounts", 0, "features", "has_tickets_90d"],
    ),
    (
        "object for a number",
        "/score_features",
        _features(arr={"usd": 1}),
        JSON,
        400,
        ["accounts", 0, "features", "arr"],
    ),
    (
        "NaN feature",
        "/score_features",
        '{"accounts": [{"account_id": "X", "features": {"arr": NaN}}]}',
        JSON,
        400,
        ["accounts", 0, "features", "arr"],
    ),
    (
        "infinite feature",
        "/score_features",
        '{"accounts": [{"account_id": "X", "features": {"logins_30d": Infinity}}]}',
        JSON,
        400,
        ["accounts", 0, "features", "logins_30d"],
    ),
    (
        "overflowing feature",
        "/score_features",
        '{"accounts": [{"account_id": "X", "features": {"logins_30d": 1e999}}]}',
        JSON,
        400,
        ["accounts", 0, "features", "logins_30d"],
    ),
    (
        "huge integer",
        "/score_features",
        _features(seats=10**30),
        JSON,
        400,
        ["accounts", 0, "features", "seats"],
    ),
    (
        "negative count",
        "/score_features",
        _features(sev1_tickets_90d=-1),
        JSON,
        400,
        ["accounts", 0, "features", "sev1_tickets_90d"],
    ),
    (
        "negative days",
        "/score_features",
        _features(days_since_last_login=-5),
        JSON,
        400,
        ["accounts", 0, "features", "days_since_last_login"],
    ),
    (
        "NPS above 10",
        "/score_features",
        _features(nps_latest=11),
        JSON,
        400,
        ["accounts", 0, "features", "nps_latest"],
    ),
    (
        "fractional count",
        "/score_features",
        _features(tickets_90d=2.5),
        JSON,
        400,
        ["accounts", 0, "features", "tickets_90d"],
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "loc"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_a_4xx_json_error_naming_the_field(
    client, path, body, headers, status, loc
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    r = client.post(path, content=content, headers=headers)
    assert r.status_code == status, r.text
    error = r.json()
    assert isinstance(error["error"], str) and "Traceback" not in r.text
    assert loc in [d["loc"] for d in error["detail"]], error


def test_every_bad_field_of_a_request_is_named(client) -> None:
    r = client.post(
        "/score_features", json=_features(segment=1, nps_latest=-1, zzz=0, arr=10, seats=3)
    )
    assert r.status_code == 400
    named = {d["loc"][-1] for d in r.json()["detail"]}
    assert named == {"segment", "nps_latest", "zzz"}


def test_oversized_bodies_are_refused(client) -> None:
    big = '{"account_ids": ["' + "A" * (9 * 1024 * 1024) + '"]}'
    r = client.post("/score", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body"]

    def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"account_ids": ["'
        for _ in range(10):
            yield b"A" * (1024 * 1024)
        yield b'"]}'

    r = client.post("/score", content=chunks(), headers=JSON)
    assert r.status_code == 413, r.text


def test_wrong_method_and_path(client) -> None:
    r = client.get("/score")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["detail"][0]["loc"] == ["method"]
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path"]
    assert client.get("/docs.json").status_code == 200  # BentoML's own routes still answer


def test_the_server_stays_up_after_bad_input(served, client) -> None:
    for body in ["", "{", "null", '{"account_ids": [null]}', "\x00\xff"]:
        assert client.post("/score", content=body, headers=JSON).status_code == 400
    known = served["batch"].scores["account_id"].iloc[0]
    assert client.post("/score", json={"account_ids": [known]}).status_code == 200
    assert client.get("/readyz").status_code == 200
