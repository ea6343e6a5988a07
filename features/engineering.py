"""Feature engineering: raw sources -> daily account snapshots, one Parquet table per feature view.

The logic is SQL (`features/sql/*.sql`) run by DuckDB over the raw Parquet files, so the same
queries can move to Spark SQL when a book of business outgrows one machine. A snapshot for day D
summarises everything known by the end of D and is stamped `event_timestamp = D + 1 day 00:00 UTC`:
a prediction made at time T only ever sees snapshots of days that had ended by T.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path

import duckdb

from features import contract
from features.catalog import VIEWS, View
from features.io import SourceNotFoundError, source_files, source_path
from features.sources import REQUIRED, available_views, present

SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
CONTRACT_TYPES = {**SQL_TYPES, "timestamp": "TIMESTAMP", "date": "DATE"}


def _sql(name: str) -> str:
    return resources.files("features").joinpath("sql", f"{name}.sql").read_text()


def connect(
    data_dir: Path, memory_limit: str | None = None, spill_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per raw source of the data contract.

    A missing optional source becomes an empty view; a missing required one
    (`features.sources.REQUIRED`) raises SourceNotFoundError. With `memory_limit` (e.g. "8GB")
    DuckDB spills to `spill_dir` instead of growing past it.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if spill_dir:
        con.execute(f"SET temp_directory = '{Path(spill_dir).resolve()}'")
    for name, source in contract.SOURCES.items():
        try:
            location = source_path(Path(data_dir), name)
        except SourceNotFoundError as exc:
            if name in REQUIRED:
                raise SourceNotFoundError(
                    f"{exc}; it is required ({', '.join(REQUIRED)} are needed for any feature)"
                ) from None
            # A source the team does not have: an empty view with the contract's columns and
            # types, so the one feature query still runs (the features it feeds are not written).
            cols = ", ".join(
                f"CAST(NULL AS {CONTRACT_TYPES[c.type]}) AS {c.name}" for c in source.columns
            )
            con.execute(f"CREATE VIEW {name} AS SELECT {cols} WHERE false")
            continue
        files = [str(f) for f in source_files(location)]
        # Exports often store dates as timestamps; the SQL relies on the contract's types.
        cols = ", ".join(
            f"CAST({c.name} AS DATE) AS {c.name}"
            if c.type == "date"
            else f"CAST({c.name} AS TIMESTAMP) AS {c.name}"
            if c.type == "timestamp"
            else c.name
            for c in source.columns
        )
        con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM read_parquet({files!r})")
    return con


def data_window(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """The period features can describe: from the earliest recorded activity in any source (so
    answers, invoices or tickets older than the usage history still count) to the last usage day.
    Empty (or absent, see `connect`) sources have no earliest day and are ignored by `min`.
    """
    firsts = " UNION ALL ".join(
        f"SELECT min({s.time_column})::date AS d FROM {s.name}"
        for s in contract.SOURCES.values()
        if s.time_column and s.name != "contracts"
    )
    start = con.execute(f"SELECT min(d) FROM ({firsts})").fetchone()[0]
    end = con.execute("SELECT max(date)::date FROM usage").fetchone()[0]
    if end is None:
        raise ValueError("usage: no rows, so there is no period to compute features for")
    return start, end


def features_query() -> str:
    """Every view's features in one query over `grid` (`features/sql/features.sql`), one row per
    account and day, ordered, with each feature cast to the catalog's type."""
    casts = ",\n    ".join(
        f"CAST({f.name} AS {SQL_TYPES[f.type]}) AS {f.name}" for v in VIEWS for f in v.features
    )
    return (
        f"SELECT account_id, CAST(day + INTERVAL 1 DAY AS TIMESTAMP) AS event_timestamp,\n"
        f"    {casts}\nFROM ({_sql('features')}) AS q\nORDER BY account_id, event_timestamp"
    )


