"""Run the benchmarks in bench/ and print each against its baseline, measured in the same run.

    make bench                      # default sizes (10k accounts)
    .venv/bin/python bench/run.py --accounts 100000
    .venv/bin/python bench/run.py --only train --rows 100000

Every case runs in a fresh subprocess so its peak memory (max RSS) is its own. Ratios, not
absolute seconds, are what to compare across machines: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {
    "generate": "bench_generate.py",
    "validate": "bench_validate.py",
    "features": "bench_features.py",
    "train": "bench_train.py",
    "score": "bench_score.py",
    "monitor": "bench_monitor.py",
    "serve": "bench_serve.py",
}
EXTRA = {"train": lambda a: ["--rows", str(a.rows)]}  # arguments only one case takes


def run_case(script: str, args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{script} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--rows", type=int, default=1_000_000, help="train: rows of the matrix")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="hs-bench-") as tmp:
        common = ["--accounts", str(args.accounts), "--months", str(args.months), "--dir", tmp]
        for name in args.only or list(CASES):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            extra = EXTRA[name](args) if name in EXTRA else []
            results.extend(run_case(CASES[name], [*common, *extra]))
    print(f"\n{'case':44} {'seconds':>9} {'baseline':>9} {'ratio':>7} {'peak MB':>8}  notes")
    for r in results:
        print(
            f"{r['case']:44} {r['seconds']:9.2f} {r['baseline_seconds']:9.2f} "
            f"{r['seconds'] / r['baseline_seconds']:6.2f}x {r['peak_mb']:8.0f}  {r['notes']}"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nbaselines: {'; '.join(sorted({r['baseline'] for r in results}))}")
    print(f"written: {out / 'latest.json'}")


if __name__ == "__main__":
    main()
