"""A team's own raw sources: CSV/Parquet exports and PostgreSQL tables staged into the contract's
shape, optional sources left out, and errors that name the source, file and column."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features import engineering
from features import store as fs
from features.catalog import VIEWS
from features.contract import SOURCES
from features.io import read_source
from features.sources import (
    OPTIONAL,
    REQUIRED,
    SourceError,
    SourceSpec,
    available_views,
    losses,
    lost_features,
    lost_views,
    present,
    stage,
)
from features.synthetic.generator import GeneratorConfig, generate_book
from features.validation import validate_dir
from tests.conftest import require_service

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-account, 12-month book generated once for this module. Treat it as read-only."""
    out = tmp_path_factory.mktemp("sources") / "raw"
    generate_book(GeneratorConfig(accounts=200, months=12, seed=5), out)
    return out


def theirs(column: str) -> str:
    """How 'their' export calls a contract column."""
    return f"Their {column.replace('_', ' ').title()}"


def export(raw: Path, name: str, target: Path, fmt: str = "csv", options: str = "") -> SourceSpec:
    """Write source `name` of `raw` as a CSV or Parquet export with their column names."""
    select = ", ".join(f'{c} AS "{theirs(c)}"' for c in SOURCES[name].column_names)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    opts = "HEADER" if fmt == "csv" else "FORMAT parquet"
    con.execute(
        f"COPY (SELECT {select} FROM read_parquet('{raw / name}/*.parquet')) "
        f"TO '{target}' ({opts}{options})"
    )
    return SourceSpec(path=target, columns={theirs(c): c for c in SOURCES[name].column_names})


def assert_same_source(staged: Path, raw: Path, name: str) -> None:
    """Values and dtypes as the pipeline reads them (`features.io.read_source`)."""
    got, want = read_source(staged, name), read_source(raw, name)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_exports_with_their_column_names_stage_to_the_originals(raw: Path, tmp_path: Path) -> None:
    specs = {name: export(raw, name, tmp_path / f"{name}.csv") for name in SOURCES}
    invoices = export(raw, "invoices", tmp_path / "inv.csv", options=", DELIMITER ';'")
    specs["invoices"] = replace(invoices, delimiter=";")
    specs["contracts"] = export(raw, "contracts", tmp_path / "contracts.parquet", fmt="parquet")
    lines: list[str] = []
    written = stage(specs, tmp_path / "staged", progress=lines.append)
    assert set(written) == set(SOURCES)
    assert all(p == tmp_path / "staged" / f"{n}.parquet" for n, p in written.items())
    for name in SOURCES:
        assert_same_source(tmp_path / "staged", raw, name)
    assert any(line.startswith("usage: ") and "rows from" in line for line in lines)
    assert validate_dir(tmp_path / "staged").ok


def test_text_in_another_encoding_and_unmapped_sources_from_the_default_folder(
    raw: Path, tmp_path: Path
) -> None:
    accounts = read_source(raw, "accounts")
    accounts.loc[0, "account_name"] = "Café Ñandú"
    accounts.to_csv(tmp_path / "accounts.csv", index=False, encoding="latin-1")
    specs = {"accounts": SourceSpec(path=tmp_path / "accounts.csv", encoding="latin-1")}
    written = stage(specs, tmp_path / "staged", base_dir=raw)
    assert written["accounts"].name == "accounts.parquet"
    assert written["usage"] == tmp_path / "staged" / "usage"  # carried over as it was
    staged = read_source(tmp_path / "staged", "accounts")
    assert staged.loc[0, "account_name"] == "Café Ñandú"
    assert staged["created_at"].equals(accounts["created_at"])
    assert not (tmp_path / "staged" / "_truth").exists()  # only the contract's sources


