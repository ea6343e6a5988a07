"""Evaluation metrics for the renewal model: pure functions, numpy in, plain Python floats out.

Conventions used throughout:

- `y_renewed` is the label: True (or 1) = the account renewed, False (or 0) = it churned.
- `p_renew` is the predicted probability of renewal. Low `p_renew` = high churn risk.
- Churn is the class a customer-success team acts on, so the churn-facing metrics (PR-AUC, lift,
  gains) treat churn as the positive class and `1 - p_renew` as its score. ROC-AUC is the same
  number either way round.
- Ties in `p_renew` (common for scorecard baselines) are never broken by row order: lift and gains
  count a tied group that straddles a cut-off in proportion, i.e. the expected value under a random
  tie-break.
- Metrics that need both classes (`roc_auc`, `pr_auc_churn`, `top_decile_lift`) are NaN when only
  one class is present, rather than raising.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

_EPS = 1e-15  # probability clip for log loss, as sklearn used to do


class TierStats(TypedDict):
    """Accounts and churn in one health tier."""

    n: int
    churners: int
    churn_rate: float


# --------------------------------------------------------------------------- input checking


def _labels(y: ArrayLike, name: str = "y_renewed") -> np.ndarray:
    """A 1-D boolean array (True = renewed) from bools or 0/1 numbers; NaN/other values rejected."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    try:
        num = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be boolean or 0/1, got dtype {arr.dtype}") from exc
    if not np.isin(num, (0.0, 1.0)).all():
        bad = num[~np.isin(num, (0.0, 1.0))][:5]
        raise ValueError(f"{name} must be boolean or 0/1; found values like {bad.tolist()}")
    return num == 1.0


def _scores(p: ArrayLike, n: int, name: str, probability: bool) -> np.ndarray:
    """A 1-D float64 array of length `n`, finite (and within [0, 1] when `probability`)."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but the labels have {n}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf values")
    if probability and arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"{name} must be probabilities in [0, 1]; range is [{arr.min():.4g}, {arr.max():.4g}]"
        )
    return arr


def _pair(
    y: ArrayLike, p: ArrayLike, probability: bool, p_name: str = "p_renew"
) -> tuple[np.ndarray, np.ndarray]:
    labels = _labels(y)
    if labels.size == 0:
        raise ValueError("no rows to evaluate")
    return labels, _scores(p, labels.size, p_name, probability)


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


# --------------------------------------------------------------------------- calibration


def _calibration_sums(
    y: np.ndarray, p: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges, and per equal-width bin: row count, sum of predictions, sum of outcomes.

    Bin i holds [edges[i], edges[i+1]); the last bin also holds p = 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(float)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    sum_y = np.bincount(idx, weights=y.astype(float), minlength=bins)
    return edges, count, sum_p, sum_y


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error of predicted probabilities `p` for the binary outcome `y`.

    Equal-width bins on [0, 1]; the mean over bins of |observed rate - mean prediction|,
    weighted by the share of rows in the bin. Empty bins contribute nothing. 0 is perfect.
    """
    labels, probs = _pair(y, p, probability=True, p_name="p")
    _, count, sum_p, sum_y = _calibration_sums(labels, probs, bins)
    used = count > 0
    gap = np.abs(sum_y[used] - sum_p[used])  # = count · |mean(y) - mean(p)| per bin
    return float(gap.sum() / labels.size)


