"""Validation of a raw-data folder: clean synthetic data passes, each kind of damage is caught."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.io import read_table
from features.synthetic.generator import GeneratorConfig, generate_book
from features.validation import Finding, ValidationReport, validate_dir


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-account book generated once for this module. Treat it as read-only."""
    out = tmp_path_factory.mktemp("validation") / "raw"
    generate_book(GeneratorConfig(accounts=300), out)
    return out


@pytest.fixture
def data(clean_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the clean book, free to damage."""
    return Path(shutil.copytree(clean_dir, tmp_path / "raw"))


def part(data: Path, source: str, index: int = 0) -> Path:
    return data / source / f"part-{index:05d}.parquet"


def write(df: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def damage(data: Path, source: str, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    """Rewrite part 0 of `source` after `edit` (which may change the frame in place)."""
    df = read_table(part(data, source))
    result = edit(df)
    write(df if result is None else result, part(data, source))


def set_values(data: Path, source: str, column: str, value: object, rows: list[int]) -> None:
    """Set `column` to `value` in the given rows of part 0 of `source`."""
    df = read_table(part(data, source))
    df.loc[rows, column] = value
    write(df, part(data, source))


def only(report: ValidationReport, check: str) -> Finding:
    """The single error of kind `check`, after asserting it is the only kind of error."""
    kinds = sorted({f.check for f in report.errors})
    assert kinds == [check], [f.message for f in report.errors]
    (finding,) = [f for f in report.errors if f.check == check]
    return finding


def assert_names(finding: Finding, file: str, column: str | None) -> None:
    assert file in finding.message, finding.message
    if column is not None:
        assert column in finding.message, finding.message
        assert column in (finding.column or ""), finding.column


def test_clean_data_validates(clean_dir: Path) -> None:
    report = validate_dir(clean_dir)
    assert report.ok, [f.message for f in report.errors]
    assert report.errors == [] and report.warnings == []
    assert report.rows["accounts"] == 300
    assert all(n > 0 for n in report.rows.values())


def test_single_file_source(data: Path) -> None:
    part(data, "accounts").rename(data / "accounts.parquet")
    (data / "accounts").rmdir()
    report = validate_dir(data)
    assert report.ok, [f.message for f in report.errors]
    assert report.rows["accounts"] == 300


def test_missing_source(data: Path) -> None:
    shutil.rmtree(data / "usage")
    finding = only(validate_dir(data), "missing source")
    assert_names(finding, "usage", None)
    assert "required" in finding.message
    assert finding.column is None


def test_missing_optional_source_is_a_warning(data: Path) -> None:
    shutil.rmtree(data / "tickets")
    report = validate_dir(data)
    assert report.ok, [f.message for f in report.errors]
    (finding,) = report.warnings
    assert finding.check == "not provided" and finding.column is None
    assert_names(finding, "tickets", None)
    assert "the support view" in finding.message, finding.message


def test_folder_without_parquet_files(data: Path) -> None:
    part(data, "enablement").unlink()
    finding = only(validate_dir(data), "no parquet files")
    assert_names(finding, "enablement", None)


def test_missing_column(data: Path) -> None:
    damage(data, "accounts", lambda df: df.drop(columns=["segment"]))
    assert_names(
        only(validate_dir(data), "missing column"), "accounts/part-00000.parquet", "segment"
    )


def test_wrong_type_string_in_numeric_column(data: Path) -> None:
    def edit(df: pd.DataFrame) -> None:
        df["severity"] = df["severity"].astype(str)
        df.loc[0, "severity"] = "high"

    damage(data, "tickets", edit)
    finding = only(validate_dir(data), "wrong type")
    assert_names(finding, "tickets/part-00000.parquet", "severity")
    assert "high" in finding.message


def test_null_in_required_column(data: Path) -> None:
    set_values(data, "accounts", "region", None, [0, 1])
    finding = only(validate_dir(data), "null values")
    assert_names(finding, "accounts/part-00000.parquet", "region")
    assert finding.count == 2
    assert "account_id" in finding.examples[0]


def test_duplicate_key_within_file(data: Path) -> None:
    first_id = read_table(part(data, "tickets"))["ticket_id"][0]
    set_values(data, "tickets", "ticket_id", first_id, [1])
    finding = only(validate_dir(data), "duplicate key")
    assert_names(finding, "tickets/part-00000.parquet", "ticket_id")
    assert finding.count == 2


def test_duplicate_key_across_part_files(data: Path) -> None:
    usage = read_table(part(data, "usage"))
    half = len(usage) // 2
    write(usage.iloc[:half], part(data, "usage", 0))
    write(pd.concat([usage.iloc[half:], usage.iloc[:3]]), part(data, "usage", 1))
    finding = only(validate_dir(data), "duplicate key")
    assert_names(finding, "usage", "account_id, date")
    assert "part-00000.parquet" in finding.message and "part-00001.parquet" in finding.message
    assert finding.count == 6
    assert {"account_id", "date", "file"} <= set(finding.examples[0])


def test_split_parts_without_overlap_are_clean(data: Path) -> None:
    usage = read_table(part(data, "usage"))
    write(usage.iloc[:1000], part(data, "usage", 0))
    write(usage.iloc[1000:], part(data, "usage", 1))
    report = validate_dir(data)
    assert report.ok, [f.message for f in report.errors]
    assert report.rows["usage"] == len(usage)


def test_out_of_range_nps(data: Path) -> None:
    def edit(df: pd.DataFrame) -> None:
        df.loc[df["nps"].notna().idxmax(), "nps"] = 11

    damage(data, "surveys", edit)
    finding = only(validate_dir(data), "out of range")
    assert_names(finding, "surveys/part-00000.parquet", "nps")
    assert finding.count == 1 and finding.examples[0]["nps"] == 11


def test_negative_arr(data: Path) -> None:
    set_values(data, "contracts", "arr", -5.0, [0, 1, 2])
    finding = only(validate_dir(data), "out of range")
    assert_names(finding, "contracts/part-00000.parquet", "arr")
    assert finding.count == 3
    assert {"contract_id", "arr"} <= set(finding.examples[0])


def test_category_not_allowed(data: Path) -> None:
    set_values(data, "accounts", "segment", "giant", [0])
    finding = only(validate_dir(data), "not allowed")
    assert_names(finding, "accounts/part-00000.parquet", "segment")
    assert "giant" in finding.message


def test_time_order(data: Path) -> None:
    def edit(df: pd.DataFrame) -> None:
        rows = df.index[df["resolved_at"].notna()][:3]
        df.loc[rows, "resolved_at"] = df.loc[rows, "opened_at"] - pd.Timedelta(hours=1)

    damage(data, "tickets", edit)
    finding = only(validate_dir(data), "time order")
    assert_names(finding, "tickets/part-00000.parquet", "resolved_at")
    assert "opened_at" in finding.message
    assert finding.count == 3
    assert {"ticket_id", "opened_at", "resolved_at"} <= set(finding.examples[0])


def test_unknown_account(data: Path) -> None:
    set_values(data, "tickets", "account_id", "ACC-NOPE", [0])
    finding = only(validate_dir(data), "unknown account")
    assert_names(finding, "tickets/part-00000.parquet", "account_id")
    assert "ACC-NOPE" in finding.message
    assert finding.count == 1


def test_empty_accounts_table(data: Path) -> None:
    damage(data, "accounts", lambda df: df.iloc[:0])
    report = validate_dir(data)
    finding = only(report, "empty table")
    assert_names(finding, "accounts", None)
    assert report.rows["accounts"] == 0
    assert any(w.check == "references not checked" for w in report.warnings)


def test_corrupt_parquet_file(data: Path) -> None:
    part(data, "invoices").write_bytes(b"this is not parquet" * 100)
    finding = only(validate_dir(data), "unreadable file")
    assert_names(finding, "invoices/part-00000.parquet", None)


def test_survey_response_without_score(data: Path) -> None:
    def edit(df: pd.DataFrame) -> None:
        rows = df.index[df["responded_at"].notna()][:2]
        df.loc[rows, ["nps", "csat"]] = None

    damage(data, "surveys", edit)
    finding = only(validate_dir(data), "rule")
    assert_names(finding, "surveys/part-00000.parquet", "responded_at")
    assert finding.count == 2


def test_row_rule(data: Path) -> None:
    def edit(df: pd.DataFrame) -> None:
        df.loc[:3, "active_users"] = df.loc[:3, "seats_used"] + 1

    damage(data, "usage", edit)
    finding = only(validate_dir(data), "rule")
    assert_names(finding, "usage/part-00000.parquet", "active_users")
    assert finding.count == 4


@pytest.mark.timeout(60)  # pandera's own reshaping of failing rows once took minutes here
def test_every_row_failing_is_reported_quickly(data: Path) -> None:
    usage = read_table(part(data, "usage"))
    usage["active_users"] = usage["seats_used"] + 1
    usage["date"] = usage["date"].iloc[0]
    write(usage, part(data, "usage"))
    report = validate_dir(data)
    counts = {f.check: f.count for f in report.errors}
    duplicated = usage.duplicated(["account_id", "date"], keep=False).sum()
    assert counts == {"rule": len(usage), "duplicate key": duplicated}


def test_extra_column_is_a_warning(data: Path) -> None:
    damage(data, "accounts", lambda df: df.assign(notes="x"))
    report = validate_dir(data)
    assert report.ok
    (warning,) = report.warnings
    assert warning.check == "extra column" and "'notes'" in warning.message


def test_integers_accepted_in_float_column(data: Path) -> None:
    damage(data, "contracts", lambda df: df.assign(arr=df["arr"].round().astype("int64")))
    assert validate_dir(data).ok


def test_categorical_and_pandas_string_columns_are_strings(data: Path) -> None:
    damage(data, "accounts", lambda df: df.astype({"segment": "category", "region": "string"}))
    assert validate_dir(data).ok


def test_single_file_next_to_folder_is_a_warning(data: Path) -> None:
    shutil.copy(part(data, "accounts"), data / "accounts.parquet")
    report = validate_dir(data)
    assert report.ok
    (warning,) = report.warnings
    assert warning.check == "ignored file" and "accounts.parquet" in warning.message


def test_validate_writes_nothing(data: Path) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            p.relative_to(data).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in [data, *data.rglob("*")]
        }

    part(data, "engagement").write_bytes(b"garbage")  # error paths must not write either
    before = snapshot()
    messages: list[str] = []
    report = validate_dir(data, progress=messages.append)
    assert not report.ok and messages
    assert snapshot() == before
