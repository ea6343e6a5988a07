"""Data, score and tier-mix drift between a reference and a current population (Evidently).

The reference is the population the champion learned from (its training snapshot, scored by it);
the current one is the latest score run. Both frames hold `account_id`, the FeatureService's
features, `renewal_probability`, `health_score` and `tier`.

Methods are distances, never p-values: with tens of thousands of accounts a K-S or chi-square
test flags shifts too small to matter, and its verdict would depend on the population size.
Numerical features use Evidently's normed Wasserstein distance (the shift in units of the
reference's standard deviation), categorical ones the Jensen-Shannon distance. Features that
measure elapsed time (`tenure_days`, `days_since_*`) drift by construction as a book of business
ages, so they get a looser threshold by default.

A distance alone is noisy on small or sparse columns (a survey score a few hundred accounts
answered): a column counts as drifted only when its distance reaches the threshold AND a
two-sample test rejects "same distribution" at `significance` (K-S for numerical, chi-square for
categorical columns). On large populations the test always rejects and the distance decides.

Columns that cannot be judged (all missing, constant in the reference, too few values, an empty
batch) are listed with the reason instead of failing the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SCORE_COLUMNS = ("renewal_probability", "health_score")
TIER_COLUMN = "tier"
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
METHOD_LABELS = {NUM_METHOD: "Wasserstein distance (normed)", CAT_METHOD: "Jensen-Shannon distance"}


def is_elapsed_time(name: str) -> bool:
    """Features that grow with the calendar (tenure, days since an event)."""
    return name == "tenure_days" or name.startswith("days_since_")


def known_bounds(names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Bounds that hold by definition for rates, shares and survey scales in the catalog."""
    fixed = {
        "nps_latest": (0.0, 10.0),
        "nps_change": (-10.0, 10.0),
        "csat_180d": (1.0, 5.0),
        "ticket_csat_90d": (1.0, 5.0),
        "discount_pct": (0.0, 100.0),
    }
    out = {}
    for n in names:
        if n in fixed:
            out[n] = fixed[n]
        elif "_rate_" in n or "_share_" in n or n.endswith(("_rate", "_share")):
            out[n] = (0.0, 1.0)
        elif n.startswith(("days_since_", "days_to_")) or n.endswith(("_days", "_count")):
            out[n] = (0.0, math.inf)
    return out


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds and sampling. Distances at or above the threshold count as drift."""

    num_threshold: float = 0.15  # normed Wasserstein: shift in reference standard deviations
    cat_threshold: float = 0.1  # Jensen-Shannon distance
    elapsed_time_threshold: float = 0.3  # tenure_days, days_since_*: they age with the book
    score_threshold: float = 0.1  # renewal_probability, health_score (Wasserstein, normed)
    tier_threshold: float = 0.1  # tier mix (Jensen-Shannon)
    per_feature_threshold: Mapping[str, float] = field(default_factory=dict)
    significance: float | None = 0.01  # the distance must also be significant (None: off)
    min_drifted: int = 1  # drifted features needed for a "drift" verdict
    sample_size: int | None = 50_000  # rows per side given to Evidently; None = all rows
    seed: int = 0
    min_values: int = 30  # fewer non-missing values on a side: not judged
    bounds: Mapping[str, tuple[float, float]] | None = None  # default: known_bounds(features)

    def __post_init__(self) -> None:
        for name in ("num_threshold", "cat_threshold", "elapsed_time_threshold",
                     "score_threshold", "tier_threshold"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.significance is not None and not 0 < self.significance < 1:
            raise ValueError(f"significance: must be in (0, 1) or None, got {self.significance}")
        if self.min_drifted < 1:
            raise ValueError(f"min_drifted: must be at least 1, got {self.min_drifted}")
        if self.sample_size is not None and self.sample_size < 100:
            raise ValueError(f"sample_size: must be at least 100 or None, got {self.sample_size}")

    def threshold(self, name: str, categorical: bool) -> float:
        if name in self.per_feature_threshold:
            return float(self.per_feature_threshold[name])
        if categorical:
            return self.cat_threshold
        return self.elapsed_time_threshold if is_elapsed_time(name) else self.num_threshold


@dataclass
class DriftResult:
    """Per-feature table, score table, what could not be judged and the verdict."""

    features: pd.DataFrame  # one row per feature: drift and data quality
    scores: pd.DataFrame  # one row per score column (renewal_probability, health_score, tier)
    not_judged: dict[str, str]  # column -> reason
    rows: dict[str, int]  # reference / current rows before sampling
    sampled: dict[str, int | None]  # rows given to Evidently per side (None: all rows)
    config: DriftConfig
    evidently: object | None = None  # the Evidently snapshot (None when nothing could run)

    @property
    def drifted_features(self) -> list[str]:
        f = self.features
        f = f[f["drifted"].eq(True)]
        return f.sort_values("statistic", ascending=False)["feature"].tolist()

    @property
    def judged(self) -> int:
        return int(self.features["judged"].sum())

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / self.judged if self.judged else 0.0

    @property
    def drifted_scores(self) -> list[str]:
        s = self.scores
        return s[s["drifted"].eq(True)]["column"].tolist()

    @property
    def drift(self) -> bool:
        return len(self.drifted_features) >= self.config.min_drifted or bool(self.drifted_scores)

    @property
    def verdict(self) -> str:
        """One line: "no drift" or "drift in N of M features (a, b, c…) – retrain recommended"."""
        names = self.drifted_features
        parts = []
        if len(names) >= self.config.min_drifted:
            shown = ", ".join(names[:5]) + ("…" if len(names) > 5 else "")
            parts.append(f"drift in {len(names)} of {self.judged} features ({shown})")
        if self.drifted_scores:
            parts.append(f"score distribution drifted ({', '.join(self.drifted_scores)})")
        extra = f"; {len(self.not_judged)} columns not judged" if self.not_judged else ""
        if not parts and names:  # some drift, under the bar that asks for a retrain
            shown = ", ".join(names[:5]) + ("…" if len(names) > 5 else "")
            return (
                f"no retrain needed: {len(names)} of {self.judged} features drifted ({shown}), "
                f"fewer than the {self.config.min_drifted} that make a verdict{extra}"
            )
        if not parts:
            return f"no drift ({self.judged} features judged{extra})"
        return "; ".join(parts) + " – retrain recommended"

    def summary(self) -> dict:
        """JSON-ready summary (no NaN: missing numbers become null)."""
        return _jsonable(
            {
                "verdict": self.verdict,
                "drift": self.drift,
                "drifted_features": self.drifted_features,
                "features_judged": self.judged,
                "share_drifted": self.share_drifted,
                "drifted_scores": self.drifted_scores,
                "not_judged": self.not_judged,
                "rows": self.rows,
                "sampled": self.sampled,
                "config": {
                    k: (dict(v) if isinstance(v, Mapping) else v)
                    for k, v in self.config.__dict__.items()
                },
                "features": self.features.to_dict(orient="records"),
                "scores": self.scores.to_dict(orient="records"),
            }
        )


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


# -- preparation -----------------------------------------------------------------------------


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], side: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{side} frame: missing column(s) {', '.join(missing)}")


def _prepare(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric columns as float64 (NaN for missing), categorical ones as strings or None."""
    out = {}
    for c in numeric:
        col = frame[c]
        if isinstance(col.dtype, pd.BooleanDtype) or col.dtype == bool:
            col = col.astype("Float64")
        out[c] = pd.to_numeric(col, errors="coerce").astype("float64")
    for c in categorical:
        col = frame[c]
        out[c] = (
            col.astype(object).where(col.notna(), None).map(lambda v: None if v is None else str(v))
        )
    return pd.DataFrame(out, index=frame.index)