def build_grid(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> tuple[date, date]:
    """Materialise the (account, day, current contract) grid every view is computed over."""
    start, end = data_window(con)
    as_of = min(as_of or end, end)
    con.execute(
        f"CREATE OR REPLACE TABLE grid AS {_sql('grid')}", {"data_start": start, "as_of": as_of}
    )
    return start, as_of


# Accounts per pass: bounds memory (every window of a pass is held at once; ~1.5M grid rows
# at 24 months of data) while keeping few passes. Windows never cross accounts, so the result
# does not depend on it.
CHUNK_ACCOUNTS = 2_500


def _account_chunks(con: duckdb.DuckDBPyConnection, size: int) -> list[tuple[str, str]]:
    """Consecutive (first, last) account id ranges of `size` accounts, in id order."""
    return [
        (lo, hi)
        for lo, hi in con.execute(
            "SELECT min(account_id), max(account_id) FROM ("
            "  SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1) // $size AS k"
            "  FROM (SELECT DISTINCT account_id FROM contracts)) GROUP BY k ORDER BY k",
            {"size": size},
        ).fetchall()
    ]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def build_feature_tables(
    data_dir: Path,
    out_dir: Path,
    as_of: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    memory_limit: str | None = None,
    chunk_accounts: int = CHUNK_ACCOUNTS,
    views: tuple[View, ...] | None = None,
) -> dict[str, Path]:
    """Compute every feature view's daily snapshots into `out_dir/<view>.parquet` (atomically).

    `views`: the views (and features) to write; default: those the sources under `data_dir` can
    feed (`features.sources.available_views`), the whole catalog when every source is there. A
    catalog view not written is removed from `out_dir`, so the folder holds what Feast registers.

    Accounts are processed in chunks of `chunk_accounts`: per chunk, the sources are filtered to
    its account range (schema `chunk`, first on the search path), its grid is built and one query
    computes all features, which are appended to the views' files. `memory_limit` caps DuckDB's
    memory (it spills to `out_dir/.spill`, removed afterwards).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    have = present(Path(data_dir))
    if views is None:
        views = available_views(have)
    needs = {v.name for v in views for f in v.features if not set(f.sources) <= have}
    if needs:
        missing = {s for v in views for f in v.features for s in f.sources} - have
        raise ValueError(
            f"{data_dir}: the view(s) {', '.join(sorted(needs))} need the source(s) "
            f"{', '.join(sorted(missing))}, which are not there"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spill = out_dir / ".spill"
    con = connect(data_dir, memory_limit=memory_limit, spill_dir=spill if memory_limit else None)
    start, end = data_window(con)
    as_of = min(as_of or end, end)
    chunks = _account_chunks(con, chunk_accounts)
    con.execute("CREATE SCHEMA chunk")
    query = features_query()
    grid_sql = _sql("grid")
    token = uuid.uuid4().hex
    tmp = {v.name: out_dir / f".{v.name}.{token}.tmp" for v in views}
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for i, (lo, hi) in enumerate(chunks):
            if progress:
                progress(f"accounts {lo}..{hi}", i, len(chunks))
            con.execute("SET search_path = 'main'")
            for name in contract.SOURCES:
                con.execute(
                    f"CREATE OR REPLACE VIEW chunk.{name} AS SELECT * FROM main.{name} "
                    f"WHERE account_id BETWEEN {_literal(lo)} AND {_literal(hi)}"
                )
            con.execute("SET search_path = 'chunk,main'")
            con.execute(
                f"CREATE OR REPLACE TABLE chunk.grid AS {grid_sql}",
                {"data_start": start, "as_of": as_of},
            )
            reader = con.sql(query).to_arrow_reader(256 * 1024)
            for batch in reader:
                for v in views:
                    cols = ["account_id", "event_timestamp", *(f.name for f in v.features)]
                    part = pa.Table.from_batches([batch]).select(cols)
                    if v.name not in writers:
                        writers[v.name] = pq.ParquetWriter(
                            tmp[v.name], part.schema, compression="zstd"
                        )
                    writers[v.name].write_table(part, row_group_size=len(part))
        if not writers:  # no account at all: empty tables with the right columns
            con.execute("SET search_path = 'main'")
            con.execute(
                f"CREATE OR REPLACE TABLE grid AS {grid_sql}", {"data_start": start, "as_of": as_of}
            )
            empty = con.sql(query).to_arrow_table()
            for v in views:
                cols = ["account_id", "event_timestamp", *(f.name for f in v.features)]
                writers[v.name] = pq.ParquetWriter(tmp[v.name], empty.select(cols).schema)
        for w in writers.values():
            w.close()
        written: dict[str, Path] = {}
        for v in views:
            target = out_dir / f"{v.name}.parquet"
            os.replace(tmp[v.name], target)
            written[v.name] = target
        for v in VIEWS:  # a view an earlier build wrote that these sources no longer feed
            if v.name not in written:
                (out_dir / f"{v.name}.parquet").unlink(missing_ok=True)
    finally:
        for w in writers.values():
            if w.is_open:
                w.close()
        for path in tmp.values():
            path.unlink(missing_ok=True)
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    if progress:
        progress("done", len(chunks), len(chunks))
    return written
