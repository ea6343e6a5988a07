"""Evaluation figures for the renewal model, for data scientists reading them in the MLflow UI.

Every function builds and returns a `matplotlib.figure.Figure` with an Agg canvas attached. Nothing
touches `pyplot` or its global figure registry, so the functions are thread-safe in the sense that
matters here (no shared current figure/axes) and no figure stays open after it is dropped. Write a
figure with `save_png` (atomic), or hand it to `mlflow.log_figure`.

Conventions as in `training.metrics`: `y_renewed` True = renewed; `p_by_model` maps a model name to
its predicted P(renew); churn is the positive class for the ROC and gains curves.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

from training.metrics import (
    _labels,
    calibration_table,
    cumulative_gains,
    expected_calibration_error,
    top_decile_lift,
)

DPI = 110
_MODEL_COLOURS = [mpl.colormaps["tab10"](i) for i in range(10)]
_GREY = "#b0b0b0"
_MAX_CURVE_POINTS = 1_001


def _figure(width: float = 7.0, height: float = 5.5) -> Figure:
    """A new Figure on its own Agg canvas: no pyplot, no global state."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int = DPI) -> Path:
    """Write `fig` as PNG at `path` atomically (temporary file in the same folder, then rename).

    Creates the parent folder. A reader never sees a half-written image. Returns the path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _population_note(y: np.ndarray) -> str:
    churners = int((~y).sum())
    return f"n = {y.size:,} accounts, {churners:,} churned ({churners / max(y.size, 1):.1%})"


def _model_items(
    p_by_model: Mapping[str, ArrayLike], n: int
) -> list[tuple[str, np.ndarray, tuple]]:
    """(name, predictions, colour) per model, checked: same length as the labels, finite."""
    if not p_by_model:
        raise ValueError("p_by_model is empty: pass at least one model's predictions")
    items = []
    for i, (name, p) in enumerate(p_by_model.items()):
        arr = np.asarray(p, dtype=float)
        if arr.shape != (n,):
            raise ValueError(f"predictions of {name!r} have shape {arr.shape}, labels ({n},)")
        if not np.isfinite(arr).all():
            raise ValueError(f"predictions of {name!r} contain NaN/inf values")
        items.append((name, arr, _MODEL_COLOURS[i % len(_MODEL_COLOURS)]))
    return items


def _line_width(i: int) -> float:
    return 2.2 if i == 0 else 1.5  # the first model (the candidate) stands out


# --------------------------------------------------------------------------- ROC


def roc_figure(y_renewed: ArrayLike, p_by_model: Mapping[str, ArrayLike]) -> Figure:
    """ROC curves with churn as the positive class (score 1 - P(renew)), one per model.

    The legend gives each model's ROC-AUC; the dashed diagonal is a random ranking.
    """
    y = _labels(y_renewed)
    churned = ~y
    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="random ranking (AUC 0.500)")
    both = 0 < churned.sum() < y.size
    for i, (name, p, colour) in enumerate(_model_items(p_by_model, y.size)):
        if not both:
            ax.plot([], [], color=colour, label=f"{name} (AUC n/a: one class only)")
            continue
        fpr, tpr, _ = roc_curve(churned, 1.0 - p)
        auc = float(roc_auc_score(churned, 1.0 - p))
        ax.plot(fpr, tpr, color=colour, lw=_line_width(i), label=f"{name} (AUC {auc:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        aspect="equal",
        xlabel="false positive rate: share of renewing accounts flagged",
        ylabel="true positive rate: share of churners flagged",
        title=f"ROC, churn as the positive class\n{_population_note(y)}",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- calibration


def calibration_figure(
    y_renewed: ArrayLike, p_by_model: Mapping[str, ArrayLike], bins: int = 10
) -> Figure:
    """Reliability diagram of P(renew) per model, with a histogram of the predictions below.

    Top: observed renewal rate against the mean prediction in each of `bins` equal-width bins
    (marker area ~ rows in the bin); the diagonal is perfect calibration; the legend gives each
    model's expected calibration error (ECE). Bottom: how many accounts get each prediction
    (log scale).
    """
    y = _labels(y_renewed)
    items = _model_items(p_by_model, y.size)
    fig = _figure(7.0, 7.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    top.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, 41)
    for i, (name, p, colour) in enumerate(items):
        table = calibration_table(y, p, bins=bins)
        used = table[table["n"] > 0]
        ece = expected_calibration_error(y, p, bins=bins)
        top.plot(
            used["mean_predicted"],
            used["observed_rate"],
            color=colour,
            lw=_line_width(i),
            marker="o",
            markersize=0,
            label=f"{name} (ECE {ece:.3f})",
        )
        top.scatter(
            used["mean_predicted"],
            used["observed_rate"],
            s=15 + 200 * used["n"] / used["n"].max(),
            color=colour,
            edgecolor="white",
            zorder=3,
        )
        bottom.hist(p, bins=edges, histtype="step", color=colour, lw=_line_width(i), label=name)
    top.set(
        xlim=(0, 1),
        ylim=(-0.02, 1.02),
        ylabel="observed renewal rate in bin",
        title=(
            f"Calibration of P(renew), {bins} equal-width bins (marker area ~ accounts)\n"
            f"{_population_note(y)}"
        ),
    )
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.set_yscale("log")  # a near-constant baseline would otherwise flatten the others
    bottom.set(xlabel="predicted P(renew)", ylabel="accounts per 0.025 bin\n(log scale)")
    bottom.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- gains


def gains_figure(y_renewed: ArrayLike, p_by_model: Mapping[str, ArrayLike]) -> Figure:
    """Cumulative gains: share of churners reached when contacting accounts riskiest first.

    One curve per model (x = share of accounts contacted, lowest P(renew) first), with the random
    line, the best possible ranking and, at 10% contacted, each model's top-decile lift.
    """
    y = _labels(y_renewed)
    items = _model_items(p_by_model, y.size)
    churn_rate = float((~y).mean()) if y.size else float("nan")
    fig = _figure(7.0, 6.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="random order (lift 1.0×)")
    if 0 < churn_rate < 1:
        ax.plot([0, churn_rate, 1], [0, 1, 1], ls=":", color="black", lw=1, label="perfect ranking")
    grid = np.linspace(0.0, 1.0, _MAX_CURVE_POINTS)
    for i, (name, p, colour) in enumerate(items):
        share, captured = cumulative_gains(y, p)
        curve = np.interp(grid, share, captured)
        lift = top_decile_lift(y, p)
        label = f"{name} (top-decile lift {lift:.2f}×)" if np.isfinite(lift) else name
        ax.plot(grid, curve, color=colour, lw=_line_width(i), label=label)
        at_decile = float(np.interp(0.1, share, captured))
        if np.isfinite(at_decile):
            ax.plot([0.1], [at_decile], marker="o", color=colour, zorder=3)
            ax.annotate(
                f"{lift:.2f}×",
                xy=(0.1, at_decile),
                xytext=(8, -4),
                textcoords="offset points",
                color=colour,
                fontsize="small",
            )
    ax.axvline(0.1, color=_GREY, lw=0.8)
    ax.text(0.1, 0.99, " top decile", color="dimgrey", fontsize="small", va="top")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="share of accounts contacted (lowest predicted P(renew) first)",
        ylabel="cumulative share of churners captured",
        title=(
            "Cumulative gains: churners reached by contacting the riskiest first\n"
            f"{_population_note(y)}"
        ),
    )
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- importance


def importance_figure(
    names: Sequence[str],
    importances: ArrayLike,
    top: int = 20,
    title: str = "Feature importance (LightGBM total gain)",
    xlabel: str = "importance (total gain of splits on the feature)",
) -> Figure:
    """Horizontal bars of the `top` largest importances, the largest at the top.

    NaN importances are left out. `title` and `xlabel` say which importance it is (gain, split
    count, mean |SHAP|, permutation drop).
    """
    values = np.asarray(importances, dtype=float)
    labels = np.asarray(list(names), dtype=object)
    if labels.shape != values.shape:
        raise ValueError(f"{labels.size} names but {values.size} importances")
    keep = np.isfinite(values)
    labels, values = labels[keep], values[keep]
    order = np.argsort(-values, kind="stable")[:top]
    labels, values = labels[order][::-1], values[order][::-1]
    fig = _figure(7.5, max(2.5, 1.2 + 0.28 * len(values)))
    ax = fig.add_subplot()
    ax.barh(np.arange(len(values)), values, color=_MODEL_COLOURS[0], height=0.7)
    ax.set_yticks(np.arange(len(values)), [str(s) for s in labels], fontsize="small")
    ax.axvline(0, color="black", lw=0.8)
    shown = f"top {len(values)} of {int(keep.sum())} features"
    ax.set(xlabel=xlabel, title=f"{title}\n{shown}")
    ax.grid(axis="x", alpha=0.3)
    return fig


# --------------------------------------------------------------------------- SHAP beeswarm


def _value_percentiles(column: pd.Series) -> np.ndarray:
    """Each value's percentile (0 = lowest, 1 = highest) within its column; NaN if non-numeric.

    Booleans count as 0/1. Categorical, string and other non-numeric columns, and missing
    values, give NaN (drawn grey).
    """
    if isinstance(column.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
    ):
        return np.full(len(column), np.nan)
    values = column.astype("float64").to_numpy(na_value=np.nan)
    out = np.full(values.size, np.nan)
    ok = np.isfinite(values)
    m = int(ok.sum())
    if m == 1:
        out[ok] = 0.5
    elif m > 1:
        ranks = pd.Series(values[ok]).rank(method="average").to_numpy()
        out[ok] = (ranks - 1.0) / (m - 1.0)
    return out


def _jitter(x: np.ndarray, rng: np.random.Generator, width: float = 0.38) -> np.ndarray:
    """Vertical offsets that spread points where they are dense along x (beeswarm-like)."""
    if x.size < 2 or np.ptp(x) == 0:
        return rng.uniform(-width, width, size=x.size) * (0.5 if x.size > 1 else 0.0)
    counts, edges = np.histogram(x, bins=60)
    where = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, counts.size - 1)
    density = np.sqrt(counts[where] / counts.max())
    return rng.uniform(-1.0, 1.0, size=x.size) * width * density


def shap_summary_figure(
    contrib: np.ndarray,
    X: pd.DataFrame,
    names: Sequence[str],
    top: int = 20,
    max_points: int = 5_000,
    seed: int = 0,
) -> Figure:
    """SHAP-style beeswarm of LightGBM `pred_contrib` values (no `shap` package).

    `contrib` is (n, n_features) or LightGBM's (n, n_features + 1) whose last column, the
    expected value, is dropped. The `top` features by mean |contribution| are rows, the most
    important at the top; each point is one account at x = its contribution to the raw score
    (log-odds of renewal), jittered vertically, coloured by the feature value's percentile
    within its column (`X[name]`); missing and non-numeric values are grey. At most
    `max_points` accounts (a seeded random sample) are drawn; the ranking uses all rows.
    """
    contrib = np.asarray(contrib, dtype=float)
    names = [str(n) for n in names]
    if contrib.ndim != 2:
        raise ValueError(f"contrib must be 2-D (rows, features), got shape {contrib.shape}")
    if contrib.shape[1] == len(names) + 1:
        contrib = contrib[:, :-1]  # LightGBM appends the expected value (bias) column
    if contrib.shape[1] != len(names):
        raise ValueError(f"contrib has {contrib.shape[1]} columns but {len(names)} names")
    if len(X) != contrib.shape[0]:
        raise ValueError(f"X has {len(X)} rows but contrib has {contrib.shape[0]}")
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ValueError(f"features missing from X: {missing[:10]}")

    n = contrib.shape[0]
    mean_abs = np.nanmean(np.abs(contrib), axis=0) if n else np.zeros(len(names))
    order = np.argsort(-np.nan_to_num(mean_abs, nan=-1.0), kind="stable")[:top]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else None

    cmap = mpl.colormaps["coolwarm"]
    fig = _figure(8.0, max(3.0, 1.5 + 0.38 * len(order)))
    ax = fig.add_subplot()
    for level, j in enumerate(order[::-1]):  # least important at the bottom (y = 0)
        x = contrib[:, j]
        colour_value = _value_percentiles(X[names[j]])
        if rows is not None:
            x, colour_value = x[rows], colour_value[rows]
        keep = np.isfinite(x)
        x, colour_value = x[keep], colour_value[keep]
        y = level + _jitter(x, rng)
        grey = np.isnan(colour_value)
        ax.scatter(x[grey], y[grey], s=5, color=_GREY, alpha=0.6, linewidths=0, rasterized=True)
        coloured = ~grey
        shuffle = rng.permutation(int(coloured.sum()))  # no colour systematically on top
        ax.scatter(
            x[coloured][shuffle],
            y[coloured][shuffle],
            s=5,
            c=colour_value[coloured][shuffle],
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            alpha=0.8,
            linewidths=0,
            rasterized=True,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(
        np.arange(len(order)),
        [f"{names[j]}  ({mean_abs[j]:.3f})" for j in order[::-1]],
        fontsize="small",
    )
    ax.set_ylim(-0.6, len(order) - 0.4)
    drawn = n if rows is None else max_points
    ax.set(
        xlabel="contribution to the raw score (log-odds of renewal); > 0 pushes towards renewal",
        title=(
            f"Feature contributions (LightGBM pred_contrib, SHAP values), top {len(order)} by "
            f"mean |contribution|\n{drawn:,} of {n:,} accounts drawn; grey = missing or "
            "non-numeric value"
        ),
    )
    ax.grid(axis="x", alpha=0.3)
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=ax, pad=0.01)
    bar.set_ticks([0.0, 1.0], labels=["low", "high"])
    bar.set_label("feature value (percentile in column), low → high")
    bar.outline.set_visible(False)
    return fig


# --------------------------------------------------------------------------- scores


def score_distribution_figure(
    scores_0_100: ArrayLike,
    tiers: ArrayLike,
    colours: Mapping[str, str],
    bin_width: float = 2.0,
) -> Figure:
    """Stacked histogram of health scores (0-100), coloured by tier.

    `colours` maps every tier to a colour; its order is the stacking and legend order. A tier
    not in `colours` is an error. Missing scores are left out and counted in the title.
    """
    scores = np.asarray(scores_0_100, dtype=float)
    tier_arr = np.asarray(tiers, dtype=object)
    if scores.shape != tier_arr.shape or scores.ndim != 1:
        raise ValueError(f"scores have shape {scores.shape} but tiers {tier_arr.shape}")
    unknown = sorted({str(t) for t in tier_arr} - set(colours))
    if unknown:
        raise ValueError(f"tiers without a colour: {unknown[:10]}")
    ok = np.isfinite(scores)
    n_ok = int(ok.sum())
    edges = np.arange(0.0, 100.0 + bin_width, bin_width)
    groups, labels, colour_list = [], [], []
    for tier, colour in colours.items():
        part = scores[ok & (tier_arr == tier)]
        groups.append(np.clip(part, 0.0, 100.0))
        labels.append(f"{tier} (n={part.size:,}, {part.size / max(n_ok, 1):.1%})")
        colour_list.append(colour)
    fig = _figure(8.0, 5.0)
    ax = fig.add_subplot()
    ax.hist(groups, bins=edges, stacked=True, color=colour_list, label=labels, edgecolor="white")
    missing = scores.size - n_ok
    note = f"n = {n_ok:,} accounts" + (f", {missing:,} without a score left out" if missing else "")
    ax.set(
        xlim=(0, 100),
        xlabel="health score (0–100, higher = healthier)",
        ylabel=f"accounts per {bin_width:g}-point bin",
        title=f"Health score distribution by tier\n{note}",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="tier", fontsize="small")
    return fig