def _sample(frame: pd.DataFrame, size: int | None, seed: int) -> tuple[pd.DataFrame, int | None]:
    if size is None or len(frame) <= size:
        return frame, None
    return frame.sample(n=size, random_state=seed), size


def _why_not(ref: pd.Series, cur: pd.Series, categorical: bool, min_values: int) -> str | None:
    """Why a column cannot be judged, or None when it can."""
    if len(cur) == 0:
        return "current batch is empty"
    if len(ref) == 0:
        return "reference is empty"
    r, c = ref.dropna(), cur.dropna()
    if len(r) == 0:
        return "all values missing in the reference"
    if len(c) == 0:
        return "all values missing in the current batch"
    if len(r) < min_values or len(c) < min_values:
        return f"too few values ({len(r)} reference, {len(c)} current; need {min_values})"
    if not categorical and r.nunique() < 2:
        return f"constant in the reference (= {r.iloc[0]:g}): no spread to measure a shift against"
    return None


def _quality(
    ref: pd.Series, cur: pd.Series, categorical: bool, bounds: tuple[float, float] | None
) -> dict:
    """Missing rates, new categories and values outside the expected range (full data)."""
    out: dict = {
        "missing_reference": float(ref.isna().mean()) if len(ref) else None,
        "missing_current": float(cur.isna().mean()) if len(cur) else None,
        "new_categories": None,
        "out_of_range": None,
        "out_of_range_share": None,
        "range": None,
    }
    if categorical:
        new = sorted(set(cur.dropna().unique()) - set(ref.dropna().unique()))
        out["new_categories"] = new
        return out
    r, c = ref.dropna(), cur.dropna()
    if bounds is not None:
        lo, hi, how = bounds[0], bounds[1], "known bounds"
    elif len(r):
        lo, hi, how = float(r.min()), float(r.max()), "reference min/max"
    else:
        return out
    n = int(((c < lo) | (c > hi)).sum())
    out.update(
        out_of_range=n,
        out_of_range_share=n / len(c) if len(c) else None,
        range=f"[{lo:g}, {hi:g}] ({how})",
    )
    return out


