"""A flat account table as a feature store: one row per account (or per account and snapshot
date), a label column and any number of feature columns, each assigned to a health domain.

The table is read by DuckDB as a stream (a CSV as text, so a stray value in a numeric column is
found and named rather than silently parsed), profiled once, checked (`check_table`), then written
as one snapshot Parquet file per domain plus the label events (`build_table`). The Feast views are
generated from what was written (`views`), never by hand. Nothing here knows about YAML: the
pipeline builds a `TableSpec` from the settings.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb

from features.catalog import Feature, View
from features.duck import csv_text, file_format
from features.duck import ident as _q
from features.duck import literal as _lit
from features.io import atomic_directory

MANIFEST = "_table.json"
LABELS = "_labels.parquet"
ACCOUNTS = "_accounts.parquet"
# Column names that hold revenue (ARR, or monthly revenue scaled by 12).
ARR_WORDS = r"\barr\b|annual|revenue|mrr|monthly.?(charge|fee|revenue|spend)|acv"
MIN_CLASS_ROWS = 10  # decided accounts of each outcome needed to train at all
FLAG_VALUES = {"yes": True, "no": False, "true": True, "false": False, "y": True, "n": False}
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class ColumnSpec:
    domain: str = "other"
    type: str = "auto"  # auto | number | category | flag
    description: str | None = None
    direction: str = "auto"  # auto | higher_is_healthier | higher_is_riskier | none


@dataclass(frozen=True)
class TableSpec:
    path: Path
    id_column: str
    label_column: str
    format: str = "auto"
    encoding: str = "utf-8"
    delimiter: str | None = None
    churn_values: tuple[str, ...] = ("churned", "churn", "yes", "true", "1", "lost")
    renew_values: tuple[str, ...] = ("renewed", "no", "false", "0", "retained", "won")
    as_of_column: str | None = None
    as_of_date: date | None = None
    name_column: str | None = None
    owner_column: str | None = None
    arr_column: str | None = None
    arr_scale: float = 1.0
    exclude: tuple[str, ...] = ()
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    # Internal: a Parquet text copy of a CSV `path` that the checks read instead (see
    # `readable`); messages keep naming `path`.
    read_from: Path | None = None


class TableError(ValueError):
    """The table cannot be used as configured; the message names the file and the column(s)."""


@dataclass(frozen=True)
class TableFeature:
    """One feature column as resolved from the data: its Feast name and how it is read."""

    name: str  # feature name (snake_case identifier)
    column: str  # the table's column
    type: str  # number | category | flag
    domain: str
    description: str
    direction: int  # declared: +1 / -1; 0 unknown or `none`
    learn_direction: bool  # `auto`: training learns the direction from the training rows


# -- reading ----------------------------------------------------------------------------------


def _fmt(spec: TableSpec) -> str:
    return file_format(spec.path, spec.format)


def relation(spec: TableSpec) -> str:
    """The table as a DuckDB relation; a CSV is read as text (types are decided here)."""
    if spec.read_from is not None:
        return f"read_parquet({_lit(spec.read_from)})"
    path = Path(spec.path)
    if not path.is_file():
        raise TableError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise TableError(f"{path}: the file is empty")
    if _fmt(spec) == "parquet":
        return f"read_parquet({_lit(path)})"
    return csv_text([path], spec.encoding, spec.delimiter, sniff_all=True)


def connect(
    memory_limit: str | None = None, spill_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for the table; with `memory_limit` (e.g. "2GB") it spills to
    `spill_dir` rather than grow past it."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # the CLI shows its own progress
    if memory_limit:
        con.execute(f"SET memory_limit = {_lit(memory_limit)}")
    if spill_dir:
        con.execute(f"SET temp_directory = {_lit(Path(spill_dir).resolve())}")
    return con


@contextlib.contextmanager
def readable(con: duckdb.DuckDBPyConnection, spec: TableSpec, scratch: Path) -> Iterator[TableSpec]:
    """The spec to check and build from: for a CSV, a Parquet copy of its text written once into
    `scratch` (removed afterwards), so the several passes of the checks read columns instead of
    re-parsing the file; never a whole table in memory. A Parquet table is read as it is."""
    if _fmt(spec) == "parquet":
        yield spec
        return
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / f".text-{uuid.uuid4().hex}.parquet"
    try:
        try:
            con.execute(
                f"COPY (SELECT * FROM {relation(spec)}) TO {_lit(copy)} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        except duckdb.Error as exc:
            raise TableError(_read_error(spec, exc)) from None
        yield replace(spec, read_from=copy)
    finally:
        copy.unlink(missing_ok=True)


def _columns(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column, or a TableError that says what is wrong."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation(spec)}").fetchall()
    except duckdb.Error as exc:
        raise TableError(_read_error(spec, exc)) from None
    return [(r[0], r[1]) for r in rows]


def _read_error(spec: TableSpec, exc: Exception) -> str:
    full = str(exc)
    text = full.split("\n")[0]
    if any(w in full.lower() for w in ("unicode", "utf-8", "utf8", "encoding")):
        return (
            f"{spec.path}: not valid {spec.encoding} text ({text[:160]}); set `encoding:` "
            "(e.g. latin-1) in data.table"
        )
    return f"{spec.path}: cannot be read as {_fmt(spec).upper()}: {text[:300]}"


def feature_name(column: str) -> str:
    """A column name as a feature name: snake_case, letters, digits and underscores."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column.strip())
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s) or "column"
    return f"c_{s}" if s[0].isdigit() else s


