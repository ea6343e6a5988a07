"""Validate a folder of raw sources against the data contract, without writing anything.

Per-file checks are a pandera `DataFrameSchema` generated from `features.contract.SOURCES`. What
one file cannot show (missing sources, unreadable files, empty tables, keys repeated across part
files) is checked around it. Each problem becomes one `Finding` per (file, column, check). A
missing optional source (`features.sources.OPTIONAL`) is a warning that says which features will
be absent; a missing required one is an error.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
from pandera.errors import SchemaErrors

from features.contract import SOURCES, Column, Source
from features.io import SourceNotFoundError, read_table, source_files, source_path
from features.sources import OPTIONAL, REQUIRED, losses

# Strings are checked as `object`: pandera's `str` tests every value in Python (~10 s per 10M).
DTYPES = {
    "string": "object",
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
    "timestamp": "datetime64[ns]",
    "date": "datetime64[ns]",
}
# An empty `usage` leaves no period to compute features for (its last day ends the data).
MUST_HAVE_ROWS = REQUIRED
MAX_EXAMPLES = 3
# pandera's built-in check names -> finding kinds; our own checks carry the kind as `error`.
BUILTIN_KINDS = {
    "column_in_dataframe": "missing column",
    "not_nullable": "null values",
    "field_uniqueness": "duplicate key",
}
STRUCTURAL = ("missing column", "wrong type")
VALUE_KINDS = ("wrong type", "out of range", "not allowed", "unknown account")


@dataclass
class Finding:
    """One problem: where (file, column), what kind (`check`), how many rows, a few examples."""

    file: Path
    column: str | None
    check: str
    message: str
    count: int = 0
    examples: list[dict] = field(default_factory=list)


@dataclass
class ValidationReport:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _plain(value: object) -> object:
    """A JSON-friendly version of a pandas/numpy scalar."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _has_contract_dtype(df: pd.DataFrame, col: Column) -> bool:
    if col.name not in df.columns:
        return False
    dtype = df[col.name].dtype
    if col.type == "float":
        return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return str(dtype) == DTYPES[col.type]


def _usable(df: pd.DataFrame, source: Source, names: list[str]) -> bool:
    """Whether cross-column checks can run (else they are reported as missing / wrong type)."""
    return all(_has_contract_dtype(df, source.column(n)) for n in names)


def _rule_columns(source: Source, expr: str) -> list[str]:
    return [c for c in source.column_names if re.search(rf"\b{re.escape(c)}\b", expr)]


def _frame_tests(source: Source) -> dict[str, tuple[list[str], Callable]]:
    """Checks spanning columns, by check id: (columns involved, test true for valid rows)."""
    key = list(source.key)
    tests: dict[str, tuple[list[str], Callable]] = {
        "duplicate key": (key, lambda df: ~df.duplicated(key, keep=False))
    }
    for a, b in source.time_order:
        tests[f"time order:{a}:{b}"] = (
            [a, b],
            lambda df, a=a, b=b: df[a].isna() | df[b].isna() | (df[b] >= df[a]),
        )
    for name, expr in source.row_rules:  # nulls are the nullable check's job
        tests[f"rule:{name}"] = (
            _rule_columns(source, expr),
            lambda df, expr=expr: df.eval(expr).fillna(True).astype(bool),
        )
    return tests


def _guarded(source: Source, columns: list[str], test: Callable) -> Callable:
    """Run `test` only when its columns are usable (else: reported as missing / wrong type)."""
    return lambda df: test(df) if _usable(df, source, columns) else True


def _widen_ints(s: pd.Series) -> pd.Series:
    return s.astype("float64") if pd.api.types.is_integer_dtype(s.dtype) else s


def _plain_strings(s: pd.Series) -> pd.Series:
    """Dictionary-encoded (category) and pandas `string` columns are strings too."""
    if isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype):
        return s.astype(object).where(s.notna(), None)
    return s


PARSERS = {"float": [pa.Parser(_widen_ints)], "string": [pa.Parser(_plain_strings)]}


def _column_schema(col: Column, account_ids: frozenset | None) -> pa.Column:
    checks = []
    if col.min is not None:
        checks.append(pa.Check.ge(col.min, error="out of range"))
    if col.max is not None:
        checks.append(pa.Check.le(col.max, error="out of range"))
    if col.allowed:
        checks.append(pa.Check.isin(col.allowed, error="not allowed"))
    if col.name == "account_id" and account_ids is not None:
        checks.append(pa.Check.isin(account_ids, error="unknown account"))
    return pa.Column(
        DTYPES[col.type],
        checks,
        nullable=col.nullable,
        unique=col.unique,
        parsers=PARSERS.get(col.type),
        required=True,
    )