def test_without_tickets_and_surveys_the_other_views_are_unchanged(
    raw: Path, tmp_path: Path
) -> None:
    partial = Path(shutil.copytree(raw, tmp_path / "partial", ignore=shutil.ignore_patterns()))
    shutil.rmtree(partial / "tickets")
    shutil.rmtree(partial / "surveys")
    usage = export(raw, "usage", tmp_path / "usage.csv")
    staged = tmp_path / "staged"
    stage({"usage": usage}, staged, base_dir=partial)
    have = present(staged)
    assert have == set(SOURCES) - {"tickets", "surveys"}

    report = validate_dir(staged)
    assert report.ok, [f.message for f in report.errors]
    notes = {f.file.name: f.message for f in report.warnings if f.check == "not provided"}
    assert set(notes) == {"tickets", "surveys"}
    assert "support view" in notes["tickets"] and "satisfaction view" in notes["surveys"]

    assert [v.name for v in lost_views(have)] == ["support", "satisfaction"]
    written = engineering.build_feature_tables(staged, tmp_path / "features")
    assert set(written) == {v.name for v in VIEWS} - {"support", "satisfaction"}
    full = engineering.build_feature_tables(raw, tmp_path / "full")
    for view, path in written.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(full[view]))

    cfg = fs.StoreConfig(repo_dir=tmp_path / "repo", feature_dir=tmp_path / "features")
    store = fs.open_store(cfg)
    fs.apply(store, cfg, views=available_views(have))
    assert {v.name for v in store.list_feature_views()} == set(written)
    service = fs.feature_service(store)
    served = {f.name for p in service.feature_view_projections for f in p.features}
    assert served == {f.name for v in VIEWS if v.name in written for f in v.features}

    # Building the partial sources over a folder of a full build removes the views they no
    # longer feed, so the folder holds what Feast registers.
    engineering.build_feature_tables(staged, tmp_path / "full")
    assert not (tmp_path / "full" / "support.parquet").exists()


def test_a_missing_source_loses_only_the_features_that_read_it() -> None:
    have = set(SOURCES) - {"enablement", "plan_changes"}
    assert lost_views(have) == []
    assert lost_features(have) == {
        "adoption": [
            "trainings_90d",
            "users_trained_365d",
            "certified_users_365d",
            "days_since_last_training",
        ],
        "financial": ["price_increases_365d", "downgrades_365d"],
    }
    views = {v.name: v for v in available_views(have)}
    assert [f.name for f in views["adoption"].features] == [
        "distinct_features_30d",
        "distinct_features_trend_30d_vs_prior_60d",
        "seats_assigned_share_30d",
    ]
    assert available_views(set(SOURCES)) == VIEWS  # everything there: the catalog itself
    # The engine computes every feature from the required sources and the ones a feature names.
    assert {s for v in VIEWS for f in v.features for s in f.sources} <= set(SOURCES)


def test_the_docs_say_what_each_missing_source_loses() -> None:
    text = (Path(__file__).parents[2] / "docs" / "own-data.md").read_text()
    for name in OPTIONAL:
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
        for view, features in lost_features(set(SOURCES) - {name}).items():
            assert f"`{view}`" in row, (name, row)
            if len(features) < len(next(v for v in VIEWS if v.name == view).features):
                assert all(f"`{f}`" in row for f in features), (name, row)
        assert losses(name) != "no feature"
    for name in REQUIRED:
        assert f"`{name}`" in text


