"""Generator throughput against an I/O floor: writing the same number of random rows to Parquet.

The baseline draws uniform random numbers for every column of every source and writes them with
pyarrow (zstd), in the same row counts as the generated book: no simulation, no realism. The
ratio says what the simulation costs on top of producing and writing that much data at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import args, emit, peak_mb, timed

from features import contract
from features.synthetic.generator import GeneratorConfig, generate_book


def baseline(rows: dict[str, int], out: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n in rows.items():
        cols = contract.SOURCES[name].columns
        table = pa.table({c.name: rng.integers(0, 1_000_000, n) for c in cols})
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / f"{name}.parquet", compression="zstd")


def main() -> None:
    a = args()
    results = []
    for workers in (1, 2):
        cfg = GeneratorConfig(accounts=a.accounts, months=a.months)
        out = Path(a.dir) / f"gen-w{workers}"
        seconds, manifest = timed(lambda cfg=cfg, out=out, w=workers: generate_book(cfg, out, w))
        base_s, _ = timed(lambda m=manifest: baseline(m["rows"], Path(a.dir) / "floor"))
        rows = sum(manifest["rows"].values())
        results.append(
            {
                "case": f"generate {a.accounts:,} accounts x {a.months} mo, {workers} worker(s)",
                "seconds": seconds,
                "baseline_seconds": base_s,
                "baseline": "random rows to Parquet",
                "peak_mb": peak_mb(),
                "notes": f"{rows:,} rows, {manifest['bytes'] / 1e6:.0f} MB, "
                f"{rows / seconds / 1e6:.2f} M rows/s",
            }
        )
    emit(results)


if __name__ == "__main__":
    main()
