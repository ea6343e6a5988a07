"""Helpers shared by the benchmark scripts: timing, peak memory, argument parsing."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--dir", required=True)
    return p.parse_args()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def peak_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024


def emit(rows: list[dict]) -> None:
    print(json.dumps(rows))
