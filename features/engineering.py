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
from features.io import source_files, source_path

SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}


def _sql(name: str) -> str:
    return resources.files("features").joinpath("sql", f"{name}.sql").read_text()


def connect(
    data_dir: Path, memory_limit: str | None = None, spill_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per raw source of the data contract.

    With `memory_limit` (e.g. "8GB") DuckDB spills to `spill_dir` instead of growing past it.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if spill_dir:
        con.execute(f"SET temp_directory = '{Path(spill_dir).resolve()}'")
    for name, source in contract.SOURCES.items():
        files = [str(f) for f in source_files(source_path(Path(data_dir), name))]
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


def view_query(view: View) -> str:
    """The view's SQL, with columns cast to the catalog's types and the snapshot timestamp."""
    casts = ",\n    ".join(
        f"CAST({f.name} AS {SQL_TYPES[f.type]}) AS {f.name}" for f in view.features
    )
    return (
        f"SELECT account_id, CAST(day + INTERVAL 1 DAY AS TIMESTAMP) AS event_timestamp,\n"
        f"    {casts}\nFROM ({_sql(view.name)}) AS q"
    )


def build_grid(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> tuple[date, date]:
    """Materialise the (account, day, current contract) grid every view is computed over."""
    start, end = data_window(con)
    as_of = min(as_of or end, end)
    con.execute(
        f"CREATE OR REPLACE TABLE grid AS {_sql('grid')}", {"data_start": start, "as_of": as_of}
    )
    return start, as_of


def build_feature_tables(
    data_dir: Path,
    out_dir: Path,
    as_of: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    memory_limit: str | None = None,
) -> dict[str, Path]:
    """Compute every feature view's daily snapshots into `out_dir/<view>.parquet` (atomically).

    `memory_limit` caps DuckDB's memory (it spills to `out_dir/.spill`, removed afterwards).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spill = out_dir / ".spill"
    con = connect(data_dir, memory_limit=memory_limit, spill_dir=spill if memory_limit else None)
    build_grid(con, as_of)
    written: dict[str, Path] = {}
    for i, view in enumerate(VIEWS):
        if progress:
            progress(view.name, i, len(VIEWS))
        target = out_dir / f"{view.name}.parquet"
        tmp = out_dir / f".{view.name}.{uuid.uuid4().hex}.tmp"
        try:
            con.execute(
                f"COPY ({view_query(view)} ORDER BY account_id, event_timestamp) "
                f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
            )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        written[view.name] = target
    if progress:
        progress("done", len(VIEWS), len(VIEWS))
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    return written
