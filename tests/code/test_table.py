"""A flat account table: what `init` guesses, what `validate` refuses (hostile inputs, each named
by file and column), what `features apply` writes, and that a large file is streamed, not loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from features import table
from features.synthetic.crm_table import write_crm_table
from features.table import ColumnSpec, TableError, TableSpec


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's example CRM export (800 rows). Treat it as read-only."""
    return write_crm_table(tmp_path_factory.mktemp("crm") / "crm.csv", rows=800, seed=3)


def spec_for(path: Path, **changes: object) -> TableSpec:
    values = {
        "path": path,
        "id_column": "customerID",
        "label_column": "Churn",
        "churn_values": ("Yes",),
        "renew_values": ("No",),
        "name_column": "CustomerName",
        "owner_column": "AccountOwner",
    }
    return TableSpec(**(values | changes))


def problems(spec: TableSpec) -> tuple[list[str], list[str], dict]:
    """What `healthscore validate` reports, through the same Parquet text copy."""
    con = table.connect()
    try:
        with table.readable(con, spec, Path(spec.path).parent / ".scratch") as text:
            return table.check_table(con, text)
    except TableError as exc:
        return [str(exc)], [], {}


def edited(crm: Path, tmp_path: Path, edit, name: str = "edited.csv") -> Path:
    frame = pd.read_csv(crm, dtype=str, keep_default_na=False)
    edit(frame)
    out = tmp_path / name
    frame.to_csv(out, index=False)
    return out


def test_the_example_table_is_valid_and_described(crm: Path) -> None:
    errors, warnings, facts = problems(spec_for(crm))
    assert errors == [] and warnings == []
    assert facts["rows"] == 800 and facts["churned"] + facts["renewed"] == 800
    assert 0.15 < facts["churned"] / 800 < 0.45
    assert facts["snapshot_dates"] == 1


def test_suggest_finds_id_label_name_owner_revenue_and_domains(crm: Path) -> None:
    found = table.suggest(crm)
    t = found["table"]
    assert (t["id_column"], t["label_column"]) == ("customerID", "Churn")
    assert (t["churn_values"], t["renew_values"]) == (["Yes"], ["No"])
    assert (t["name_column"], t["owner_column"]) == ("CustomerName", "AccountOwner")
    assert (t["arr_column"], t["arr_scale"]) == ("MonthlyCharges", 12.0)
    assert "as_of_date" in t and "as_of_column" not in t
    assert t["columns"]["MonthlyCharges"]["domain"] == "financial"
    assert t["columns"]["SupportCalls90d"]["domain"] == "support"
    assert t["columns"]["SeniorCitizen"]["domain"] == "other"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    errors, _, _ = problems(spec_for(path))
    assert errors == [f"{path}: the file is empty"]


