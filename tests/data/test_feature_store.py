"""The feature store: SQL matches the catalog, point-in-time correct, no leakage, online store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features import engineering
from features import materialize as fm
from features import store as fs
from features.catalog import VIEWS
from features.io import read_source, write_parquet
from features.synthetic.generator import GeneratorConfig, generate_book
from tests.conftest import require_service

CUT = date(2026, 3, 15)
LEAD = 90


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fs")
    data = root / "raw"
    generate_book(GeneratorConfig(accounts=600, months=18, seed=21), data)
    engineering.build_feature_tables(data, root / "features")
    cfg = fs.StoreConfig(repo_dir=root / "repo", feature_dir=root / "features")
    store = fs.open_store(cfg)
    fs.apply(store, cfg)
    first_day = engineering.data_window(engineering.connect(data))[0]
    events = fs.label_events(read_source(data, "contracts"), LEAD, first_day=first_day)
    return {"root": root, "data": data, "cfg": cfg, "store": store, "events": events}


def test_sql_output_matches_the_catalog(built: dict) -> None:
    types = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
    for view in VIEWS:
        path = built["cfg"].feature_dir / f"{view.name}.parquet"
        schema = duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
        got = [(name, kind) for name, kind, *_ in schema]
        expected = [("account_id", "VARCHAR"), ("event_timestamp", "TIMESTAMP")] + [
            (f.name, types[f.type]) for f in view.features
        ]
        assert got == expected, view.name


# Every numeric feature's plausible range on a generated book. Shares are in [0, 1]; counts,
# levels, durations and money are never negative; the few signed features have their own floor.
SHARES = {
    "seat_utilisation_30d",
    "seats_assigned_share_30d",
    "email_open_rate_90d",
    "survey_response_rate_365d",
}
BOUNDED = {"nps_latest": (0, 10), "csat_180d": (1, 5), "ticket_csat_90d": (1, 5)}
# relative changes (>= -100 %) and differences/slopes (any sign)
RELATIVE = {
    "active_users_trend_30d_vs_prior_60d",
    "distinct_features_trend_30d_vs_prior_60d",
    "arr_change_365d",
}
SIGNED = {"nps_change", "active_users_slope_90d"}


def test_every_feature_is_in_its_plausible_range(built: dict) -> None:
    checked = set()
    for view in VIEWS:
        df = pd.read_parquet(built["cfg"].feature_dir / f"{view.name}.parquet")
        assert len(df) > 100_000, view.name
        for f in view.features:
            if f.type in ("string", "bool"):
                continue
            col = df[f.name].dropna().astype(float)
            assert len(col) > 0, f.name
            lo, hi = col.min(), col.max()
            if f.name in SHARES:
                assert lo >= 0.0 and hi <= 1.0, (f.name, lo, hi)
            elif f.name in BOUNDED:
                assert BOUNDED[f.name][0] <= lo and hi <= BOUNDED[f.name][1], (f.name, lo, hi)
            elif f.name in RELATIVE:
                assert lo >= -1.0, (f.name, lo)
            elif f.name not in SIGNED:
                assert lo >= 0, (f.name, lo)  # counts, levels, days, money
            checked.add(f.name)
    assert SHARES | set(BOUNDED) | RELATIVE | SIGNED <= checked
    # The open backlog and overdue invoices are states: some accounts do have some.
    support = pd.read_parquet(built["cfg"].feature_dir / "support.parquet")
    assert support["open_tickets"].max() > 0


def test_feature_service_is_the_catalog(built: dict) -> None:
    names = fs.feature_names(built["store"])
    assert names == [f.name for v in VIEWS for f in v.features]
    service = built["store"].get_feature_service("account_health_v1")
    for proj in service.feature_view_projections:
        for f in proj.features:
            assert f.description and f.tags["domain"] == proj.name


def test_feast_cli_reads_the_written_config(built: dict) -> None:
    feast = Path(sys.executable).parent / "feast"
    out = subprocess.run(
        [feast, "-c", str(built["cfg"].repo_dir), "feature-services", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "account_health_v1" in out.stdout


def test_committed_feast_repo_applies_the_same_definitions(
    built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`feast -c features/feature_repo apply` from a shell registers the catalog's service."""
    repo_root = Path(__file__).resolve().parents[2]
    feature_repo = repo_root / "features" / "feature_repo"
    before = {p.name for p in feature_repo.iterdir()} - {"__pycache__"}
    env = {
        "HEALTHSCORE_FEATURE_DIR": str(built["cfg"].feature_dir),
        "HEALTHSCORE_FEAST_REGISTRY": str(tmp_path / "registry.db"),
        "HEALTHSCORE_FEAST_ONLINE_PATH": str(tmp_path / "online.db"),
    }
    feast = Path(sys.executable).parent / "feast"
    for command in (["apply"], ["feature-services", "list"]):
        out = subprocess.run(
            [feast, "-c", "features/feature_repo", *command],
            cwd=repo_root,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
    assert "account_health_v1" in out.stdout
    # Nothing written into the source tree; the registry holds the catalog's features, in order.
    assert {p.name for p in feature_repo.iterdir()} - {"__pycache__"} == before
    assert (tmp_path / "registry.db").exists()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(feature_repo))
    assert fs.feature_names(store) == [f.name for v in VIEWS for f in v.features]


