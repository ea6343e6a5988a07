"""Generate a realistic synthetic book of business in the data contract's shape.

Accounts are simulated in fixed-size chunks, each with its own random stream derived from the seed,
so the output is deterministic for a seed whatever the number of worker processes, and memory stays
bounded for a million accounts. The whole output folder appears atomically.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

from features import contract
from features.io import atomic_directory
from features.synthetic import simulate as sim

CHUNK_ACCOUNTS = 5_000  # part of the determinism contract: changing it changes the data
TRUTH_DIR = "_truth"
MANIFEST = "manifest.json"

Progress = Callable[[int, int], None]  # (accounts done, accounts total)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Defaults give a two-year history ending on a fixed date."""

    accounts: int = 2_000
    months: int = 24
    seed: int = 42
    end_date: date = date(2026, 10, 31)
    drift: bool = False
    drift_months: int = 3
    segment_mix: dict[str, float] = field(
        default_factory=lambda: {"smb": 0.6, "mid_market": 0.3, "enterprise": 0.1}
    )
    # Target share of annual renewal decisions that churn, per segment.
    annual_churn: dict[str, float] = field(
        default_factory=lambda: {"smb": 0.22, "mid_market": 0.12, "enterprise": 0.07}
    )
    new_logo_share: float = 0.25

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("accounts: must be at least 1")
        if not 1 <= self.months <= 120:
            raise ValueError("months: must be between 1 and 120")
        if self.drift and self.drift_months >= self.months:
            raise ValueError("drift_months: must be shorter than months")
        contract.check_per_segment("segment_mix", self.segment_mix, shares=True)
        contract.check_per_segment("annual_churn", self.annual_churn)
        if not all(0 < v < 1 for v in self.annual_churn.values()):
            raise ValueError("annual_churn: each rate must be strictly between 0 and 1")

    def window(self) -> sim.Window:
        end = pd.Timestamp(self.end_date)
        start = end - pd.DateOffset(months=self.months) + pd.Timedelta(days=1)
        drift = end - pd.DateOffset(months=self.drift_months) + pd.Timedelta(days=1)
        epoch = pd.Timestamp("1970-01-01")
        return sim.Window(
            start=(start - epoch).days,
            end=(end - epoch).days,
            drift_start=(drift - epoch).days if self.drift else None,
        )


def calibrate_alpha(cfg: GeneratorConfig, pilot: int = 4_000) -> np.ndarray:
    """Renewal intercepts per (segment, monthly term) that hit the configured churn rates.

    Solved on a pilot population simulated from its own stream, so the result does not depend on
    the number of accounts requested.
    """
    rng = np.random.default_rng([cfg.seed, 7_919])
    weeks = max(cfg.window().weeks, 20)
    alpha = np.zeros((len(contract.SEGMENTS), 2))
    for s, name in enumerate(contract.SEGMENTS):
        h, shocks = sim.simulate_latent(rng, np.full(pilot, s), np.full(pilot, -1), weeks)
        last = rng.integers(8, weeks, pilot)
        rows = np.arange(pilot)
        h_end = sim.window_mean(sim.cumsum0(h), rows, last, 8)
        price = sim.window_mean(sim.cumsum0(shocks["price"].astype(np.float32)), rows, last, 26) > 0
        base = sim.BETA * h_end + sim.PRICE_EFFECT * price + rng.normal(0, sim.UNOBSERVED_SD, pilot)
        for monthly in (0, 1):
            churn = cfg.annual_churn[name]
            target = (1 - churn) ** (1 / 12) if monthly else 1 - churn  # P(renew) per decision
            lo, hi = -10.0, 10.0
            for _ in range(60):  # bisection: mean renewal probability is monotone in alpha
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if sim.sigmoid(mid + base).mean() < target else (lo, mid)
            alpha[s, monthly] = (lo + hi) / 2
    return alpha


