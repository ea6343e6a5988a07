"""Raw sources of a team's own: CSV or Parquet exports, or PostgreSQL tables and queries.

A team names, per source of the data contract, where its data is and how its columns are called
(`SourceSpec`, built by the pipeline from `data.sources` in healthscore.yaml). `stage` turns each
into `<out_dir>/<source>.parquet` in exactly the contract's shape (the contract's columns, names and
types), so everything downstream (validation, `engineering.connect`, the generator's tests) keeps
reading one folder of contract-shaped Parquet. DuckDB does the work as a stream: a CSV is read as
text and cast column by column (a stray value is named, not silently parsed), and a PostgreSQL
result is streamed by `COPY ... TO STDOUT` into a CSV in the staging folder and read the same way.

Sources a team does not have are simply left out: only `REQUIRED` must exist (the grid every
feature is computed over needs `accounts` and `contracts`; the last `usage` day is the end of the
data). Without an optional source, the features that read it (`Feature.sources` in the catalog)
are absent: `available_views` trims the catalog to what can be computed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb

from features.catalog import VIEWS, View
from features.contract import SOURCES, Column
from features.duck import csv_text, file_format
from features.duck import ident as _q
from features.duck import literal as _lit
from features.io import SourceNotFoundError, atomic_directory, source_files, source_path

REQUIRED = ("accounts", "contracts", "usage")
OPTIONAL = tuple(name for name in SOURCES if name not in REQUIRED)
# Text a CSV export writes for "no value" in a number, date or flag column. Never applied to
# string columns: "NA" is a region (North America).
NULL_WORDS = ("", "na", "n/a", "null", "none", "nan")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
}
PG_CHUNK = 1 << 20  # bytes per write while streaming a PostgreSQL result to disk


class SourceError(ValueError):
    """A configured source cannot be staged; the message names the source, file and column."""


@dataclass(frozen=True)
class SourceSpec:
    """Where one raw source comes from: a file or folder (`path`) or PostgreSQL (`url` with
    `table` or `query`), and `columns`: the team's column name -> the contract's."""

    path: Path | None = None
    format: str = "auto"  # auto | parquet | csv; auto: from the file name
    encoding: str = "utf-8"
    delimiter: str | None = None  # CSV; None: detected
    url: str | None = None
    table: str | None = None
    query: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


# -- what a project without some sources gets ----------------------------------------------------


def present(data_dir: Path) -> set[str]:
    """The contract sources found under `data_dir` (as `<name>.parquet` or a folder `<name>/`)."""
    found = set()
    for name in SOURCES:
        try:
            source_path(Path(data_dir), name)
        except SourceNotFoundError:
            continue
        found.add(name)
    return found


def _computable(feature_sources: Iterable[str], have: set[str]) -> bool:
    return set(feature_sources) <= have


def available_views(have: set[str], views: Iterable[View] = VIEWS) -> tuple[View, ...]:
    """The views and features that can be computed from the sources in `have`: each view keeps
    the features whose sources are all there (the catalog's own object when it keeps all of them);
    a view left without features is dropped. This is what Feast registers and what is written."""
    kept = []
    for v in views:
        features = tuple(f for f in v.features if _computable(f.sources, have))
        if len(features) == len(v.features):
            kept.append(v)
        elif features:
            kept.append(replace(v, features=features))
    return tuple(kept)


def lost_views(have: set[str]) -> list[View]:
    """The catalog's views none of whose features can be computed without the missing sources."""
    names = {v.name for v in available_views(have)}
    return [v for v in VIEWS if v.name not in names]


def lost_features(have: set[str]) -> dict[str, list[str]]:
    """View name -> the names of its features that cannot be computed (only views losing some)."""
    lost = {v.name: [f.name for f in v.features if not _computable(f.sources, have)] for v in VIEWS}
    return {name: features for name, features in lost.items() if features}


def losses(source: str) -> str:
    """What a project without `source` does not get, in words (validation, docs)."""
    have = set(SOURCES) - {source}
    parts = []
    for view, features in lost_features(have).items():
        total = len(next(v for v in VIEWS if v.name == view).features)
        if len(features) == total:
            parts.append(f"the {view} view (all {total} features)")
        else:
            parts.append(f"{len(features)} of the {total} {view} features ({', '.join(features)})")
    return "; ".join(parts) or "no feature"


# -- staging ----------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """`url` without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def _format(spec: SourceSpec, path: Path) -> str:
    if spec.format == "auto" and path.is_dir():
        return "csv" if any(path.glob("*.csv")) and not any(path.glob("*.parquet")) else "parquet"
    return file_format(path, spec.format)


def _file_relation(name: str, spec: SourceSpec, path: Path) -> tuple[str, str]:
    """(DuckDB relation, format) of a file or folder source; SourceError if there is nothing."""
    if not path.exists():
        raise SourceError(f"{name}: {path}: file not found (data.sources.{name}.path)")
    fmt = _format(spec, path)
    if path.is_dir():
        pattern = "*.csv" if fmt == "csv" else "*.parquet"
        files = sorted(p for p in path.glob(pattern) if not p.name.startswith((".", "_")))
        if not files:
            raise SourceError(f"{name}: {path}: folder holds no {pattern} files")
    else:
        files = [path]
    if not files[0].stat().st_size:
        raise SourceError(f"{name}: {files[0]}: the file is empty")
    if fmt == "parquet":
        return f"read_parquet([{', '.join(_lit(f) for f in files)}], union_by_name = true)", fmt
    return csv_text(files, spec.encoding, spec.delimiter), fmt


def _describe(con: duckdb.DuckDBPyConnection, name: str, where: str, rel: str, fmt: str, spec):
    try:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    except duckdb.Error as exc:
        raise SourceError(_read_error(name, where, fmt, spec, exc)) from None


def _read_error(name: str, where: str, fmt: str, spec: SourceSpec, exc: Exception) -> str:
    text = str(exc).strip().split("\n")[0][:300]
    if fmt == "csv" and re.search("unicode|utf|encoding", text, re.IGNORECASE):
        return (
            f"{name}: {where}: not valid {spec.encoding} text ({text}); set "
            f"data.sources.{name}.encoding (e.g. latin-1)"
        )
    return f"{name}: {where}: cannot be read as {fmt.upper()}: {text}"


def _plan(
    name: str, spec: SourceSpec, where: str, file_columns: list[str], say: Callable[[str], None]
) -> list[tuple[Column, str | None]]:
    """Each contract column of `name` with the file's column it comes from (None: left empty)."""
    source = SOURCES[name]
    listing = ", ".join(file_columns)
    for theirs, ours in spec.columns.items():
        if ours not in source.column_names:
            raise SourceError(
                f"{name}: data.sources.{name}.columns maps '{theirs}' to '{ours}', which is not "
                f"a column of the contract's {name} ({', '.join(source.column_names)})"
            )
        if theirs not in file_columns:
            raise SourceError(
                f"{name}: {where}: column '{theirs}' (mapped to '{ours}') is not in the file; "
                f"its columns are: {listing}"
            )
    mapped = {ours: theirs for theirs, ours in spec.columns.items()}
    plan = []
    for col in source.columns:
        theirs = mapped.get(col.name)
        if theirs is None and col.name in file_columns and col.name not in spec.columns:
            theirs = col.name
        if theirs is None and not col.nullable:
            raise SourceError(
                f"{name}: {where}: no column for the contract's '{col.name}' ({col.type}, "
                f"required); add `<your column>: {col.name}` under data.sources.{name}.columns "
                f"(the file's columns: {listing})"
            )
        if theirs is None:
            say(f"{name}: no column for the optional '{col.name}': left empty")
        plan.append((col, theirs))
    return plan


def _is_text(duck_type: str) -> bool:
    return duck_type.upper() == "VARCHAR"


def _conversion(col: Column, x: str, duck_type: str) -> tuple[str, str]:
    """(SQL giving the contract-typed value or NULL if it does not convert, SQL true when the
    source has a value) for column `x` of DuckDB type `duck_type`."""
    target = DUCKDB_TYPES[col.type]
    if col.type == "string":
        return f"CAST({x} AS VARCHAR)", f"{x} IS NOT NULL"
    if _is_text(duck_type):
        words = ", ".join(_lit(w) for w in NULL_WORDS)
        t = f"(CASE WHEN lower(trim({x})) IN ({words}) THEN NULL ELSE trim({x}) END)"
        if col.type == "bool":
            true, false = (", ".join(_lit(w) for w in ws) for ws in (TRUE_WORDS, FALSE_WORDS))
            conv = (
                f"CASE WHEN lower({t}) IN ({true}) THEN true "
                f"WHEN lower({t}) IN ({false}) THEN false END"
            )
        elif col.type == "int":  # '3.0' is 3, but '3.5' is not an integer (CAST would round)
            conv = (
                f"CASE WHEN TRY_CAST({t} AS DOUBLE) = trunc(TRY_CAST({t} AS DOUBLE)) "
                f"THEN TRY_CAST({t} AS BIGINT) END"
            )
        elif col.type == "date":
            conv = f"coalesce(TRY_CAST({t} AS DATE), CAST(TRY_CAST({t} AS TIMESTAMPTZ) AS DATE))"
        else:
            conv = f"TRY_CAST({t} AS {target})"
        return conv, f"{t} IS NOT NULL"
    if col.type == "int" and re.match(r"(DOUBLE|FLOAT|REAL|DECIMAL)", duck_type.upper()):
        conv = f"CASE WHEN {x} = trunc({x}) THEN TRY_CAST({x} AS BIGINT) END"
        return conv, f"{x} IS NOT NULL"
    return f"TRY_CAST({x} AS {target})", f"{x} IS NOT NULL"


def _select(plan, types: dict[str, str], strict: bool) -> str:
    """The contract-shaped SELECT list; `strict`: a value that does not convert raises."""
    out = []
    for col, theirs in plan:
        if theirs is None:
            out.append(f"CAST(NULL AS {DUCKDB_TYPES[col.type]}) AS {_q(col.name)}")
            continue
        conv, has = _conversion(col, _q(theirs), types[theirs])
        if strict and col.type != "string":
            conv = f"CASE WHEN {has} AND ({conv}) IS NULL THEN error('cast') ELSE {conv} END"
        out.append(f"{conv} AS {_q(col.name)}")
    return ", ".join(out)


def _bad_value(con, name: str, where: str, rel: str, plan, types: dict[str, str]) -> str | None:
    """The first column holding values that do not convert, with an example and its row."""
    checks = []
    for col, theirs in plan:
        if theirs is None or col.type == "string":
            continue
        conv, has = _conversion(col, _q(theirs), types[theirs])
        checks.append((col, theirs, f"{has} AND ({conv}) IS NULL"))
    if not checks:
        return None
    parts = ", ".join(
        f"count(*) FILTER (WHERE {bad}), min(rn) FILTER (WHERE {bad}), "
        f"arg_min(CAST({_q(theirs)} AS VARCHAR), rn) FILTER (WHERE {bad})"
        for _, theirs, bad in checks
    )
    row = con.execute(
        f"SELECT {parts} FROM (SELECT row_number() OVER () AS rn, * FROM {rel})"
    ).fetchone()
    for i, (col, theirs, _) in enumerate(checks):
        n, first, example = row[3 * i : 3 * i + 3]
        if n:
            label = f"'{theirs}'" + (
                "" if theirs == col.name else f" (the contract's '{col.name}')"
            )
            values = "value" if n == 1 else "values"
            return (
                f"{name}: {where}: column {label} has {n} {values} that cannot be read as "
                f"{col.type}, e.g. {example!r} in row {first}"
            )
    return None


def _write(con, name: str, where: str, rel: str, fmt: str, spec: SourceSpec, target: Path, say):
    """Stage one relation into `target` (Parquet, contract-shaped); returns its row count."""
    columns = _describe(con, name, where, rel, fmt, spec)
    types = dict(columns)
    plan = _plan(name, spec, where, [c for c, _ in columns], say)
    try:
        con.execute(
            f"COPY (SELECT {_select(plan, types, strict=True)} FROM {rel}) "
            f"TO {_lit(target)} (FORMAT parquet, COMPRESSION zstd)"
        )
    except duckdb.Error as exc:
        target.unlink(missing_ok=True)
        try:
            message = _bad_value(con, name, where, rel, plan, types)
        except duckdb.Error:
            message = None
        raise SourceError(message or _read_error(name, where, fmt, spec, exc)) from None
    return con.execute(f"SELECT count(*) FROM read_parquet({_lit(target)})").fetchone()[0]


def _pg_connect_url(url: str) -> str:
    """A SQLAlchemy-style `postgresql+psycopg://` URL as libpq wants it."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def _pg_export(name: str, spec: SourceSpec, target: Path) -> str:
    """Stream the table or query as CSV into `target` (never held in memory); its label."""
    import psycopg
    from psycopg import sql

    assert spec.url is not None
    url = safe_url(spec.url)
    if spec.table:
        label = f"table {spec.table} at {url}"
        inner = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*spec.table.split(".")))
    else:
        label = f"the query of data.sources.{name} at {url}"
        inner = sql.SQL((spec.query or "").strip().rstrip(";"))
    copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(inner)
    try:
        conn = psycopg.connect(_pg_connect_url(spec.url), connect_timeout=10)
    except psycopg.Error as exc:
        detail = str(exc).strip().split("\n")[0].replace(spec.url, url)
        raise SourceError(f"{name}: PostgreSQL at {url} is not reachable ({detail})") from None
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET client_encoding TO 'UTF8'")
            cur.execute("SET TimeZone TO 'UTC'")
            cur.execute("SET DateStyle TO 'ISO, YMD'")
            with cur.copy(copy) as stream, open(target, "wb") as out:
                for chunk in stream:
                    out.write(chunk)
    except psycopg.errors.UndefinedTable:
        raise SourceError(f"{name}: {label}: the table does not exist") from None
    except psycopg.Error as exc:
        detail = str(exc).strip().split("\n")[0]
        raise SourceError(f"{name}: {label}: {detail}") from None
    finally:
        conn.close()
    return label


def _stage_one(con, name: str, spec: SourceSpec, tmp: Path, say: Callable[[str], None]) -> Path:
    target = tmp / f"{name}.parquet"
    if spec.url is not None:
        if (spec.table is None) == (spec.query is None):
            raise SourceError(f"{name}: with `url`, set exactly one of `table` and `query`")
        dump = tmp / f".{name}.pg.csv"
        try:
            where = _pg_export(name, spec, dump)
            csv_spec = replace(spec, delimiter=",", encoding="utf-8")
            rel = csv_text([dump], delimiter=",")
            rows = _write(con, name, where, rel, "csv", csv_spec, target, say)
        finally:
            dump.unlink(missing_ok=True)
    elif spec.path is not None:
        path = Path(spec.path)
        rel, fmt = _file_relation(name, spec, path)
        rows = _write(con, name, str(path), rel, fmt, spec, target, say)
        where = str(path)
    else:
        raise SourceError(f"{name}: set `path` (a file) or `url` with `table` or `query`")
    say(f"{name}: {rows:,} rows from {where}")
    return target


def _link_or_copy(src: str, dst: str) -> None:
    """Hard links cost nothing and are safe: outputs are replaced by rename, never rewritten."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _carry(base_dir: Path, name: str, tmp: Path) -> Path | None:
    """Bring source `name` from the default folder into the staging folder, if it is there."""
    try:
        location = source_path(base_dir, name)
    except SourceNotFoundError:
        return None
    if location.is_file():
        target = tmp / location.name
        _link_or_copy(str(location), str(target))
        return target
    target = tmp / name
    target.mkdir()
    for part in source_files(location):
        _link_or_copy(str(part), str(target / part.name))
    return target


def stage(
    specs: dict[str, SourceSpec],
    out_dir: Path,
    base_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write every configured source to `out_dir/<source>.parquet` in the contract's shape.

    Sources not in `specs` are taken from `base_dir` (the workspace's default raw folder) when it
    has them, else left out (their features are absent). The folder is built next to `out_dir`
    and swapped in only when every source staged, so a failure leaves `out_dir` as it was; it
    then holds only the contract's sources (no generator truth, no manifest).

    Args:
        specs: source name -> where it comes from and how its columns map to the contract's.
        out_dir: the folder to (re)create; may be `base_dir` itself.
        base_dir: where unconfigured sources come from, if anywhere.
        progress: called with a short line per source (rows staged, columns left empty).

    Returns: source name -> its path under `out_dir` (a file, or a folder carried from base_dir).
    Raises: SourceError naming the source, file and column of the first problem.
    """
    unknown = sorted(set(specs) - set(SOURCES))
    if unknown:
        raise SourceError(
            f"unknown source(s) {', '.join(unknown)}; the contract has {', '.join(SOURCES)}"
        )
    say = progress or (lambda _: None)
    out_dir = Path(out_dir)
    staged: dict[str, Path] = {}
    with atomic_directory(out_dir) as tmp:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for name in SOURCES:
                if name in specs:
                    staged[name] = _stage_one(con, name, specs[name], tmp, say)
                elif base_dir is not None and (carried := _carry(Path(base_dir), name, tmp)):
                    staged[name] = carried
                    say(f"{name}: taken from {base_dir}")
        finally:
            con.close()
        missing = [name for name in REQUIRED if name not in staged]
        if missing:
            where = f" nor in {base_dir}" if base_dir is not None else ""
            raise SourceError(
                f"{', '.join(missing)}: required, but not configured (data.sources.<name>)"
                f"{where}; {', '.join(REQUIRED)} are needed to compute any feature"
            )
    return {name: out_dir / path.relative_to(tmp) for name, path in staged.items()}
