"""Batch scoring: every active account as of a date, with tier, drivers, trend and actions.

Features come from the offline store through the FeatureService: for one as-of date the
point-in-time row of every account is the snapshot stamped the next midnight, so each feature
view's file is read once with that filter (a test checks it equals Feast's historical retrieval).
Scoring runs in chunks; the output and the history partition are written to temporary files and
renamed, so a run killed half-way leaves the previous results whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from features.catalog import FEATURE_SERVICE
from features.health_model import HealthModel
from serving.explain import CONTEXT_DOMAINS, MIN_RISK_PULL, Playbook, explain

HISTORY_COLUMNS = ["account_id", "renewal_probability", "health_score", "tier", "declining_runs"]
# What a CSM needs beside the score, from the FeatureService's own features (financial and
# contract views), when the frame holds them; `renewal_date` is derived (see `account_context`).
CONTEXT_COLUMNS = ["segment", "arr", "seats", "term_months", "days_to_renewal"]


def snapshot(store, as_of: date) -> pd.DataFrame:
    """The FeatureService's features of every account that was a customer at the end of `as_of`,
    plus `features_as_of` (the snapshot's timestamp)."""
    stamp = pd.Timestamp(as_of) + pd.Timedelta(days=1)  # day D's snapshot is stamped D+1 00:00
    service = store.get_feature_service(FEATURE_SERVICE)
    merged: pd.DataFrame | None = None
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        columns = ["account_id", *(f.name for f in projection.features)]
        table = ds.dataset(view.batch_source.path).to_table(
            columns=columns,
            filter=ds.field("event_timestamp") == pa.scalar(stamp, pa.timestamp("ns")),
        )
        part = table.to_pandas()
        merged = part if merged is None else merged.merge(part, on="account_id", how="outer")
    assert merged is not None
    merged["features_as_of"] = stamp.tz_localize("UTC")
    return merged.sort_values("account_id").reset_index(drop=True)


def score_frame(
    model: HealthModel,
    frame: pd.DataFrame,
    playbook: Playbook,
    chunk_size: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
    top: int = 3,
    context_domains: tuple[str, ...] = CONTEXT_DOMAINS,
    min_risk_pull: float = MIN_RISK_PULL,
) -> pd.DataFrame:
    """Probability, score, tier, the account's context (`account_context`), domain breakdown,
    drivers and actions for each row of `frame` (`serving.explain.explain`)."""
    parts = []
    for start in range(0, len(frame), chunk_size):
        chunk = frame.iloc[start : start + chunk_size]
        matrix = model.matrix(chunk)  # built once for the prediction and the contributions
        pred = model.predict(chunk, matrix)
        contrib = model.contributions(chunk, matrix)
        why = explain(model, chunk, contrib, top, context_domains, min_risk_pull)
        pred["tier_colour"] = pred["tier"].map(model.tiers.colours)
        pred["actions"] = playbook.actions_each(pred["tier"], why["risk_domains"])
        parts.append(pd.concat([chunk[["account_id"]], pred, account_context(chunk), why], axis=1))
        if progress:
            progress(min(start + chunk_size, len(frame)), len(frame))
    if not parts:
        return pd.DataFrame(columns=["account_id", "renewal_probability", "health_score", "tier"])
    return pd.concat(parts, ignore_index=True)


def account_context(frame: pd.DataFrame) -> pd.DataFrame:
    """The account's context for a CSM, in the same row as its score: segment, ARR, seats, term
    (months), days to renewal and the renewal date, taken from the features in `frame` (those it
    holds). The renewal date is the snapshot's day (`features_as_of` minus one day: day D's
    snapshot is stamped D+1 00:00) plus `days_to_renewal`; without `features_as_of` (features
    posted to the service) there is none."""
    out = frame[[c for c in CONTEXT_COLUMNS if c in frame]].copy()
    if "days_to_renewal" in frame and "features_as_of" in frame:
        day = pd.to_datetime(frame["features_as_of"], utc=True).dt.tz_localize(None).dt.normalize()
        days = pd.to_numeric(frame["days_to_renewal"], errors="coerce")
        out["renewal_date"] = (day - pd.Timedelta(days=1) + pd.to_timedelta(days, unit="D")).dt.date
    return out


# -- history ---------------------------------------------------------------------------------


def previous_scores(history_dir: Path, as_of: date) -> pd.DataFrame | None:
    """The most recent earlier run in the history (partitions `as_of=YYYY-MM-DD`)."""
    runs = sorted(
        p for p in Path(history_dir).glob("as_of=*") if p.name.split("=", 1)[1] < str(as_of)
    )
    if not runs:
        return None
    return pd.read_parquet(runs[-1] / "scores.parquet", columns=HISTORY_COLUMNS)


def add_trend(scores: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """`score_change` since the previous run and `declining_runs`: how many runs in a row the
    score went down (0 when it did not, or for an account new since then)."""
    if previous is None:
        return scores.assign(score_change=pd.NA, declining_runs=0).astype({"score_change": "Int64"})
    prev = previous.set_index("account_id")
    before = scores["account_id"].map(prev["health_score"])
    change = (scores["health_score"] - before).astype("Int64")
    streak = scores["account_id"].map(prev["declining_runs"]).fillna(0).astype("int64")
    declining = np.where(change.fillna(0) < 0, streak + 1, 0)
    return scores.assign(score_change=change, declining_runs=declining.astype("int64"))


def write_history(history_dir: Path, as_of: date, scores: pd.DataFrame) -> Path:
    """Replace the history partition of `as_of` (a rerun of the same day overwrites it)."""
    folder = Path(history_dir) / f"as_of={as_of}"
    folder.mkdir(parents=True, exist_ok=True)
    cols = [*HISTORY_COLUMNS, "score_change", "model_version"]
    write_atomic(scores[cols], folder / "scores.parquet", "parquet")
    return folder


# -- output ----------------------------------------------------------------------------------


def write_atomic(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write `frame` as Parquet or CSV to a temporary file beside `path`, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if fmt == "csv":
            flat = frame.copy()
            for col in flat.columns:
                if flat[col].map(lambda v: isinstance(v, list | dict)).any():
                    flat[col] = flat[col].map(json.dumps)
            flat.to_csv(tmp, index=False)
        elif fmt == "parquet":
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        else:
            raise ValueError(f"unknown output format {fmt!r} (parquet or csv)")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def tier_summary(scores: pd.DataFrame, tier_order: list[str]) -> pd.DataFrame:
    """Accounts, ARR and share per tier, healthiest first."""
    arr = scores["arr"] if "arr" in scores else pd.Series(0.0, index=scores.index)
    g = scores.assign(arr=arr.fillna(0)).groupby("tier")
    out = pd.DataFrame({"accounts": g.size(), "arr": g["arr"].sum()}).reindex(tier_order)
    out = out.fillna(0)
    out["share"] = out["accounts"] / max(len(scores), 1)
    out["arr_share"] = out["arr"] / max(float(out["arr"].sum()), 1e-9)
    return out