def _simulate_chunk(
    cfg: GeneratorConfig, alpha: np.ndarray, index: int, size: int, out: str
) -> dict:
    """Simulate and write chunk `index` (accounts index*size onwards); returns rows per source."""
    first = index * size
    n = min(size, cfg.accounts - first)
    rng = np.random.default_rng([cfg.seed, index])
    mix = np.array([cfg.segment_mix[s] for s in contract.SEGMENTS])
    chunk = sim.Chunk(rng, first, n, cfg.window(), mix, alpha, cfg.new_logo_share)
    chunk.contracts()
    tables: dict[str, pa.Table] = {
        "accounts": chunk.accounts(),
        "contracts": chunk.contracts_table(),
        "usage": chunk.usage(),
        "engagement": chunk.engagement(),
        "enablement": chunk.enablement(),
        "tickets": chunk.tickets(),
        "surveys": chunk.surveys(),
        "invoices": chunk.invoices(),
        "plan_changes": chunk.plan_changes(),
    }
    renewals, latent = chunk.truth()
    tables[f"{TRUTH_DIR}/renewals"] = renewals
    tables[f"{TRUTH_DIR}/latent_health"] = latent
    for name, table in tables.items():
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{index:05d}.parquet", compression="zstd")
    return {name: t.num_rows for name, t in tables.items()}


def generate_book(
    cfg: GeneratorConfig,
    out: Path,
    workers: int = 1,
    progress: Progress | None = None,
    chunk_accounts: int = CHUNK_ACCOUNTS,
) -> dict:
    """Generate the book of business into `out` (replaced atomically) and return its manifest.

    The data depends on the config and `chunk_accounts`, never on `workers`.
    """
    t0 = time.perf_counter()
    alpha = calibrate_alpha(cfg)
    size = chunk_accounts
    n_chunks = -(-cfg.accounts // size)
    counts: dict[str, int] = {}
    with atomic_directory(Path(out)) as tmp:
        args = [(cfg, alpha, i, size, str(tmp)) for i in range(n_chunks)]
        with contextlib.ExitStack() as stack:
            if workers > 1 and n_chunks > 1:
                ctx = get_context("forkserver")
                pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=ctx))
                results = pool.map(_simulate_chunk, *zip(*args, strict=True))
            else:
                results = (_simulate_chunk(*a) for a in args)
            for i, part in enumerate(results):  # in chunk order either way
                _add(counts, part)
                if progress:
                    progress(min(cfg.accounts, (i + 1) * size), cfg.accounts)
        manifest = _manifest(cfg, tmp, counts, time.perf_counter() - t0)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def _manifest(cfg: GeneratorConfig, folder: Path, counts: dict[str, int], seconds: float) -> dict:
    truth = pq.read_table(folder / TRUTH_DIR / "renewals").to_pandas()
    annual = truth[truth["term_months"] >= 12]
    churn = (1 - annual.groupby("segment")["renewed"].mean()).round(4).to_dict()

    def auc(df: pd.DataFrame) -> float | None:
        if df["renewed"].nunique() < 2:
            return None
        return round(float(roc_auc_score(df["renewed"], df["true_renew_probability"])), 4)

    by_term = {"monthly": auc(truth[truth["term_months"] == 1]), "annual_or_longer": auc(annual)}
    size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
    win = cfg.window()
    return {
        "generator": "healthscore synthetic book of business",
        "config": asdict(cfg),
        "window": {
            "start": str(pd.Timestamp(win.start, unit="D").date()),
            "end": str(pd.Timestamp(win.end, unit="D").date()),
        },
        "drift": None
        if win.drift_start is None
        else {
            "start": str(pd.Timestamp(win.drift_start, unit="D").date()),
            "changes": [
                f"smb: daily active users x{sim.DRIFT_USAGE_FACTOR} (usage drop)",
                f"mid_market: price x{sim.DRIFT_PRICE_FACTOR} (price_increase plan changes, "
                "larger invoices)",
            ],
        },
        "rows": {k: v for k, v in counts.items() if not k.startswith(TRUTH_DIR)},
        "renewal_decisions": len(truth),
        "annual_churn_rate_by_segment": churn,
        # AUC of the generator's own true renewal probability: the best any model can reach.
        "ceiling_auc": auc(truth),
        "ceiling_auc_by_term": by_term,
        "bytes": int(size),
        "seconds": round(seconds, 2),
    }