def test_training_set_equals_a_brute_force_as_of_join(built: dict) -> None:
    events = built["events"]
    got = fs.training_set(built["store"], events)
    assert len(got) == len(events)
    left = events.sort_values("event_timestamp").copy()
    left["ts"] = left["event_timestamp"].dt.tz_convert(None).astype("datetime64[us]")
    expected = left
    for view in VIEWS:
        snap = pd.read_parquet(built["cfg"].feature_dir / f"{view.name}.parquet")
        snap = snap.sort_values("event_timestamp").rename(columns={"event_timestamp": "ts"})
        snap["ts"] = snap["ts"].astype("datetime64[us]")
        expected = pd.merge_asof(
            expected.sort_values("ts"),
            snap,
            on="ts",
            by="account_id",
            direction="backward",
            tolerance=fs.SNAPSHOT_TTL,
        )
    expected = expected.sort_values(["account_id", "event_timestamp"]).reset_index(drop=True)
    assert (got["contract_id"].to_numpy() == expected["contract_id"].to_numpy()).all()
    for v in VIEWS:
        for f in v.features:
            a, b = got[f.name], expected[f.name]
            if f.type == "string":
                assert a.fillna("<na>").tolist() == b.fillna("<na>").tolist(), f.name
            else:
                np.testing.assert_allclose(
                    a.astype(float), b.astype(float), rtol=1e-9, equal_nan=True, err_msg=f.name
                )
    # For annual or longer terms the prediction point is LEAD days before the renewal date.
    # (For monthly terms it falls in an earlier term, whose renewal date the features describe.)
    annual = got[got["term_months"] >= 12]
    assert len(annual) > 100
    assert annual["days_to_renewal"].between(LEAD - 1, LEAD + 1).mean() > 0.95


def _truncate(data: Path, out: Path, cut: date) -> None:
    """The raw sources exactly as they were known at the end of `cut`."""
    end = pd.Timestamp(cut) + pd.Timedelta(days=1)
    day = pd.Timestamp(cut)
    t = {
        n: read_source(data, n)
        for n in (
            "accounts",
            "contracts",
            "usage",
            "engagement",
            "enablement",
            "tickets",
            "surveys",
            "invoices",
            "plan_changes",
        )
    }
    t["accounts"] = t["accounts"][t["accounts"]["created_at"] < end]
    c = t["contracts"][t["contracts"]["start_date"] <= day].copy()
    c.loc[c["end_date"] > day, "outcome"] = None
    t["contracts"] = c
    t["usage"] = t["usage"][t["usage"]["date"] <= day]
    for n in ("engagement", "enablement"):
        t[n] = t[n][t[n]["occurred_at"] < end]
    tk = t["tickets"][t["tickets"]["opened_at"] < end].copy()
    for col in ("first_response_at", "resolved_at"):
        tk.loc[tk[col] >= end, col] = pd.NaT
    tk.loc[tk["resolved_at"].isna(), "csat"] = pd.NA
    t["tickets"] = tk
    sv = t["surveys"][t["surveys"]["sent_at"] < end].copy()
    late = sv["responded_at"] >= end
    sv.loc[late, "responded_at"] = pd.NaT
    sv.loc[late, ["nps", "csat"]] = pd.NA
    t["surveys"] = sv
    inv = t["invoices"][t["invoices"]["issued_at"] <= day].copy()
    inv.loc[inv["paid_at"] > day, "paid_at"] = pd.NaT
    t["invoices"] = inv
    t["plan_changes"] = t["plan_changes"][t["plan_changes"]["changed_at"] <= day]
    for name, df in t.items():
        write_parquet(df, out / f"{name}.parquet")