def build_schema(source: Source, account_ids: frozenset | None = None) -> pa.DataFrameSchema:
    """The pandera schema of one source; `account_ids` switches on the reference check.

    The key, time-order and row-rule checks are dataframe-level checks that keep only a few
    failure cases, and `_findings` counts their failing rows itself: pandera reshapes every
    failing row of a dataframe-level failure (also for `DataFrameSchema(unique=key)`), which
    took 4 minutes for 170k failing rows.
    """
    checks = [
        pa.Check(_guarded(source, cols, test), error=check_id, n_failure_cases=MAX_EXAMPLES)
        for check_id, (cols, test) in _frame_tests(source).items()
    ]
    refs = account_ids if source.references_accounts else None
    return pa.DataFrameSchema(
        {c.name: _column_schema(c, refs) for c in source.columns},
        checks=checks,
        strict=False,
        name=source.name,
    )


def _bounds(col: Column) -> str:
    lo = "-inf" if col.min is None else f"{col.min:g}"
    return f"[{lo}, {'inf' if col.max is None else f'{col.max:g}'}]"


def _describe(
    source: Source, df: pd.DataFrame, kind: str, detail: str, col: str | None, n: int
) -> tuple[str | None, list[str], str]:
    """Column label, columns worth showing, and message of one failed check in `n` rows."""
    rows = _rows(n)
    if kind == "time order":
        earlier, later = detail.split(":")
        return later, [earlier, later], f"column '{later}' is before '{earlier}' in {rows}"
    if kind == "rule":
        cols = _rule_columns(source, dict(source.row_rules)[detail])
        return ", ".join(cols), cols, f"rule '{detail}' fails in {rows} ({', '.join(cols)})"
    if kind == "duplicate key":
        cols = list(source.key) if col is None or col in source.key else [col]
        return ", ".join(cols), cols, f"key ({', '.join(cols)}) is duplicated in {rows}"
    if kind == "missing column":
        return col, [], f"column '{col}' is missing"
    if col not in source.column_names:
        return col, [], f"check {kind!r} failed on column '{col}'"
    spec = source.column(col)
    if kind == "wrong type":
        text = f"has type {df[col].dtype}, expected {spec.type}"
    elif kind == "null values":
        text = f"is required but empty in {rows}"
    elif kind == "out of range":
        text = f"is outside {_bounds(spec)} in {rows}"
    elif kind == "not allowed":
        text = f"has values not in {list(spec.allowed or ())} in {rows}"
    elif kind == "unknown account":
        text = f"has values not in accounts.account_id in {rows}"
    else:
        text = f"fails check {kind!r} in {rows}"
    return col, [col], f"column '{col}' {text}"


def _findings(
    source: Source, df: pd.DataFrame, path: Path, rel: str, cases: pd.DataFrame
) -> list[Finding]:
    """Turn pandera's failure cases for one file into one finding per (column, kind)."""
    found: dict[tuple, Finding] = {}
    tests = _frame_tests(source)
    cases = cases.assign(column=cases["column"].where(~cases["check"].isin(tests.keys())))
    for (check, col), group in cases.groupby(["check", "column"], dropna=False, sort=False):
        kind, _, detail = BUILTIN_KINDS.get(check, check).partition(":")
        kind = "wrong type" if kind.startswith("dtype(") else kind
        col = group["failure_case"].iloc[0] if kind == "missing column" else col
        col = None if pd.isna(col) else col
        index = pd.Index(group["index"].dropna().unique()).sort_values()  # failing rows, if known
        if check in tests and len(index):  # pandera kept only a few of them
            index = df.index[~tests[check][1](df).to_numpy(dtype=bool)]
        n = len(index) or (len(df) if kind in STRUCTURAL else 0)
        label, involved, message = _describe(source, df, kind, detail, col, n)
        if (label, kind) in found:
            continue
        if not n:  # the check raised instead of returning failing rows
            message = f"check '{kind}' on {label} could not run: {group['failure_case'].iloc[0]}"
        if len(index) and kind == "wrong type":
            message += f"; {_rows(len(index))} cannot be read as {source.column(col).type}"
        if len(index) and kind in VALUE_KINDS:
            values = group["failure_case"].drop_duplicates()[:MAX_EXAMPLES]
            message += f" (e.g. {', '.join(repr(_plain(v)) for v in values)})"
        shown = list(dict.fromkeys(c for c in [*source.key, *involved] if c in df.columns))
        records = df.loc[index[:MAX_EXAMPLES], shown].to_dict("records") if len(index) else []
        examples = [{k: _plain(v) for k, v in r.items()} for r in records]
        found[label, kind] = Finding(path, label, kind, f"{rel}: {message}", n, examples)
    # Checks on a missing or mistyped column say nothing new (and duplicate-key checks on a
    # partial key are wrong), so only the structural finding is kept for such columns.
    broken = {f.column for f in found.values() if f.check in STRUCTURAL}
    return [
        f
        for f in found.values()
        if f.check in STRUCTURAL or not broken & set((f.column or "").split(", "))
    ]