def _usage_csv(raw: Path, tmp_path: Path) -> tuple[Path, SourceSpec]:
    spec = export(raw, "usage", tmp_path / "usage.csv")
    return Path(spec.path), spec


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("mapped column missing", ["usage", "usage.csv", "Their Logins", "its columns are"]),
        ("value that will not cast", ["usage", "bad.csv", "Their Logins", "'many'", "row 3"]),
        ("fraction in an int column", ["usage", "bad.csv", "Their Logins", "'2.5'"]),
        ("required column unmapped", ["usage", "usage.csv", "'logins'", "columns"]),
        ("required source missing", ["accounts, contracts", "required", "data.sources"]),
        ("file missing", ["usage", "nope.csv", "not found"]),
    ],
)
def test_errors_name_source_file_and_column_and_write_nothing(
    raw: Path, tmp_path: Path, damage: str, expected: list[str]
) -> None:
    path, spec = _usage_csv(raw, tmp_path)
    base: Path | None = raw
    columns = dict(spec.columns)
    if damage == "mapped column missing":
        path.write_text(path.read_text().replace("Their Logins", "Logins Total", 1))
    elif damage in ("value that will not cast", "fraction in an int column"):
        lines = path.read_text().splitlines()
        header = lines[0].split(",")
        row = lines[3].split(",")
        row[header.index("Their Logins")] = "many" if "cast" in damage else "2.5"
        lines[3] = ",".join(row)
        path = tmp_path / "bad.csv"
        path.write_text("\n".join(lines) + "\n")
    elif damage == "required column unmapped":
        del columns["Their Logins"]
    elif damage == "required source missing":
        base = None
    elif damage == "file missing":
        path = tmp_path / "nope.csv"
    out = tmp_path / "staged"
    out.mkdir()
    (out / "before.txt").write_text("untouched")
    with pytest.raises(SourceError) as err:
        stage({"usage": SourceSpec(path=path, columns=columns)}, out, base_dir=base)
    for part in expected:
        assert part in str(err.value), str(err.value)
    assert [p.name for p in out.iterdir()] == ["before.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.fixture
def pg_schema(raw: Path, tmp_path: Path):
    """A private schema with their `tickets` table (typed) and `usage_daily` table (text dates)."""
    require_service("127.0.0.1", 5432, "PostgreSQL")
    import psycopg

    schema = f"hs_sources_{uuid.uuid4().hex[:10]}"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in ("tickets", "usage"):
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{raw / name}/*.parquet')) "
            f"TO '{tmp_path / name}.csv' (HEADER)"
        )
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.tickets (ticket_id text, account_id text, "
            "opened_at timestamptz, first_response_at timestamptz, resolved_at timestamptz, "
            "severity smallint, category text, escalated boolean, csat integer)"
        )
        conn.execute(
            f"CREATE TABLE {schema}.usage_daily (acct text, day text, active_users int, "
            "logins bigint, sessions int, key_feature_events int, distinct_features_used int, "
            "seats_used int)"
        )
        for name, table in (("tickets", "tickets"), ("usage", "usage_daily")):
            with conn.cursor().copy(
                f"COPY {schema}.{table} FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                copy.write((tmp_path / f"{name}.csv").read_bytes())
    try:
        yield schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.postgres
def test_postgres_table_and_query(raw: Path, tmp_path: Path, pg_schema: str) -> None:
    specs = {
        "tickets": SourceSpec(url=PG_URL, table=f"{pg_schema}.tickets"),
        "usage": SourceSpec(
            url=PG_URL,
            query=f"SELECT * FROM {pg_schema}.usage_daily;",
            columns={"acct": "account_id", "day": "date"},
        ),
    }
    stage(specs, tmp_path / "staged", base_dir=raw)
    for name in ("tickets", "usage"):
        assert_same_source(tmp_path / "staged", raw, name)
    assert not any(p.name.endswith(".csv") for p in (tmp_path / "staged").iterdir())


@pytest.mark.postgres
def test_postgres_errors_name_the_table_and_hide_the_password(
    raw: Path, tmp_path: Path, pg_schema: str
) -> None:
    url = "postgresql://postgres:s3cret@127.0.0.1:5432/test"
    with pytest.raises(SourceError) as err:
        stage({"tickets": SourceSpec(url=url, table=f"{pg_schema}.nope")}, tmp_path / "s", raw)
    assert f"{pg_schema}.nope" in str(err.value) and "does not exist" in str(err.value)
    assert "s3cret" not in str(err.value) and "127.0.0.1:5432" in str(err.value)
    with pytest.raises(SourceError) as err:
        stage({"tickets": SourceSpec(url=url.replace("5432", "1"), table="t")}, tmp_path / "s", raw)
    assert "not reachable" in str(err.value) and "s3cret" not in str(err.value)
    assert not (tmp_path / "s").exists()