def calibration_table(y: ArrayLike, p: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Reliability table: one row per equal-width bin of `p` on [0, 1] (empty bins included).

    Columns: `bin` (0-based), `lower`, `upper` (bin edges), `n` (rows in the bin),
    `mean_predicted` (mean of `p`), `observed_rate` (mean of `y`); the means are NaN for an
    empty bin. With `y = y_renewed, p = p_renew`, `observed_rate` is the renewal rate.
    """
    labels, probs = _pair(y, p, probability=True, p_name="p")
    edges, count, sum_p, sum_y = _calibration_sums(labels, probs, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        rate = np.where(count > 0, sum_y / count, np.nan)
    return pd.DataFrame(
        {
            "bin": np.arange(bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n": count.astype(np.int64),
            "mean_predicted": mean_p,
            "observed_rate": rate,
        }
    )


# --------------------------------------------------------------------------- lift and gains


def _cumulative_churners(y_renewed: np.ndarray, p_renew: np.ndarray) -> tuple[np.ndarray, ...]:
    """Knots of the cumulative churners curve when accounts are contacted riskiest first.

    Returns (contacted, churners): at `contacted[i]` accounts contacted (lowest `p_renew` first),
    `churners[i]` churners have been reached. Knots sit at the boundaries of groups of tied
    scores; between knots the curve is linear, which is the expectation under a random
    tie-break. Evaluate it anywhere with `np.interp`.
    """
    order = np.argsort(p_renew, kind="stable")
    p_sorted = p_renew[order]
    churn_sorted = (~y_renewed[order]).astype(float)
    ends = np.flatnonzero(np.r_[p_sorted[1:] != p_sorted[:-1], True]) + 1  # tie-group ends
    cum = np.cumsum(churn_sorted)
    contacted = np.r_[0.0, ends.astype(float)]
    churners = np.r_[0.0, cum[ends - 1]]
    return contacted, churners


def _decile_bounds(n: int, groups: int) -> np.ndarray:
    """Row counts at the group boundaries: round(k·n/groups) for k = 0..groups (half up)."""
    k = np.arange(groups + 1)
    return (k * n * 2 + groups) // (2 * groups)


def cumulative_gains(y_renewed: ArrayLike, p_renew: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative gains curve: (share of accounts contacted, share of churners captured).

    Accounts are contacted riskiest (lowest `p_renew`) first; ties count in proportion. The
    arrays start at (0, 0) and end at (1, 1); the curve is linear between points. The captured
    share is NaN when there are no churners.
    """
    labels, scores = _pair(y_renewed, p_renew, probability=False)
    contacted, churners = _cumulative_churners(labels, scores)
    total = churners[-1]
    captured = churners / total if total > 0 else np.full_like(churners, np.nan)
    return contacted / labels.size, captured


def gains_table(y_renewed: ArrayLike, p_renew: ArrayLike, groups: int = 10) -> pd.DataFrame:
    """Gains and lift by risk decile (or `groups` equal-size groups), riskiest first.

    Rows are sorted by `p_renew` ascending (highest churn risk first) and cut into `groups`
    groups of equal size (boundaries rounded to whole rows). Columns:

    - `decile` (1 = riskiest), `n`, `p_renew_min`, `p_renew_max`
    - `share_of_accounts`, `cum_share_of_accounts`
    - `churners` (expected count: tied scores across a boundary are split in proportion),
      `churn_rate`
    - `cum_share_of_churners`: share of all churners captured contacting down to this group
    - `lift` (group churn rate / overall churn rate), `cum_lift`

    Share of churners and lift are NaN when there are no churners.
    """
    labels, scores = _pair(y_renewed, p_renew, probability=False)
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups}")
    n = labels.size
    contacted, churners = _cumulative_churners(labels, scores)
    bounds = _decile_bounds(n, groups)
    cum_churn = np.interp(bounds, contacted, churners)
    total = cum_churn[-1]
    overall_rate = total / n
    sizes = np.diff(bounds)
    group_churn = np.diff(cum_churn)
    p_sorted = np.sort(scores)
    pairs = list(itertools.pairwise(bounds.tolist()))
    lo = [p_sorted[a] if b > a else np.nan for a, b in pairs]
    hi = [p_sorted[b - 1] if b > a else np.nan for a, b in pairs]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(sizes > 0, group_churn / np.maximum(sizes, 1), np.nan)
        cum_rate = cum_churn[1:] / np.maximum(bounds[1:], 1)
    if total > 0:
        captured, lift, cum_lift = (
            cum_churn[1:] / total,
            rate / overall_rate,
            cum_rate / overall_rate,
        )
    else:
        captured = lift = cum_lift = np.full(groups, np.nan)
    table = pd.DataFrame(
        {
            "decile": np.arange(1, groups + 1),
            "n": sizes.astype(np.int64),
            "p_renew_min": lo,
            "p_renew_max": hi,
            "share_of_accounts": sizes / n,
            "cum_share_of_accounts": bounds[1:] / n,
            "churners": group_churn,
            "churn_rate": rate,
            "cum_share_of_churners": captured,
            "lift": lift,
            "cum_lift": cum_lift,
        }
    )
    return table


