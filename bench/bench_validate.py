"""Validation time against the time to read the same sources into pandas (the floor)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import args, emit, peak_mb, timed

from features import contract
from features.io import read_source
from features.synthetic.generator import GeneratorConfig, generate_book
from features.validation import validate_dir


def main() -> None:
    a = args()
    data = Path(a.dir) / "validate-data"
    if not data.exists():
        generate_book(GeneratorConfig(accounts=a.accounts, months=a.months), data, workers=2)
    base_s, _ = timed(lambda: [read_source(data, name) for name in contract.SOURCES])
    seconds, report = timed(lambda: validate_dir(data))
    assert report.ok, report.errors[:3]
    emit(
        [
            {
                "case": f"validate {a.accounts:,} accounts x {a.months} months",
                "seconds": seconds,
                "baseline_seconds": base_s,
                "baseline": "read all sources into pandas",
                "peak_mb": peak_mb(),
                "notes": f"{sum(report.rows.values()):,} rows",
            }
        ]
    )


if __name__ == "__main__":
    main()