def test_header_only(crm: Path, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(crm.read_text().splitlines()[0] + "\n")
    errors, _, _ = problems(spec_for(path))
    assert errors == [f"{path}: the table has a header but no rows"]


def test_label_all_one_class(crm: Path, tmp_path: Path) -> None:
    path = edited(crm, tmp_path, lambda f: f.__setitem__("Churn", "No"))
    errors, _, _ = problems(spec_for(path))
    assert len(errors) == 1
    assert "'Churn'" in errors[0] and "only 0 churned" in errors[0] and str(path) in errors[0]


def test_unknown_label_values_are_named(crm: Path, tmp_path: Path) -> None:
    def edit(f: pd.DataFrame) -> None:
        f.loc[3, "Churn"] = "Maybe"

    errors, _, _ = problems(spec_for(edited(crm, tmp_path, edit)))
    assert any("'Churn'" in e and "'Maybe'" in e and "churn_values" in e for e in errors)


def test_mixed_types_name_the_column_and_the_lines(crm: Path, tmp_path: Path) -> None:
    def edit(f: pd.DataFrame) -> None:
        f.loc[4, "tenure"] = "twelve"  # line 6 of the file (header is line 1)

    path = edited(crm, tmp_path, edit)
    errors, _, _ = problems(spec_for(path))
    assert len(errors) == 1, errors
    assert "'tenure'" in errors[0] and "'twelve' (line 6)" in errors[0]
    # A column declared a number says so too; declared a category, it is accepted.
    spec = spec_for(path, columns={"tenure": ColumnSpec(type="number")})
    assert "not numbers" in problems(spec)[0][0]
    assert problems(spec_for(path, columns={"tenure": ColumnSpec(type="category")}))[0] == []


def test_non_utf8_text_says_which_encoding_to_set(crm: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(crm, dtype=str, keep_default_na=False)
    frame.loc[0, "CustomerName"] = "Société Générale"
    path = tmp_path / "latin1.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    errors, _, _ = problems(spec_for(path))
    assert len(errors) == 1 and str(path) in errors[0] and "encoding" in errors[0]
    assert problems(spec_for(path, encoding="latin-1"))[0] == []


def test_duplicate_keys(crm: Path, tmp_path: Path) -> None:
    def edit(f: pd.DataFrame) -> None:
        f.loc[9, "customerID"] = f.loc[8, "customerID"]

    path = edited(crm, tmp_path, edit)
    errors, _, _ = problems(spec_for(path))
    assert any("duplicate key 'customerID'" in e and "1 keys" in e for e in errors), errors


def test_configured_columns_the_file_lacks(crm: Path) -> None:
    errors, _, _ = problems(spec_for(crm, columns={"Region": ColumnSpec(domain="contract")}))
    assert errors and "no column 'Region'" in errors[0] and "'tenure'" in errors[0]


def test_identifier_like_columns_are_left_out_with_a_warning(crm: Path, tmp_path: Path) -> None:
    def edit(f: pd.DataFrame) -> None:
        f["Email"] = [f"user{i}@example.com" for i in range(len(f))]

    errors, warnings, facts = problems(spec_for(edited(crm, tmp_path, edit)))
    assert errors == [] and any("'Email'" in w and "identifier" in w for w in warnings)
    assert facts["features"] == 15


def test_build_writes_views_labels_and_accounts_and_fails_atomically(
    crm: Path, tmp_path: Path
) -> None:
    out = tmp_path / "features"
    domains = {
        c: ColumnSpec(domain=v["domain"]) for c, v in table.suggest(crm)["table"]["columns"].items()
    }
    spec = spec_for(crm, arr_column="MonthlyCharges", arr_scale=12, columns=domains)
    manifest = table.build_table(spec, out)
    views = table.views(manifest)
    assert {v.name for v in views} >= {"table_support", "table_financial", "table_contract"}
    support = pd.read_parquet(out / "table_support.parquet")
    assert list(support.columns) == ["account_id", "event_timestamp", "tech_support",
                                     "support_calls90d"]  # fmt: skip
    assert support["account_id"].is_monotonic_increasing and len(support) == 800
    labels = pd.read_parquet(out / table.LABELS)
    raw = pd.read_csv(crm, dtype=str)
    assert labels["renewed"].sum() == (raw["Churn"] == "No").sum()
    accounts = pd.read_parquet(out / table.ACCOUNTS).set_index("account_id")
    first = raw.iloc[0]
    assert accounts.loc[first["customerID"], "account_name"] == first["CustomerName"]
    assert accounts.loc[first["customerID"], "arr"] == pytest.approx(
        12 * float(first["MonthlyCharges"])
    )
    assert json.loads((out / table.MANIFEST).read_text())["source"] == str(crm)
    # A bad table later leaves what was built untouched.
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    with pytest.raises(TableError, match="header but no rows"):
        header = tmp_path / "header.csv"
        header.write_text(crm.read_text().splitlines()[0] + "\n")
        table.build_table(spec_for(header), out)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".features.")]


def test_parquet_and_csv_give_the_same_snapshots(crm: Path, tmp_path: Path) -> None:
    pq_path = tmp_path / "crm.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT * FROM read_csv('{crm}', all_varchar = true)) TO '{pq_path}'"
    )
    a = table.build_table(spec_for(crm), tmp_path / "a")
    b = table.build_table(spec_for(pq_path), tmp_path / "b")
    assert a["features"] == b["features"]
    for v in table.views(a):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / f"{v.name}.parquet"),
            pd.read_parquet(tmp_path / "b" / f"{v.name}.parquet"),
        )


