"""Feature store against hand-written baselines over the same data, in the same run.

- feature build (7 SQL views)  vs  the grid plus one 30-day window over usage, in DuckDB: the
  floor of reading the raw data and windowing it once;
- point-in-time training set (Feast, DuckDB offline store)  vs  a hand-written DuckDB ASOF join
  of the label events with the 7 snapshot tables;
- materialize into SQLite (Feast's `store.materialize`, and `features.materialize.materialize`:
  latest rows read with DuckDB, written through the online store's `online_write_batch`, into a
  fresh store of its own)  vs  one transaction inserting the same latest values, one row per
  account and feature, into an SQLite table.
Peak memory is the process's max RSS after each step (monotonic).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import args, emit, peak_mb, timed

from features import engineering
from features import materialize as fm
from features import store as fs
from features.catalog import VIEWS
from features.io import read_source
from features.synthetic.generator import GeneratorConfig, generate_book


def baseline_build(data: Path) -> None:
    con = engineering.connect(data)
    engineering.build_grid(con)
    con.execute("""CREATE TABLE b AS SELECT g.account_id, g.day,
        avg(u.active_users) OVER (PARTITION BY g.account_id ORDER BY g.day
                                  ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS x
        FROM grid g LEFT JOIN usage u ON u.account_id = g.account_id AND u.date = g.day""")


def baseline_asof(events, feature_dir: Path) -> int:
    con = duckdb.connect()
    con.register("events", events.assign(ts=events["event_timestamp"].dt.tz_convert(None)))
    sql = "SELECT e.*"
    joins = ""
    for i, v in enumerate(VIEWS):
        sql += "".join(f", v{i}.{f.name}" for f in v.features)
        joins += (
            f" ASOF LEFT JOIN read_parquet('{feature_dir / v.name}.parquet') v{i}"
            f" ON v{i}.account_id = e.account_id AND e.ts >= v{i}.event_timestamp"
        )
    return len(con.execute(f"{sql} FROM events e{joins}").df())


def baseline_insert(feature_dir: Path, as_of, db: Path) -> int:
    ts = f"TIMESTAMP '{as_of}' + INTERVAL 1 DAY"
    rows = []
    for v in VIEWS:
        df = duckdb.sql(
            f"SELECT * FROM '{feature_dir / v.name}.parquet' WHERE event_timestamp = {ts}"
        ).df()
        for f in v.features:
            rows += zip(df["account_id"], [f.name] * len(df), df[f.name].astype(str), strict=True)
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE online (account_id TEXT, feature TEXT, value TEXT, "
        "PRIMARY KEY (account_id, feature))"
    )
    with con:
        con.executemany("INSERT OR REPLACE INTO online VALUES (?, ?, ?)", rows)
    return len(rows)


def main() -> None:
    a = args()
    root = Path(a.dir)
    data = root / "features-data"
    if not data.exists():
        generate_book(GeneratorConfig(accounts=a.accounts, months=a.months), data, workers=2)
    feats = root / "features-out"
    cfg = fs.StoreConfig(repo_dir=root / "features-repo", feature_dir=feats)
    rows = []

    def add(case: str, s: float, b: float, baseline: str, notes: str) -> None:
        rows.append(
            {
                "case": f"{case} ({a.accounts:,} accounts)",
                "seconds": s,
                "baseline_seconds": b,
                "baseline": baseline,
                "peak_mb": peak_mb(),
                "notes": notes,
            }
        )

    s, _ = timed(lambda: engineering.build_feature_tables(data, feats))
    b, _ = timed(lambda: baseline_build(data))
    n = duckdb.sql(f"SELECT count(*) FROM '{feats}/usage.parquet'").fetchall()[0][0]
    add("feature build, 7 views", s, b, "grid + one DuckDB window", f"{n:,} snapshots per view")

    store = fs.open_store(cfg)
    fs.apply(store, cfg)
    start, end = engineering.data_window(engineering.connect(data))
    events = fs.label_events(read_source(data, "contracts"), 90, first_day=start)
    s, got = timed(lambda: fs.training_set(store, events))
    b, _ = timed(lambda: baseline_asof(events, feats))
    add("point-in-time training set", s, b, "DuckDB ASOF join", f"{len(got):,} label events")

    s, _ = timed(lambda: fs.materialize(store, end))
    b, n = timed(lambda: baseline_insert(feats, end, root / "baseline-online.db"))
    add("materialize to SQLite", s, b, "one SQLite transaction", f"{n:,} account-feature values")
    fast_cfg = fs.StoreConfig(repo_dir=root / "features-repo-fast", feature_dir=feats)
    fast = fs.open_store(fast_cfg)
    fs.apply(fast, fast_cfg)
    s, _ = timed(lambda: fm.materialize(fast, end))
    add(
        "materialize to SQLite, online_write_batch",
        s,
        b,
        "one SQLite transaction",
        "features.materialize (same values)",
    )
    emit(rows)


if __name__ == "__main__":
    main()