def _key_hashes(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(df[key], index=False).to_numpy()


def _duplicates_across_parts(
    source: Source, folder: Path, rel: str, parts: list[tuple[Path, np.ndarray]]
) -> Finding | None:
    """Keys present in more than one part file (repeats within a file are pandera's)."""
    if len(parts) < 2:
        return None
    every = np.sort(np.concatenate([h for _, h in parts]))  # each part's hashes are unique
    shared = every[1:][every[1:] == every[:-1]]
    if not len(shared):
        return None
    key = list(source.key)
    frames = []  # re-read only the key columns of the files involved, to confirm and show
    for path, hashes in parts:
        if np.isin(hashes, shared).any():
            keys = read_table(path, key)
            keys = keys[np.isin(_key_hashes(keys, key), shared)].drop_duplicates()
            frames.append(keys.assign(file=path.name))
    dup = pd.concat(frames, ignore_index=True)
    dup = dup[dup.groupby(key)["file"].transform("nunique") > 1].sort_values([*key, "file"])
    if dup.empty:
        return None
    label, files = ", ".join(key), ", ".join(sorted(dup["file"].unique()))
    examples = [{k: _plain(v) for k, v in r.items()} for r in dup.head(3).to_dict("records")]
    message = f"{rel}: key ({label}) is repeated across part files ({files}) in {_rows(len(dup))}"
    return Finding(folder, label, "duplicate key", message, len(dup), examples)


def _validate_file(
    schema: pa.DataFrameSchema,
    source: Source,
    df: pd.DataFrame,
    path: Path,
    rel: str,
    report: ValidationReport,
) -> None:
    for extra in (c for c in df.columns if c not in source.column_names):
        note = f"{rel}: column '{extra}' is not in the contract and is ignored"
        report.warnings.append(Finding(path, extra, "extra column", note))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandera's own concat warning
            schema.validate(df, lazy=True, inplace=True)
    except SchemaErrors as exc:
        report.errors += _findings(source, df, path, rel, exc.failure_cases)


def _validate_source(
    data_dir: Path,
    source: Source,
    account_ids: frozenset | None,
    report: ValidationReport,
    say: Callable[[str], None],
) -> frozenset | None:
    """Validate every part of one source; returns the account ids it holds, if all readable."""
    name, key = source.name, list(source.key)
    try:
        location = source_path(data_dir, name)
    except SourceNotFoundError:
        if name in OPTIONAL:  # a team without it: its features are absent, nothing is wrong
            message = (
                f"{name}: not provided (no {name}.parquet or folder {name}/), so these features "
                f"will be absent: {losses(name)}"
            )
            report.warnings.append(Finding(data_dir / name, None, "not provided", message))
            return None
        message = (
            f"{name}: source is missing (expected {name}.parquet or a folder {name}/); it is "
            f"required ({', '.join(REQUIRED)} are needed for any feature)"
        )
        report.errors.append(Finding(data_dir / name, None, "missing source", message))
        return None
    where = location.relative_to(data_dir).as_posix()
    if location.is_dir() and (data_dir / f"{name}.parquet").is_file():
        message = f"{name}.parquet: ignored, because the folder {name}/ is read instead"
        report.warnings.append(Finding(data_dir / f"{name}.parquet", None, "ignored file", message))
    files = source_files(location)
    if not files:
        message = f"{where}/: folder holds no .parquet files"
        report.errors.append(Finding(location, None, "no parquet files", message))
        return None
    schema = build_schema(source, account_ids)
    rows, unreadable, ids, parts = 0, 0, [], []
    for i, path in enumerate(files, 1):
        rel = path.relative_to(data_dir).as_posix()
        say(f"validating {rel} ({i}/{len(files)})")
        try:
            df = read_table(path)
        except (OSError, ValueError, arrow.ArrowException) as exc:
            unreadable += 1
            message = f"{rel}: cannot be read ({str(exc).replace(str(path), rel)})"
            report.errors.append(Finding(path, None, "unreadable file", message))
            continue
        rows += len(df)
        _validate_file(schema, source, df, path, rel, report)
        if _usable(df, source, key):
            parts.append((path, pd.unique(_key_hashes(df, key))))
        if name == "accounts" and _usable(df, source, ["account_id"]):
            ids.append(df["account_id"].dropna().unique())
    report.rows[name] = rows
    if rows == 0 and not unreadable:
        empty = Finding(location, None, "empty table", f"{where}: table has no rows")
        (report.errors if name in MUST_HAVE_ROWS else report.warnings).append(empty)
    if (dup := _duplicates_across_parts(source, location, where, parts)) is not None:
        report.errors.append(dup)
    return frozenset(np.concatenate(ids)) if rows and ids and not unreadable else None


def validate_dir(data_dir: Path, progress: Callable[[str], None] | None = None) -> ValidationReport:
    """Check every source of the contract under `data_dir`; reads only, never writes.

    Run it on the folder `features.sources.stage` wrote when a project names its own sources.

    Args:
        data_dir: folder holding one `<source>.parquet` or `<source>/` folder of parts per source.
        progress: called with a short line before each file is read.
    """
    data_dir = Path(data_dir)
    report = ValidationReport()
    account_ids: frozenset | None = None
    for source in SOURCES.values():
        ids = _validate_source(data_dir, source, account_ids, report, progress or (lambda _: None))
        if source.name == "accounts":
            account_ids = ids
            if ids is None:
                message = "accounts: no readable account rows, so account_id is not checked"
                where = data_dir / "accounts"
                report.warnings.append(
                    Finding(where, "account_id", "references not checked", message)
                )
    return report