def p_value(ref: pd.Series, cur: pd.Series, categorical: bool) -> float:
    """Two-sample test of "same distribution": K-S (numerical) or chi-square (categorical)."""
    from scipy.stats import chi2_contingency, ks_2samp

    r, c = ref.dropna(), cur.dropna()
    if categorical:
        counts = pd.concat([r.value_counts(), c.value_counts()], axis=1).fillna(0)
        if len(counts) < 2:
            return 1.0
        return float(chi2_contingency(counts.to_numpy().T)[1])
    return float(ks_2samp(r.to_numpy(float), c.to_numpy(float)).pvalue)


# -- the report ------------------------------------------------------------------------------


def _evidently_run(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    thresholds: dict[str, float],
    score_numeric: list[str],
    score_categorical: list[str],
):
    """One Evidently Report: DataDriftPreset over the judged features, ValueDrift per score."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features = [*numeric, *categorical]
    items: list = []
    if features:
        items.append(
            DataDriftPreset(
                columns=features,
                num_method=NUM_METHOD,
                cat_method=CAT_METHOD,
                per_column_threshold={c: thresholds[c] for c in features},
            )
        )
    for c in score_numeric:
        items.append(ValueDrift(column=c, method=NUM_METHOD, threshold=thresholds[c]))
    for c in score_categorical:
        items.append(ValueDrift(column=c, method=CAT_METHOD, threshold=thresholds[c]))
    if not items:
        return None, {}
    definition = DataDefinition(
        numerical_columns=[*numeric, *score_numeric],
        categorical_columns=[*categorical, *score_categorical],
    )
    cols = [*numeric, *categorical, *score_numeric, *score_categorical]
    snapshot = Report(items).run(
        Dataset.from_pandas(cur[cols], data_definition=definition),
        Dataset.from_pandas(ref[cols], data_definition=definition),
    )
    values: dict[str, tuple[float, str, float]] = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith(":ValueDrift"):
            values[cfg["column"]] = (float(m["value"]), cfg.get("method"), cfg.get("threshold"))
    return snapshot, values


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    feature_names: Sequence[str],
    categorical: Sequence[str] = (),
    config: DriftConfig | None = None,
) -> DriftResult:
    """Per-feature drift, score and tier-mix drift, and data quality of `current` vs `reference`.

    `feature_names` are the model's features (the FeatureService's order); `categorical` those of
    them that are categories (strings, booleans). Score columns are used when both frames have
    them. Raises ValueError naming the column when a feature is absent from either frame.
    """
    config = config or DriftConfig()
    feature_names = list(feature_names)
    categorical = [c for c in feature_names if c in set(categorical)]
    numeric = [c for c in feature_names if c not in set(categorical)]
    _check_columns(reference, feature_names, "reference")
    _check_columns(current, feature_names, "current")
    score_numeric = [c for c in SCORE_COLUMNS if c in reference and c in current]
    score_categorical = [TIER_COLUMN] if TIER_COLUMN in reference and TIER_COLUMN in current else []
    bounds = dict(known_bounds(feature_names) if config.bounds is None else config.bounds)
    bounds.update({"renewal_probability": (0.0, 1.0), "health_score": (0.0, 100.0)})

    ref_all = _prepare(reference, [*numeric, *score_numeric], [*categorical, *score_categorical])
    cur_all = _prepare(current, [*numeric, *score_numeric], [*categorical, *score_categorical])
    ref, n_ref = _sample(ref_all, config.sample_size, config.seed)
    cur, n_cur = _sample(cur_all, config.sample_size, config.seed + 1)

    thresholds = {c: config.threshold(c, c in categorical) for c in feature_names}
    thresholds.update({c: config.score_threshold for c in score_numeric})
    thresholds.update({c: config.tier_threshold for c in score_categorical})
    not_judged: dict[str, str] = {}
    for c in [*feature_names, *score_numeric, *score_categorical]:
        cat = c in categorical or c in score_categorical
        reason = _why_not(ref[c], cur[c], cat, config.min_values)
        if reason:
            not_judged[c] = reason
    judged = [c for c in feature_names if c not in not_judged]
    snapshot, values = _evidently_run(
        ref,
        cur,
        [c for c in numeric if c in judged],
        [c for c in categorical if c in judged],
        thresholds,
        [c for c in score_numeric if c not in not_judged],
        [c for c in score_categorical if c not in not_judged],
    )

    def row(c: str, cat: bool) -> dict:
        stat, method, threshold = values.get(c, (None, None, thresholds[c]))
        p = None if stat is None else p_value(ref[c], cur[c], cat)
        significant = p is not None and (config.significance is None or p < config.significance)
        base = {
            "kind": "categorical" if cat else "numerical",
            "method": method or METHOD_LABELS[CAT_METHOD if cat else NUM_METHOD],
            "threshold": threshold,
            "statistic": stat,
            "p_value": p,
            "drifted": None if stat is None else bool(stat >= threshold and significant),
            "judged": c not in not_judged,
            "reason": not_judged.get(c),
        }
        return base | _quality(ref_all[c], cur_all[c], cat, None if cat else bounds.get(c))

    features = pd.DataFrame([{"feature": c} | row(c, c in categorical) for c in feature_names])
    scores = pd.DataFrame(
        [{"column": c} | row(c, c in score_categorical) for c in score_numeric + score_categorical],
        columns=[
            "column",
            "kind",
            "method",
            "threshold",
            "statistic",
            "p_value",
            "drifted",
            "judged",
            "reason",
            "missing_reference",
            "missing_current",
            "new_categories",
            "out_of_range",
            "out_of_range_share",
            "range",
        ],
    )
    return DriftResult(
        features=features,
        scores=scores,
        not_judged=not_judged,
        rows={"reference": len(reference), "current": len(current)},
        sampled={"reference": n_ref, "current": n_cur},
        config=config,
        evidently=snapshot,
    )