def test_snapshots_use_no_data_from_after_their_day(built: dict, tmp_path: Path) -> None:
    """Rebuilding from data cut at day C gives the same day-C snapshot as the full history."""
    _truncate(built["data"], tmp_path / "cut", CUT)
    engineering.build_feature_tables(tmp_path / "cut", tmp_path / "features", as_of=CUT)
    ts = pd.Timestamp(CUT) + pd.Timedelta(days=1)
    for view in VIEWS:
        full = pd.read_parquet(built["cfg"].feature_dir / f"{view.name}.parquet")
        cut = pd.read_parquet(tmp_path / "features" / f"{view.name}.parquet")
        a = full[full["event_timestamp"] == ts].sort_values("account_id").reset_index(drop=True)
        b = cut[cut["event_timestamp"] == ts].sort_values("account_id").reset_index(drop=True)
        assert len(a) > 100
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=view.name)


def _canary_auc(built: dict, lead_days: int) -> float:
    """AUC of a feature that *is* the label, timestamped when the decision was made."""
    from feast import FeatureService, FeatureView, Field, FileSource
    from feast.types import Int64

    contracts = read_source(built["data"], "contracts").dropna(subset=["outcome"])
    canary = pd.DataFrame(
        {
            "account_id": contracts["account_id"],
            "event_timestamp": pd.to_datetime(contracts["end_date"]) + pd.Timedelta(days=1),
            "churned_canary": (contracts["outcome"] == "churned").astype("int64"),
        }
    )
    path = built["root"] / "canary.parquet"
    canary.to_parquet(path, index=False)
    entity = built["store"].get_entity("account")
    view = FeatureView(
        name="canary",
        entities=[entity],
        ttl=timedelta(days=3650),
        schema=[Field(name="churned_canary", dtype=Int64)],
        source=FileSource(path=str(path), timestamp_field="event_timestamp"),
    )
    built["store"].apply([view, FeatureService(name="canary_service", features=[view])])
    events = fs.label_events(read_source(built["data"], "contracts"), lead_days)
    df = (
        built["store"]
        .get_historical_features(
            entity_df=events, features=built["store"].get_feature_service("canary_service")
        )
        .to_df()
    )
    return roc_auc_score(~df["renewed"], df["churned_canary"].fillna(0))


def test_leakage_canary_carries_no_signal(built: dict) -> None:
    assert _canary_auc(built, LEAD) == pytest.approx(0.5, abs=0.02)
    # Control: asked *after* the decision, the canary is the answer. The test can fail.
    assert _canary_auc(built, -2) > 0.99


def test_materialize_is_idempotent_and_online_equals_offline(built: dict) -> None:
    store, as_of = built["store"], date(2026, 4, 30)
    accounts = sorted(built["events"]["account_id"].unique())[:80]
    fs.materialize(store, as_of)
    first = fs.online_features(store, accounts)
    fs.materialize(store, as_of)
    second = fs.online_features(store, accounts)
    pd.testing.assert_frame_equal(first, second)
    live = first[first["found"]]
    assert len(live) > 40
    entity = pd.DataFrame(
        {
            "account_id": live["account_id"],
            "event_timestamp": pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1),
        }
    )
    offline = fs.training_set(store, entity).set_index("account_id").loc[live["account_id"]]
    for name in fs.feature_names(store):
        a = live.set_index("account_id")[name]
        b = offline[name]
        if b.dtype == object:
            assert a.tolist() == b.tolist(), name
        else:
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), equal_nan=True, err_msg=name
            )


@pytest.mark.redis
def test_redis_online_store_serves_the_same_values(built: dict) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    project = f"hs_test_{uuid.uuid4().hex[:8]}"
    repo = built["root"] / f"repo-{project}"
    cfg = fs.StoreConfig(
        repo_dir=repo, feature_dir=built["cfg"].feature_dir, online_store="redis", project=project
    )
    store = fs.open_store(cfg)
    objects = fs.definitions(cfg.feature_dir)
    store.apply(objects)
    try:
        as_of = date(2026, 4, 30)
        fs.materialize(store, as_of)
        fs.materialize(built["store"], as_of)
        accounts = sorted(built["events"]["account_id"].unique())[:30]
        pd.testing.assert_frame_equal(
            fs.online_features(store, accounts), fs.online_features(built["store"], accounts)
        )
    finally:
        store.apply([], objects_to_delete=objects, partial=False)
        shutil.rmtree(repo, ignore_errors=True)


