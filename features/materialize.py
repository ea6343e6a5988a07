"""Materialization into Feast's online store without Feast's materialize job.

`store.materialize` (feast 0.67) pulls each view through its ibis offline-store job (even with
`pull_latest_features`, issue 5707), converts the rows to protos and writes them. Here the latest
snapshot per account inside the TTL window is read with one DuckDB query per view straight from
the view's Parquet source, converted to protos column by column (the same protos Feast's converter
builds: a null or NaN is an empty `Value`, anything else the typed field; a test compares the
stored bytes) and handed to the configured online store's `online_write_batch` (SQLite, Redis,
...): Feast's online store stays the only online store, and `get_online_features` reads what was
written exactly as before.

Same contract as `features.store.materialize`: the window is (as_of + 1 day - TTL, as_of + 1 day],
bounds included as Feast includes them, so a rerun writes the same rows (idempotent) and an account
that stopped being a customer is not served.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd

from features.catalog import FEATURE_SERVICE

# Rows handed to the online store per call: bounds the protos held in memory at once.
WRITE_BATCH_ROWS = 50_000


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def latest_rows(path: str, start: datetime, end: datetime, timestamp_field: str, join_key: str):
    """The latest row per entity with `start <= timestamp <= end`, as an Arrow table."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(
            f"SELECT * FROM read_parquet($path) "
            f"WHERE CAST({timestamp_field} AS TIMESTAMP) BETWEEN $start AND $end "
            f"QUALIFY row_number() OVER (PARTITION BY {join_key} "
            f"ORDER BY {timestamp_field} DESC) = 1 "
            f"ORDER BY {join_key}",
            params={"path": path, "start": _naive_utc(start), "end": _naive_utc(end)},
        ).to_arrow_table()
    finally:
        con.close()


def _value_protos(column, value_type) -> list:
    """Feast `Value` protos of one Arrow column, as `feast.type_map` builds them for scalars."""
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.value_type import ValueType

    fields = {
        ValueType.DOUBLE: ("double_val", float),
        ValueType.FLOAT: ("float_val", float),
        ValueType.INT64: ("int64_val", int),
        ValueType.INT32: ("int32_val", int),
        ValueType.STRING: ("string_val", str),
        ValueType.BOOL: ("bool_val", bool),
    }
    if value_type not in fields:
        raise ValueError(f"materialize: feature type {value_type} is not supported here")
    name, cast = fields[value_type]
    empty = Value()
    # `v != v` is only true for NaN, which Feast stores as null like None.
    return [empty if v is None or v != v else Value(**{name: cast(v)}) for v in column.to_pylist()]


def to_online_rows(batch, view, join_key: str, join_type, timestamp_field: str) -> list:
    """(entity key, {feature: Value}, event time, created time) rows for `online_write_batch`."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.utils import _coerce_datetime

    keys = [
        EntityKey(join_keys=[join_key], entity_values=[v])
        for v in _value_protos(batch.column(join_key), join_type)
    ]
    names = [f.name for f in view.features]
    columns = [_value_protos(batch.column(f.name), f.dtype.to_value_type()) for f in view.features]
    times = [
        _coerce_datetime(t)
        for t in pd.to_datetime(batch.column(timestamp_field).to_numpy(zero_copy_only=False))
    ]
    return [
        (key, dict(zip(names, values, strict=True)), ts, None)
        for key, ts, *values in zip(keys, times, *columns, strict=True)
    ]


def materialize(store, as_of: date) -> int:
    """Load each account's snapshot as of the end of `as_of` into the online store.

    Returns the number of (account, feature view) rows written.
    """
    from features.store import SNAPSHOT_TTL

    end = pd.Timestamp(as_of, tz="UTC").to_pydatetime() + timedelta(days=1)
    provider = store._get_provider()
    config = store.config
    service = store.get_feature_service(FEATURE_SERVICE)
    written = 0
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        start = end - (view.ttl or SNAPSHOT_TTL)
        source = view.batch_source
        join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
        if len(join_keys) != 1:
            raise ValueError(f"feature view {view.name}: expected one join key, got {join_keys}")
        (join_key,) = join_keys
        table = latest_rows(source.path, start, end, source.timestamp_field, join_key)
        missing = {join_key, source.timestamp_field, *(f.name for f in view.features)} - set(
            table.column_names
        )
        if missing:
            raise ValueError(f"{source.path}: columns {sorted(missing)} are missing")
        for offset in range(0, table.num_rows, WRITE_BATCH_ROWS):
            batch = table.slice(offset, WRITE_BATCH_ROWS).combine_chunks()
            rows = to_online_rows(
                batch, view, join_key, join_keys[join_key], source.timestamp_field
            )
            provider.online_write_batch(config, view, rows, progress=None)
            written += len(rows)
        store.registry.apply_materialization(view, config.project, start, end)
    return written