# -- profiling and checks ---------------------------------------------------------------------


@dataclass
class Profile:
    """What one pass over the table found: rows, and per column the counts types are read from."""

    rows: int
    columns: dict[str, str]  # name -> DuckDB type
    stats: dict[str, dict]  # name -> {filled, distinct, numeric, flag}


def profile(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> Profile:
    """Row count and, per column, filled / distinct / numeric-looking / flag-looking counts."""
    cols = _columns(con, spec)
    parts = ["count(*) AS n"]
    for i, (name, _typ) in enumerate(cols):
        c = _q(name)
        text = f"nullif(trim(CAST({c} AS VARCHAR)), '')"
        parts += [
            f"count({text}) AS f{i}",
            f"approx_count_distinct({text}) AS d{i}",
            f"count(TRY_CAST({text} AS DOUBLE)) AS x{i}",
            f"count(CASE WHEN lower({text}) IN ({', '.join(map(_lit, FLAG_VALUES))}) "
            f"THEN 1 END) AS b{i}",
        ]
    try:
        row = con.execute(f"SELECT {', '.join(parts)} FROM {relation(spec)}").fetchone()
    except duckdb.Error as exc:
        raise TableError(_read_error(spec, exc)) from None
    stats = {
        name: {
            "filled": row[1 + 4 * i],
            "distinct": row[2 + 4 * i],
            "numeric": row[3 + 4 * i],
            "flag": row[4 + 4 * i],
            "native": typ,
        }
        for i, (name, typ) in enumerate(cols)
    }
    return Profile(row[0], dict(cols), stats)


def _resolved_type(st: dict, declared: str) -> str:
    if declared != "auto":
        return declared
    native = st["native"].upper()
    if native == "BOOLEAN":
        return "flag"
    if any(t in native for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")):
        return "number"
    if st["filled"] and st["flag"] == st["filled"]:
        return "flag"
    if st["filled"] and st["numeric"] == st["filled"]:
        return "number"
    return "category"


def _declared(spec: TableSpec, column: str) -> str:
    """The type the config gives a column (`auto` when it names none)."""
    cfg = spec.columns.get(column)
    return cfg.type if cfg else "auto"


def _mixed(st: dict) -> bool:
    """Mostly numbers with a few words: a typo, not a category."""
    return st["filled"] > 0 and 0.9 * st["filled"] <= st["numeric"] < st["filled"]


def identifier_like(st: dict, rows: int) -> bool:
    """A text column with a different value in (nearly) every row: an id, not a feature."""
    native = st["native"].upper()
    textual = "VARCHAR" in native and st["numeric"] < st["filled"]
    return textual and rows >= 20 and st["distinct"] >= 0.95 * rows


def resolve(spec: TableSpec, prof: Profile) -> tuple[list[TableFeature], list[str]]:
    """The feature columns with their resolved types, and warnings (identifier-like columns left
    out). Raises TableError naming every configured column the table does not have."""
    have = set(prof.columns)
    special = [spec.id_column, spec.label_column, spec.as_of_column, spec.name_column]
    special += [spec.owner_column, spec.arr_column, *spec.exclude, *spec.columns]
    missing = sorted({c for c in special if c and c not in have})
    if missing:
        raise TableError(
            f"{spec.path}: no column {', '.join(map(repr, missing))}; the table has "
            + ", ".join(map(repr, prof.columns))
        )
    skip = {spec.id_column, spec.label_column, spec.as_of_column, spec.name_column}
    skip |= {spec.owner_column, *spec.exclude}
    features, warnings, seen = [], [], {}
    for column in prof.columns:
        if column in skip:
            continue
        st = prof.stats[column]
        cfg = spec.columns.get(column, ColumnSpec())
        if column not in spec.columns and identifier_like(st, prof.rows):
            warnings.append(
                f"{spec.path}: column {column!r} has a different value in almost every row "
                "(an identifier?): left out; list it under data.table.columns to keep it"
            )
            continue
        if column not in spec.columns and st["filled"] == 0:
            warnings.append(f"{spec.path}: column {column!r} is empty in every row: left out")
            continue
        name = feature_name(column)
        if name in seen:
            raise TableError(
                f"{spec.path}: columns {seen[name]!r} and {column!r} both become feature "
                f"{name!r}; rename one or exclude it"
            )
        seen[name] = column
        direction = {"higher_is_healthier": 1, "higher_is_riskier": -1}.get(cfg.direction, 0)
        type_ = _resolved_type(st, cfg.type)
        features.append(
            TableFeature(
                name=name,
                column=column,
                type=type_,
                domain=cfg.domain,
                description=cfg.description or column.replace("_", " "),
                direction=direction if type_ != "category" else 0,
                learn_direction=cfg.direction == "auto" and type_ != "category",
            )
        )
    if not features:
        raise TableError(f"{spec.path}: no feature column left (all excluded or identifiers)")
    return features, warnings


def _label_sql(spec: TableSpec) -> str:
    v = f"lower(trim(CAST({_q(spec.label_column)} AS VARCHAR)))"
    churn = ", ".join(_lit(x.lower()) for x in spec.churn_values)
    renew = ", ".join(_lit(x.lower()) for x in spec.renew_values)
    return f"CASE WHEN {v} IN ({churn}) THEN false WHEN {v} IN ({renew}) THEN true END"


def _as_of_sql(spec: TableSpec) -> str:
    if spec.as_of_column:
        return f"TRY_CAST({_q(spec.as_of_column)} AS DATE)"
    return f"DATE {_lit((spec.as_of_date or date.today()).isoformat())}"


def _value_sql(f: TableFeature) -> str:
    text = f"nullif(trim(CAST({_q(f.column)} AS VARCHAR)), '')"
    if f.type == "number":
        return f"TRY_CAST({text} AS DOUBLE)"
    if f.type == "flag":
        pairs = " ".join(f"WHEN {_lit(k)} THEN {str(v).lower()}" for k, v in FLAG_VALUES.items())
        return (
            f"CASE lower({text}) {pairs} ELSE TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BOOLEAN) END"
        )
    return text


def _examples(con, spec: TableSpec, where: str, column: str) -> str:
    rows = con.execute(
        f"SELECT n, v FROM (SELECT row_number() OVER () + 1 AS n, CAST({_q(column)} AS VARCHAR)"
        f" AS v, * FROM {relation(spec)}) WHERE {where} LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    return ", ".join(f"{v!r} (line {n})" for n, v in rows)


def check_table(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> tuple[list, list, dict]:
    """Every problem that stops training on the table, as messages naming the file and column;
    returns (errors, warnings, facts). Reads the table; writes nothing."""
    prof = profile(con, spec)
    if prof.rows == 0:
        return [f"{spec.path}: the table has a header but no rows"], [], {"rows": 0}
    try:
        features, warnings = resolve(spec, prof)
    except TableError as exc:
        return [str(exc)], [], {"rows": prof.rows}
    errors = []
    rel = relation(spec)
    for f in features:
        st = prof.stats[f.column]
        if f.type == "number" and st["numeric"] < st["filled"]:
            text = f"nullif(trim(CAST({_q(f.column)} AS VARCHAR)), '')"
            bad = st["filled"] - st["numeric"]
            where = f"{text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL"
            hint = "fix them" + (", or set type: category for the column" if _mixed(st) else "")
            errors.append(
                f"{spec.path}: column {f.column!r}: {bad:,} of {st['filled']:,} values are not "
                f"numbers, e.g. {_examples(con, spec, where, f.column)}; {hint}"
            )
        elif f.type == "category" and _declared(spec, f.column) == "auto" and _mixed(st):
            text = f"nullif(trim(CAST({_q(f.column)} AS VARCHAR)), '')"
            where = f"{text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL"
            errors.append(
                f"{spec.path}: column {f.column!r} mixes numbers and text "
                f"({st['numeric']:,} numbers, {st['filled'] - st['numeric']:,} not), e.g. "
                f"{_examples(con, spec, where, f.column)}: fix the values, or set its type "
                "(number or category) under data.table.columns"
            )
    ident = _q(spec.id_column)
    label, as_of = _label_sql(spec), _as_of_sql(spec)
    facts = con.execute(
        f"""SELECT count(*) FILTER (WHERE nullif(trim(CAST({ident} AS VARCHAR)), '') IS NULL),
                   count(*) FILTER (WHERE {as_of} IS NULL),
                   count(*) FILTER (WHERE lbl IS NULL AND raw IS NOT NULL),
                   count(*) FILTER (WHERE lbl = false), count(*) FILTER (WHERE lbl = true),
                   count(DISTINCT {as_of}), min({as_of}), max({as_of})
            FROM (SELECT *, {label} AS lbl,
                         nullif(trim(CAST({_q(spec.label_column)} AS VARCHAR)), '') AS raw
                  FROM {rel})"""
    ).fetchone()
    no_id, no_date, odd_label, churned, renewed, dates, first, last = facts
    if no_id:
        errors.append(f"{spec.path}: column {spec.id_column!r}: {no_id:,} rows have no id")
    if no_date:
        where = f"{as_of} IS NULL"
        errors.append(
            f"{spec.path}: column {spec.as_of_column!r}: {no_date:,} rows have no readable date, "
            f"e.g. {_examples(con, spec, where, spec.as_of_column)}"
        )
    if odd_label:
        values = con.execute(
            f"SELECT DISTINCT CAST({_q(spec.label_column)} AS VARCHAR) FROM {rel} "
            f"WHERE ({label}) IS NULL AND nullif(trim(CAST({_q(spec.label_column)} AS VARCHAR)),"
            f" '') IS NOT NULL LIMIT 5"
        ).fetchall()
        errors.append(
            f"{spec.path}: column {spec.label_column!r}: {odd_label:,} values are neither "
            f"churn_values nor renew_values, e.g. {', '.join(repr(v[0]) for v in values)}; "
            "list them under data.table.churn_values / renew_values"
        )
    dup = con.execute(
        f"SELECT CAST({ident} AS VARCHAR), {as_of}, count(*) FROM {rel} GROUP BY ALL "
        f"HAVING count(*) > 1 LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    if dup:
        total = con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {rel} GROUP BY CAST({ident} AS VARCHAR), "
            f"{as_of} HAVING count(*) > 1)"
        ).fetchone()[0]
        key = (
            f"({spec.id_column!r}, {spec.as_of_column!r})"
            if spec.as_of_column
            else (repr(spec.id_column))
        )
        errors.append(
            f"{spec.path}: duplicate key {key}: {total:,} keys appear more than once, e.g. "
            + ", ".join(f"{d[0]!r} ({d[2]} rows)" for d in dup)
        )
    for outcome, count in (("churned", churned), ("renewed", renewed)):
        if count < MIN_CLASS_ROWS:
            errors.append(
                f"{spec.path}: column {spec.label_column!r}: only {count} {outcome} accounts; "
                f"training needs at least {MIN_CLASS_ROWS} of each outcome "
                f"({churned:,} churned, {renewed:,} renewed)"
            )
    info = {
        "rows": prof.rows,
        "features": len(features),
        "churned": churned,
        "renewed": renewed,
        "undecided": prof.rows - churned - renewed - odd_label,
        "snapshot_dates": dates,
        "first_date": str(first) if first else None,
        "last_date": str(last) if last else None,
    }
    return errors, warnings, info


# -- building ---------------------------------------------------------------------------------


def build_table(
    spec: TableSpec, feature_dir: Path, progress=None, memory_limit: str | None = None
) -> dict:
    """Check the table, then write one snapshot file per domain, the label events and the
    account names into `feature_dir` (swapped in whole, only on success); returns the manifest.

    Each row becomes the snapshot of its account on its as-of day, stamped the next midnight
    (UTC) like the contract path's snapshots; a decided row becomes a label event at that stamp.
    """
    say = progress or (lambda _m: None)
    feature_dir = Path(feature_dir)
    with atomic_directory(feature_dir) as tmp:
        con = connect(memory_limit, spill_dir=tmp)
        say(f"reading {spec.path}")
        with readable(con, spec, tmp) as text:
            say(f"checking {spec.path}")
            manifest = _build(con, text, tmp, say)
    return manifest


def _build(con: duckdb.DuckDBPyConnection, spec: TableSpec, tmp: Path, say) -> dict:
    errors, warnings, facts = check_table(con, spec)
    if errors:
        raise TableError("\n".join(errors))
    features, _ = resolve(spec, profile(con, spec))
    domains = sorted({f.domain for f in features})
    rel = relation(spec)
    as_of = _as_of_sql(spec)
    values = ",\n  ".join(f"{_value_sql(f)} AS {_q(f.name)}" for f in features)
    extra = []
    if spec.name_column:
        extra.append(f"CAST({_q(spec.name_column)} AS VARCHAR) AS account_name")
    if spec.owner_column:
        extra.append(f"CAST({_q(spec.owner_column)} AS VARCHAR) AS csm_owner")
    if spec.arr_column:  # revenue at stake; the column may be a feature as well
        extra.append(
            f"TRY_CAST(trim(CAST({_q(spec.arr_column)} AS VARCHAR)) AS DOUBLE) * "
            f"{float(spec.arr_scale)!r} AS arr"
        )
    typed = (
        f"SELECT trim(CAST({_q(spec.id_column)} AS VARCHAR)) AS account_id,\n"
        f"  CAST({as_of} + INTERVAL 1 DAY AS TIMESTAMP) AS event_timestamp,\n"
        f"  {as_of} AS as_of, {_label_sql(spec)} AS renewed,\n  "
        + ",\n  ".join([values, *extra])
        + f"\nFROM {rel}\nORDER BY account_id, event_timestamp"
    )
    # Sorted once here; the copies below keep that order (DuckDB preserves insertion order).
    staged = tmp / "_typed.parquet"
    say("reading the table (streamed) into typed columns")
    con.execute(f"COPY ({typed}) TO {_lit(staged)} (FORMAT parquet)")
    src = f"read_parquet({_lit(staged)})"
    for d in domains:
        cols = ", ".join(_q(f.name) for f in features if f.domain == d)
        say(f"writing the {d} snapshots")
        con.execute(
            f"COPY (SELECT account_id, event_timestamp, {cols} FROM {src}) "
            f"TO {_lit(tmp / f'{view_name(d)}.parquet')} (FORMAT parquet)"
        )
    con.execute(
        f"COPY (SELECT account_id, event_timestamp, account_id || '@' || CAST(as_of AS "
        f"VARCHAR) AS contract_id, CAST(as_of AS TIMESTAMP) AS renewal_date, renewed "
        f"FROM {src} WHERE renewed IS NOT NULL) "
        f"TO {_lit(tmp / LABELS)} (FORMAT parquet)"
    )
    if extra:  # name, owner and ARR of each account's latest row, for the dashboard
        latest = ", ".join(
            f"arg_max({n}, as_of) AS {n}" for n in (c.split(" AS ")[-1] for c in extra)
        )
        con.execute(
            f"COPY (SELECT account_id, {latest} FROM {src} GROUP BY account_id "
            f"ORDER BY account_id) TO {_lit(tmp / ACCOUNTS)} (FORMAT parquet)"
        )
    staged.unlink()
    manifest = {
        "source": str(spec.path),
        "facts": facts,
        "warnings": warnings,
        "features": [asdict(f) for f in features],
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    return manifest


def view_name(domain: str) -> str:
    return f"table_{feature_name(domain)}"


def read_manifest(feature_dir: Path) -> dict:
    path = Path(feature_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no table built yet: run `healthscore features apply`")
    return json.loads(path.read_text())


def table_features(manifest: dict) -> list[TableFeature]:
    return [TableFeature(**f) for f in manifest["features"]]


FEAST_TYPES = {"number": "float", "category": "string", "flag": "bool"}


def views(manifest: dict) -> tuple[View, ...]:
    """One Feast view per domain, generated from what `build_table` wrote."""
    features = table_features(manifest)
    out = []
    for d in sorted({f.domain for f in features}):
        out.append(
            View(
                view_name(d),
                d,
                f"Columns of {Path(manifest['source']).name} in the {d} domain.",
                tuple(
                    Feature(f.name, FEAST_TYPES[f.type], f.description, f.direction)
                    for f in features
                    if f.domain == d
                ),
            )
        )
    return tuple(out)


def learned(manifest: dict) -> list[str]:
    """Features whose direction training learns from the training rows (`direction: auto`)."""
    return [f.name for f in table_features(manifest) if f.learn_direction]


def latest_date(manifest: dict) -> date:
    return date.fromisoformat(manifest["facts"]["last_date"])


# -- a starter configuration (`healthscore init --from-table`) --------------------------------

DOMAIN_WORDS = (  # first match wins; a team edits the result
    ("support", r"ticket|support|call|complain|escalat|incident|case"),
    ("satisfaction", r"nps|csat|satisf|survey|rating|score"),
    ("financial", r"charge|price|revenue|arr|mrr|bill|pay|invoice|discount|amount|spend|cost"),
    ("contract", r"tenure|contract|term|renewal|plan|segment|tier|months|since|age"),
    ("usage", r"login|session|usage|active|seat|minutes|gb|data|visit|event|use"),
    ("adoption", r"feature|service|training|onboard|adopt|integrat|addon|streaming|security"),
    ("engagement", r"email|meeting|qbr|webinar|contact|champion|sponsor|partner|dependents"),
)
LABEL_WORDS = r"churn|renew|exited|attrition|retained|cancel|label|target|outcome|status"
DATE_WORDS = r"as_?of|snapshot|date|month|period"


def suggest(path: Path, format: str = "auto", encoding: str = "utf-8", delimiter=None) -> dict:
    """A starter `data.table` section from the table itself: id, label, as-of, name and owner
    columns guessed from names and values, every other column with a guessed domain."""
    spec = TableSpec(Path(path), "", "", format=format, encoding=encoding, delimiter=delimiter)
    con = connect()
    prof = profile(con, spec)
    if prof.rows == 0:
        raise TableError(f"{path}: the table has a header but no rows")
    names = list(prof.columns)
    st = prof.stats

    def pick(pattern: str, ok) -> str | None:
        return next((c for c in names if re.search(pattern, c, re.I) and ok(c)), None)

    dates = [
        c
        for c in names
        if re.search(DATE_WORDS, c, re.I)
        and con.execute(
            f"SELECT count(TRY_CAST({_q(c)} AS DATE)) = count({_q(c)}) AND count({_q(c)}) > 0 "
            f"FROM {relation(spec)}"
        ).fetchone()[0]
    ]
    unique = [c for c in names if st[c]["distinct"] >= 0.98 * prof.rows and st[c]["filled"]]
    id_words = r"(^|_|[a-z ])(id|key)$|^id|identifier"
    id_col = pick(id_words, lambda c: c in unique)
    id_col = id_col or (unique[0] if unique else None)
    if id_col is None and dates:  # one row per account and snapshot date
        date_col = dates[0]

        def unique_per_date(c: str) -> bool:
            return (
                c != date_col
                and con.execute(
                    f"SELECT count(DISTINCT ({_q(c)}, {_q(date_col)})) = count(*) "
                    f"FROM {relation(spec)}"
                ).fetchone()[0]
            )

        id_col = pick(id_words, unique_per_date)
    if id_col is None:
        raise TableError(
            f"{path}: no column with a different value in every row (or in every row of one "
            "snapshot date): set data.table.id_column by hand"
        )
    two = [c for c in names if c != id_col and 1 <= st[c]["distinct"] <= 3]
    label = pick(LABEL_WORDS, lambda c: c in two)
    if label is None:
        raise TableError(
            f"{path}: no churn column found (a column named like churn/renewed/status with two "
            "values); write data.table.label_column by hand"
        )
    values = [
        str(v[0]).strip()
        for v in con.execute(
            f"SELECT DISTINCT CAST({_q(label)} AS VARCHAR) FROM {relation(spec)} "
            f"WHERE {_q(label)} IS NOT NULL"
        ).fetchall()
    ]
    churn_words = {*TableSpec.__dataclass_fields__["churn_values"].default}
    renew_words = {*TableSpec.__dataclass_fields__["renew_values"].default}
    churn = [v for v in values if v.lower() in churn_words]
    renew = [v for v in values if v.lower() in renew_words]
    generic = {"yes", "no", "true", "false", "1", "0", "y", "n"}
    # A column that says who stayed (`Renewed`: 1/yes = renewed) flips generic values; values
    # that are words of their own (`Renewal Status`: Renewed/Churned) already say what they mean.
    if re.search(r"renew|retain", label, re.I) and {v.lower() for v in values} <= generic:
        churn, renew = renew, churn
    taken = {id_col, label, *dates[:1]}
    textual = [c for c in names if c not in taken and st[c]["numeric"] < st[c]["filled"]]
    name_col = next(
        (c for c in textual if re.search(r"name|^(company|organi[sz]ation|customer)$", c, re.I)),
        None,
    )
    owner_col = next((c for c in textual if re.search(r"owner|csm|manager|rep\b", c, re.I)), None)
    table: dict = {
        "path": str(path),
        "id_column": id_col,
        "label_column": label,
        "churn_values": churn or ["yes"],
        "renew_values": renew or ["no"],
    }
    if dates:
        table["as_of_column"] = dates[0]
    else:
        table["as_of_date"] = date.today().isoformat()
    if name_col:
        table["name_column"] = name_col
    if owner_col:
        table["owner_column"] = owner_col
    numeric = [
        c
        for c in names
        if c not in taken and st[c]["filled"] and st[c]["numeric"] == st[c]["filled"]
    ]
    arr_col = next((c for c in numeric if re.search(ARR_WORDS, c, re.I)), None)
    if arr_col:
        table["arr_column"] = arr_col
        if re.search(r"month|mrr", arr_col, re.I):
            table["arr_scale"] = 12.0
    skip = {id_col, label, *dates[:1], name_col, owner_col}
    exclude, columns = [], {}
    for c in names:
        if c in skip:
            continue
        if identifier_like(st[c], prof.rows):
            exclude.append(c)
            continue
        domain = next((d for d, w in DOMAIN_WORDS if re.search(w, c, re.I)), "other")
        columns[c] = {"domain": domain, "description": _words(c)}
    table["exclude"] = exclude
    table["columns"] = columns
    return {"table": table, "rows": prof.rows, "values": values}


def _words(column: str) -> str:
    """`MonthlyCharges` -> 'monthly charges', `SupportCalls90d` -> 'support calls 90d'."""
    s = re.sub(r"([a-z])([A-Z0-9])", r"\1 \2", column)
    return re.sub(r"[_\s]+", " ", s).strip().lower()