def _online_rows(repo: Path, project: str) -> dict[str, list]:
    """Every stored row of a SQLite online store, per feature view table."""
    import sqlite3

    con = sqlite3.connect(repo / "online.db")
    try:
        out = {}
        for view in VIEWS:
            out[view.name] = con.execute(
                f'SELECT entity_key, feature_name, value, event_ts FROM "{project}_{view.name}" '
                "ORDER BY entity_key, feature_name"
            ).fetchall()
        return out
    finally:
        con.close()


def _feast_materialize(store, as_of: date) -> None:
    """Feast's own materialize job over the window `features.store.materialize` uses (called
    directly, so the comparison holds once `features.store.materialize` delegates to ours)."""
    end = pd.Timestamp(as_of, tz="UTC").to_pydatetime() + timedelta(days=1)
    store.materialize(start_date=end - fs.SNAPSHOT_TTL, end_date=end)


def test_fast_materialize_writes_what_feast_writes(built: dict) -> None:
    """features.materialize: the same stored bytes as Feast's materialize, idempotent, and
    online == offline."""
    as_of = date(2026, 4, 30)
    cfg = fs.StoreConfig(repo_dir=built["root"] / "repo-fast", feature_dir=built["cfg"].feature_dir)
    store = fs.open_store(cfg)
    fs.apply(store, cfg)
    written = fm.materialize(store, as_of)
    _feast_materialize(built["store"], as_of)
    ours = _online_rows(cfg.repo_dir, cfg.project)
    feast_rows = _online_rows(built["cfg"].repo_dir, built["cfg"].project)
    # One (account, view) row per account and view; one stored row per account and feature.
    assert written == sum(len(ours[v.name]) // len(v.features) for v in VIEWS)
    for view in VIEWS:
        assert len(ours[view.name]) > 1000, view.name
        assert ours[view.name] == feast_rows[view.name], view.name
    # Idempotent: a second run stores exactly the same rows.
    fm.materialize(store, as_of)
    assert _online_rows(cfg.repo_dir, cfg.project) == ours
    # Online == offline for the same accounts and time.
    accounts = sorted(built["events"]["account_id"].unique())[:80]
    live = fs.online_features(store, accounts)
    live = live[live["found"]]
    assert len(live) > 40
    entity = pd.DataFrame(
        {
            "account_id": live["account_id"],
            "event_timestamp": pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1),
        }
    )
    offline = fs.training_set(store, entity).set_index("account_id").loc[live["account_id"]]
    for name in fs.feature_names(store):
        a, b = live.set_index("account_id")[name], offline[name]
        if b.dtype == object:
            assert a.tolist() == b.tolist(), name
        else:
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), equal_nan=True, err_msg=name
            )


@pytest.mark.redis
def test_fast_materialize_into_redis(built: dict) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    project = f"hs_test_{uuid.uuid4().hex[:8]}"
    repo = built["root"] / f"repo-{project}"
    cfg = fs.StoreConfig(
        repo_dir=repo, feature_dir=built["cfg"].feature_dir, online_store="redis", project=project
    )
    store = fs.open_store(cfg)
    objects = fs.definitions(cfg.feature_dir)
    store.apply(objects)
    try:
        as_of = date(2026, 4, 30)
        fm.materialize(store, as_of)
        _feast_materialize(built["store"], as_of)
        accounts = [*sorted(built["events"]["account_id"].unique())[:30], "NO-SUCH-ACCOUNT"]
        first = fs.online_features(store, accounts)
        assert first["found"].sum() > 10 and not first["found"].iloc[-1]
        pd.testing.assert_frame_equal(first, fs.online_features(built["store"], accounts))
        fm.materialize(store, as_of)
        pd.testing.assert_frame_equal(fs.online_features(store, accounts), first)
    finally:
        store.apply([], objects_to_delete=objects, partial=False)
        shutil.rmtree(repo, ignore_errors=True)


@pytest.mark.postgres
def test_sql_registry_on_postgres(built: dict) -> None:
    require_service("127.0.0.1", 5432, "PostgreSQL")
    project = f"hs_test_{uuid.uuid4().hex[:8]}"
    cfg = fs.StoreConfig(
        repo_dir=built["root"] / f"repo-{project}",
        feature_dir=built["cfg"].feature_dir,
        registry="sql",
        project=project,
    )
    store = fs.open_store(cfg)
    objects = fs.definitions(cfg.feature_dir)
    store.apply(objects)
    try:
        fresh = fs.open_store(cfg)  # a second client sees the same contract
        assert fs.feature_names(fresh) == fs.feature_names(built["store"])
    finally:
        store.apply([], objects_to_delete=objects, partial=False)
        store.delete_project(project)