# -- a large file -----------------------------------------------------------------------------

STREAM_SCRIPT = """
import sys, time
from pathlib import Path
from healthscore import pipeline
from healthscore.settings import load_settings
s = load_settings(Path(sys.argv[1]), workspace=Path(sys.argv[2]))
t0 = time.perf_counter()
path, errors, warnings, facts = pipeline.validate_table(s)
assert not errors, errors
t1 = time.perf_counter()
pipeline.features_apply(s)
t2 = time.perf_counter()
# VmHWM: this process's peak RSS (ru_maxrss would carry over the forking parent's peak).
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(facts["rows"], round(t1 - t0, 1), round(t2 - t1, 1), hwm // 1024)
"""


@pytest.mark.slow
def test_a_1gb_table_is_streamed_not_loaded(crm: Path, tmp_path: Path) -> None:
    """Validate and features apply on a 1.1 GB CSV with DuckDB held to 400 MB: the process never
    holds the table (pandas would need several GB for it). Resource bound, not a timing."""
    big = tmp_path / "big.csv"
    copies = 1_000_000_000 // crm.stat().st_size + 1
    duckdb.connect().execute(
        f"COPY (SELECT customerID || '-' || CAST(k AS VARCHAR) AS customerID, "
        f"* EXCLUDE (customerID) FROM read_csv('{crm}', all_varchar = true), "
        f"range({copies}) AS r(k)) TO '{big}' (HEADER)"
    )
    size_mb = big.stat().st_size / 2**20
    assert size_mb > 1000
    found = table.suggest(crm)["table"] | {"path": str(big)}
    cfg = tmp_path / "healthscore.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"kind": "table", "table": found},
                "features": {"duckdb_memory_limit": "400MB"},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSCORE_")}
    done = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, str(cfg), str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows, validate_s, apply_s, peak_mb = done.stdout.split()[-4:]
    print(f"{size_mb:.0f} MB, {rows} rows: validate {validate_s} s, apply {apply_s} s, "
          f"peak {peak_mb} MB")  # fmt: skip
    assert int(rows) == 800 * copies
    assert int(peak_mb) < size_mb  # less memory than the file itself, let alone a DataFrame
    labels = pd.read_parquet(tmp_path / "ws" / "features" / table.LABELS, columns=["renewed"])
    assert len(labels) == int(rows)


def test_suggest_on_a_snapshot_export_with_word_labels(tmp_path: Path) -> None:
    """One row per account and quarter, `Renewal Status` = Renewed/Churned, `;`-separated
    latin-1 text: the id is unique per snapshot date, and word labels are not flipped."""
    rows = [
        {
            "Account ID": f"ACC-{i % 40:03d}",
            "Company": f"Société {i % 40}",
            "Snapshot Date": ["2026-03-31", "2026-06-30", "2026-09-30"][i // 40],
            "Seat Utilization %": (i * 7) % 100,
            "Renewal Status": "Churned" if i % 5 == 0 else "Renewed",
        }
        for i in range(120)
    ]
    path = tmp_path / "export.csv"
    pd.DataFrame(rows).to_csv(path, index=False, sep=";", encoding="latin-1")
    with pytest.raises(TableError, match="encoding"):
        table.suggest(path)
    t = table.suggest(path, encoding="latin-1")["table"]
    assert (t["id_column"], t["as_of_column"], t["name_column"]) == (
        "Account ID",
        "Snapshot Date",
        "Company",
    )
    assert (t["churn_values"], t["renew_values"]) == (["Churned"], ["Renewed"])
    spec = TableSpec(
        path, "Account ID", "Renewal Status", encoding="latin-1", churn_values=("Churned",),
        renew_values=("Renewed",), as_of_column="Snapshot Date", name_column="Company",
    )  # fmt: skip
    errors, _, facts = problems(spec)
    assert errors == [] and facts["snapshot_dates"] == 3 and facts["churned"] == 24