def _top_decile_lift(y_renewed: np.ndarray, p_renew: np.ndarray) -> float:
    n = y_renewed.size
    churn_total = float((~y_renewed).sum())
    if churn_total == 0 or churn_total == n:
        return math.nan
    k = max(int(_decile_bounds(n, 10)[1]), 1)
    contacted, churners = _cumulative_churners(y_renewed, p_renew)
    top_churn = float(np.interp(k, contacted, churners))
    return (top_churn / k) / (churn_total / n)


def top_decile_lift(y_renewed: ArrayLike, p_renew: ArrayLike) -> float:
    """Churn rate among the 10% of accounts with the lowest `p_renew`, over the overall churn rate.

    The top decile is round(n/10) rows (at least one), the first row of `gains_table`; ties at
    the cut-off count in proportion. NaN when only one class is present. 1 = no better than
    random.
    """
    labels, scores = _pair(y_renewed, p_renew, probability=False)
    return _top_decile_lift(labels, scores)


# --------------------------------------------------------------------------- headline metrics


def classification_metrics(y_renewed: ArrayLike, p_renew: ArrayLike) -> dict[str, float]:
    """The headline metrics of a renewal model on one evaluation set.

    Keys:

    - `roc_auc`: ROC-AUC (identical for renewal or churn as the positive class)
    - `pr_auc_churn`: average precision with churn as the positive class, scored by 1 - p_renew
    - `log_loss`: mean negative log-likelihood (natural log; p clipped to [1e-15, 1 - 1e-15])
    - `brier`: mean squared error of p_renew against the 0/1 outcome
    - `ece`: expected calibration error, 10 equal-width bins
    - `top_decile_lift`: churn rate in the riskiest 10% over the overall churn rate
    - `churn_rate`: share of rows that churned
    - `n`: number of rows (as a float, like every value here)

    `roc_auc`, `pr_auc_churn` and `top_decile_lift` are NaN when only one class is present.
    """
    labels, probs = _pair(y_renewed, p_renew, probability=True)
    churned = ~labels
    y = labels.astype(float)
    clipped = np.clip(probs, _EPS, 1.0 - _EPS)
    log_loss = -float(np.mean(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)))
    if _both_classes(labels):
        roc_auc = float(roc_auc_score(labels, probs))
        pr_auc = float(average_precision_score(churned, 1.0 - probs))
    else:
        roc_auc = pr_auc = math.nan
    return {
        "roc_auc": roc_auc,
        "pr_auc_churn": pr_auc,
        "log_loss": log_loss,
        "brier": float(np.mean((probs - y) ** 2)),
        "ece": expected_calibration_error(labels, probs),
        "top_decile_lift": float(_top_decile_lift(labels, probs)),
        "churn_rate": float(churned.mean()),
        "n": float(labels.size),
    }


