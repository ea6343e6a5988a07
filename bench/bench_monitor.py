"""The drift report at scale: Evidently on a sample of each side vs on all rows.

The book: a real book of business (`--accounts` accounts, `--months` months) generated
with `drift=True` and its features built; reference = every account's snapshot 26 weeks before
the last day (same weekday and feature-launch phase, before the drift window), current = the last
day's snapshot, both scored with a fixed logistic score. Each side is then resampled with
replacement to `--rows` rows (default 1,000,000) with numeric features jittered
(×N(1, 0.02), integers rounded, missing values kept). Cached in `--dir`.

- sampled: `monitoring.drift.drift_report` with the default `sample_size` (50,000 rows per side,
  seeded);
- full data (the baseline): the same call with `sample_size=None`.

Each runs in its own fresh subprocess (this script with `--part`), so its peak memory (max RSS,
imports and both frames included) is its own; reading the cached frames is not timed. The notes
give how many of the per-feature drift verdicts (drifted yes/no) differ between the two, and the
largest difference in a feature's distance. Timings are noisy on a shared machine: compare the
ratio measured in the same run.

    .venv/bin/python bench/bench_monitor.py --accounts 2000 --rows 1000000 --dir /tmp/hs-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, peak_mb, timed

from features.catalog import VIEWS

JITTER = 0.02
SEED = 5
FEATURES = [f.name for v in VIEWS for f in v.features]
CATEGORICAL = [f.name for v in VIEWS for f in v.features if f.type in ("string", "bool")]
INTEGERS = {f.name for v in VIEWS for f in v.features if f.type == "int"}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, required=True, help="accounts of the real book")
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--dir", required=True, help="work folder (caches live here)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per side after resampling")
    p.add_argument("--part", choices=["sampled", "full"], help=argparse.SUPPRESS)
    return p.parse_args()


def snapshot(feature_dir: Path, day) -> pd.DataFrame:
    stamp = pd.Timestamp(day) + pd.Timedelta(days=1)
    merged = None
    for v in VIEWS:
        part = (
            ds.dataset(feature_dir / f"{v.name}.parquet")
            .to_table(filter=ds.field("event_timestamp") == pa.scalar(stamp, pa.timestamp("ns")))
            .to_pandas()
            .drop(columns="event_timestamp")
        )
        merged = part if merged is None else merged.merge(part, on="account_id", how="outer")
    return merged


def score(frame: pd.DataFrame) -> pd.DataFrame:
    z = (
        1.2
        + 2.0 * frame["seat_utilisation_30d"].fillna(0.3).astype(float)
        - 0.4 * frame["sev1_tickets_90d"].fillna(0).astype(float)
        + 0.15 * (frame["nps_latest"].fillna(7).astype(float) - 7)
        - 0.01 * frame["days_since_last_login"].fillna(30).clip(upper=60).astype(float)
    )
    p = 1 / (1 + np.exp(-z))
    tier = np.where(p >= 0.85, "healthy", np.where(p >= 0.65, "at risk", "unhealthy"))
    return frame.assign(renewal_probability=p, health_score=np.round(p * 100), tier=tier)


def resample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    picked = frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)
    out = {"account_id": [f"S{i:08d}" for i in range(n)]}
    for name, col in picked.drop(columns="account_id").items():
        if name in CATEGORICAL or name == "tier" or not pd.api.types.is_numeric_dtype(col):
            out[name] = col
            continue
        noisy = col.astype("float64") * rng.normal(1.0, JITTER, n)
        out[name] = noisy.round() if name in INTEGERS else noisy
    return pd.DataFrame(out)


def frames(a: argparse.Namespace, root: Path) -> Path:
    """Cached Parquet files reference.parquet / current.parquet with `a.rows` rows each."""
    from features import engineering
    from features.synthetic.generator import GeneratorConfig, generate_book

    book = root / f"monitor-book-{a.accounts}x{a.months}"
    out = root / f"monitor-{a.rows}-from-{book.name}"
    if (out / "done").exists():
        return out
    cfg = GeneratorConfig(accounts=a.accounts, months=a.months, seed=SEED, drift=True)
    if not (book / "features" / "contract.parquet").exists():
        generate_book(cfg, book / "raw", workers=2)
        engineering.build_feature_tables(book / "raw", book / "features")
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    for name, day in (("reference", cfg.end_date - timedelta(weeks=26)), ("current", cfg.end_date)):
        real = score(snapshot(book / "features", day))
        resample(real, a.rows, rng).to_parquet(out / f"{name}.parquet", index=False)
    (out / "done").write_text(str(a.rows))
    return out


def measure(folder: Path, part: str) -> dict:
    from monitoring.drift import DriftConfig, drift_report

    ref = pd.read_parquet(folder / "reference.parquet")
    cur = pd.read_parquet(folder / "current.parquet")
    config = DriftConfig() if part == "sampled" else DriftConfig(sample_size=None)
    seconds, result = timed(lambda: drift_report(ref, cur, FEATURES, CATEGORICAL, config))
    stats = dict(zip(result.features["feature"], result.features["statistic"], strict=True))
    return {
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "drifted": result.drifted_features,
        "statistics": {k: (None if v is None else float(v)) for k, v in stats.items()},
        "verdict": result.verdict,
        "sampled": result.sampled,
    }


def run_part(a: argparse.Namespace, part: str) -> dict:
    argv = [sys.executable, __file__, "--accounts", str(a.accounts), "--months", str(a.months)]
    argv += ["--dir", a.dir, "--rows", str(a.rows), "--part", part]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench_monitor --part {part} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    a = parse()
    folder = frames(a, Path(a.dir))
    if a.part:
        print(json.dumps(measure(folder, a.part)))
        return
    sampled, full = run_part(a, "sampled"), run_part(a, "full")
    differ = sorted(set(sampled["drifted"]) ^ set(full["drifted"]))
    gaps = [
        abs(sampled["statistics"][k] - v)
        for k, v in full["statistics"].items()
        if v is not None and sampled["statistics"].get(k) is not None
    ]
    print(f"sampled: {sampled['verdict']}\nfull:    {full['verdict']}", file=sys.stderr)
    emit(
        [
            {
                "case": f"drift report ({a.rows:,} rows/side, sample 50k)",
                "seconds": sampled["seconds"],
                "baseline_seconds": full["seconds"],
                "baseline": "the same drift report on all rows",
                "peak_mb": sampled["peak_mb"],
                "notes": (
                    f"{len(differ)} of {len(FEATURES)} per-feature verdicts differ"
                    + (f" ({', '.join(differ)})" if differ else "")
                    + f"; max |distance gap| {max(gaps):.3f}; drifted (full): "
                    + f"{len(full['drifted'])}; full-data peak {full['peak_mb']:,.0f} MB"
                ),
            }
        ]
    )


if __name__ == "__main__":
    main()