def churn_rate_by_tier(
    y_renewed: ArrayLike, tiers: ArrayLike, order: Sequence[str]
) -> dict[str, TierStats]:
    """Accounts, churners and churn rate per health tier, in the order given.

    Returns `{tier: {"n": int, "churners": int, "churn_rate": float}}` for every tier in `order`
    (churn rate NaN for a tier with no accounts). A tier label not in `order` (including
    missing values) is an error, so no account silently drops out.
    """
    labels = _labels(y_renewed)
    tier_arr = np.asarray(tiers, dtype=object)
    if tier_arr.shape != labels.shape:
        raise ValueError(f"tiers has shape {tier_arr.shape} but the labels have {labels.shape}")
    if len(set(order)) != len(order):
        raise ValueError(f"order repeats a tier: {list(order)}")
    known = np.isin(tier_arr, np.asarray(list(order), dtype=object))
    if not known.all():
        unknown = sorted({str(t) for t in tier_arr[~known]})[:10]
        raise ValueError(f"tiers not in order {list(order)}: {unknown}")
    out: dict[str, TierStats] = {}
    for tier in order:
        mask = tier_arr == tier
        n = int(mask.sum())
        churners = int((~labels[mask]).sum())
        out[tier] = {
            "n": n,
            "churners": churners,
            "churn_rate": churners / n if n else math.nan,
        }
    return out


# --------------------------------------------------------------------------- bootstrap


def _group_keys(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Per row, 2·(rank of its group of tied scores) + (1 if positive); and the group count.

    Counting these keys over a resample gives, per tie group in ascending score order, how many
    negatives and positives it holds: all a Mann-Whitney AUC needs.
    """
    uniques, group = np.unique(scores, return_inverse=True)
    return 2 * group.astype(np.int64) + y.astype(np.int64), uniques.size


def _auc_from_group_counts(counts: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of `counts` (b, groups, 2): negatives and positives per tie group.

    A positive beats every negative in lower groups and half of those in its own group. NaN
    where a resample holds a single class.
    """
    neg = counts[:, :, 0].astype(float)
    pos = counts[:, :, 1].astype(float)
    neg_below = np.cumsum(neg, axis=1) - neg
    wins = np.einsum("ij,ij->i", pos, neg_below + 0.5 * neg)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def _resampled_auc(idx: np.ndarray, keys: np.ndarray, groups: int) -> np.ndarray:
    """AUC of one model on each resample (row of `idx`, (b, n) row indices)."""
    b = idx.shape[0]
    flat = keys[idx] + (np.arange(b, dtype=np.int64) * (2 * groups))[:, None]
    counts = np.bincount(flat.ravel(), minlength=b * 2 * groups)
    return _auc_from_group_counts(counts.reshape(b, groups, 2))


def paired_bootstrap_auc_delta(
    y: ArrayLike,
    p_new: ArrayLike,
    p_old: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """AUC(new) - AUC(old) and its percentile bootstrap confidence interval.

    Returns `(delta, low, high)`: `delta` on the full data, `(low, high)` the `alpha/2` and
    `1 - alpha/2` quantiles of the delta over `n_boot` paired resamples (both models scored on
    the same resampled rows, which cancels the noise the two share). Resample b is row b of
    `np.random.default_rng(seed).integers(0, n, size=(n_boot, n))`; resamples holding a single
    class are skipped. All NaN when `y` has a single class.

    Scores need only be finite (any score where higher = more likely `y`). Vectorised, for
    chunks of resamples at once: one `bincount` per model counts each resample's positives and
    negatives per group of tied scores, and AUC is the Mann-Whitney sum over those groups.
    """
    labels = _labels(y, "y")
    if labels.size == 0:
        raise ValueError("no rows to evaluate")
    n = labels.size
    new = _scores(p_new, n, "p_new", probability=False)
    old = _scores(p_old, n, "p_old", probability=False)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not _both_classes(labels):
        return math.nan, math.nan, math.nan

    models = [_group_keys(s, labels) for s in (new, old)]
    every_row = np.arange(n)[None, :]
    full = [_resampled_auc(every_row, keys, groups)[0] for keys, groups in models]
    delta = float(full[0] - full[1])

    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2_000_000 // n))  # ~16 MB per int64 (chunk, n) matrix
    deltas = []
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        new_auc, old_auc = (_resampled_auc(idx, keys, groups) for keys, groups in models)
        deltas.append(new_auc - old_auc)
        done += b
    d = np.concatenate(deltas)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return delta, math.nan, math.nan
    low, high = np.quantile(d, [alpha / 2.0, 1.0 - alpha / 2.0])
    return delta, float(low), float(high)
