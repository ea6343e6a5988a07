"""training.metrics: against sklearn, against hand-computed cases, and statistical behaviour."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from training.metrics import (
    calibration_table,
    churn_rate_by_tier,
    classification_metrics,
    cumulative_gains,
    expected_calibration_error,
    gains_table,
    paired_bootstrap_auc_delta,
    top_decile_lift,
)


def _random_book(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (~80% renew) and an informative but imperfect P(renew), with some tied scores."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.8
    p = 1.0 / (1.0 + np.exp(-(0.3 + 1.2 * y + rng.normal(size=n))))
    p[: n // 5] = np.round(p[: n // 5], 2)  # a scorecard-like block of ties
    return y, p


def _binormal(n: int, seed: int, mu_new: float = 1.0, mu_old: float = 0.7):
    """Scores whose population AUCs are Φ(μ/√2): new and old share noise, so pairing matters."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.8
    z, e = rng.normal(size=n), rng.normal(size=n)
    new = mu_new * y + z
    old = mu_old * y + (0.8 * z + 0.6 * e)
    sig = lambda s: 1.0 / (1.0 + np.exp(-s))  # noqa: E731 — monotone: AUC unchanged
    phi = lambda x: 0.5 * (1.0 + math.erf(x / 2.0))  # noqa: E731 — Φ(x/√2)
    true_delta = phi(mu_new) - phi(mu_old)
    return y, sig(new), sig(old), float(true_delta)


# --------------------------------------------------------------------------- headline metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed: int) -> None:
    y, p = _random_book(3_000, seed)
    got = classification_metrics(y, p)
    assert set(got) == {
        "roc_auc",
        "pr_auc_churn",
        "log_loss",
        "brier",
        "ece",
        "top_decile_lift",
        "churn_rate",
        "n",
    }
    assert all(type(v) is float for v in got.values())
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    # churn is the positive class, scored by 1 - p
    assert got["pr_auc_churn"] == pytest.approx(average_precision_score(~y, 1 - p), abs=1e-12)
    assert got["pr_auc_churn"] != pytest.approx(average_precision_score(y, p), abs=1e-3)
    assert got["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-9)
    assert got["ece"] == pytest.approx(expected_calibration_error(y, p))
    assert got["top_decile_lift"] == pytest.approx(top_decile_lift(y, p))
    assert got["churn_rate"] == pytest.approx(1 - y.mean())
    assert got["n"] == 3_000.0


def test_classification_metrics_accept_0_1_labels_and_pandas() -> None:
    import pandas as pd

    y, p = _random_book(500, 3)
    as_bool = classification_metrics(y, p)
    as_int = classification_metrics(pd.Series(y.astype(int)), pd.Series(p))
    assert as_int == pytest.approx(as_bool)


@pytest.mark.parametrize("label", [True, False])
def test_one_class_gives_nan_not_an_exception(label: bool) -> None:
    y = np.full(200, label)
    p = np.linspace(0.01, 0.99, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn "only one class" warnings either
        got = classification_metrics(y, p)
        boot = paired_bootstrap_auc_delta(y, p, p[::-1], n_boot=50)
    for key in ("roc_auc", "pr_auc_churn", "top_decile_lift"):
        assert math.isnan(got[key]), key
    for key in ("log_loss", "brier", "ece", "churn_rate", "n"):
        assert math.isfinite(got[key]), key
    assert got["churn_rate"] == (0.0 if label else 1.0)
    assert all(math.isnan(v) for v in boot)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([True, False], [0.5], "has 1 values"),
        ([True, False], [0.5, np.nan], "NaN"),
        ([True, False], [0.5, 1.2], r"\[0, 1\]"),
        ([1, 2], [0.5, 0.5], "boolean or 0/1"),
        ([], [], "no rows"),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(y, p, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.asarray(y), np.asarray(p, dtype=float))


# --------------------------------------------------------------------------- calibration


def test_ece_and_calibration_table_by_hand() -> None:
    y = np.array([0, 0, 1, 0, 0, 1])
    p = np.array([0.05, 0.05, 0.35, 0.35, 0.35, 0.95])
    # bin 0: |0 - .05|·2, bin 3: |1/3 - .35|·3, bin 9: |1 - .95|·1; over 6 rows
    assert expected_calibration_error(y, p) == pytest.approx((0.1 + 0.05 + 0.05) / 6)
    # one bin: |mean(y) - mean(p)| = |2/6 - 2.1/6|
    assert expected_calibration_error(y, p, bins=1) == pytest.approx(0.1 / 6)

    table = calibration_table(y, p)
    assert list(table.columns) == [
        "bin",
        "lower",
        "upper",
        "n",
        "mean_predicted",
        "observed_rate",
    ]
    assert table["n"].tolist() == [2, 0, 0, 3, 0, 0, 0, 0, 0, 1]
    used = table[table["n"] > 0]
    assert used["mean_predicted"].tolist() == pytest.approx([0.05, 0.35, 0.95])
    assert used["observed_rate"].tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert table.loc[table["n"] == 0, "observed_rate"].isna().all()


def test_probabilities_at_zero_and_one_land_in_the_end_bins() -> None:
    table = calibration_table(np.array([0, 1, 1]), np.array([0.0, 1.0, 0.5]), bins=4)
    assert table["n"].tolist() == [1, 0, 1, 1]
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_ece_is_small_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(7)
    p = rng.random(50_000)
    y = rng.random(50_000) < p
    assert expected_calibration_error(y, p) < 0.02
    overconfident = np.clip(0.5 + 1.6 * (p - 0.5), 0.0, 1.0)
    assert expected_calibration_error(y, overconfident) > 0.05  # ~0.095


# --------------------------------------------------------------------------- lift and gains


def _hand_book() -> tuple[np.ndarray, np.ndarray]:
    """20 accounts with distinct scores; churners at risk ranks 0, 2, 3 and 10 (rate 0.2)."""
    p_sorted = (np.arange(20) + 0.5) / 20
    churned_sorted = np.isin(np.arange(20), [0, 2, 3, 10])
    shuffle = np.random.default_rng(5).permutation(20)  # input order must not matter
    return ~churned_sorted[shuffle], p_sorted[shuffle]


def test_gains_and_lift_by_hand() -> None:
    y, p = _hand_book()
    table = gains_table(y, p)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["n"].tolist() == [2] * 10
    assert table["cum_share_of_accounts"].tolist() == pytest.approx(np.arange(1, 11) / 10)
    assert table["churners"].tolist() == pytest.approx([1, 2, 0, 0, 0, 1, 0, 0, 0, 0])
    assert table["cum_share_of_churners"].tolist() == pytest.approx(
        [0.25, 0.75, 0.75, 0.75, 0.75, 1, 1, 1, 1, 1]
    )
    # group churn rate / overall 0.2
    assert table["lift"].tolist() == pytest.approx([2.5, 5, 0, 0, 0, 2.5, 0, 0, 0, 0])
    assert table["cum_lift"].iloc[1] == pytest.approx(0.75 / 0.2)
    assert table["p_renew_min"].iloc[0] == pytest.approx(0.025)
    assert table["p_renew_max"].iloc[0] == pytest.approx(0.075)
    assert top_decile_lift(y, p) == pytest.approx(2.5)
    assert classification_metrics(y, p)["top_decile_lift"] == pytest.approx(2.5)


def test_tied_scores_are_not_broken_by_row_order() -> None:
    # every score equal, churners first in row order: no ranking information, so lift is 1
    y = np.array([False] * 30 + [True] * 70)
    p = np.full(100, 0.7)
    assert top_decile_lift(y, p) == pytest.approx(1.0)
    table = gains_table(y, p)
    assert table["lift"].tolist() == pytest.approx([1.0] * 10)
    share, captured = cumulative_gains(y, p)
    assert captured == pytest.approx(share)


def test_gains_table_sums_up_and_matches_the_gains_curve() -> None:
    y, p = _random_book(1_234, 9)
    table = gains_table(y, p)
    assert table["n"].sum() == 1_234
    assert table["churners"].sum() == pytest.approx((~y).sum())
    assert table["cum_share_of_churners"].iloc[-1] == pytest.approx(1.0)
    assert table["p_renew_max"].is_monotonic_increasing
    share, captured = cumulative_gains(y, p)
    at_deciles = np.interp(table["cum_share_of_accounts"], share, captured)
    assert at_deciles == pytest.approx(table["cum_share_of_churners"].to_numpy())
    assert table["lift"].iloc[0] == pytest.approx(top_decile_lift(y, p))


def test_gains_without_churners_is_nan_not_an_error() -> None:
    table = gains_table(np.ones(50, dtype=bool), np.linspace(0, 1, 50))
    assert table["lift"].isna().all() and table["cum_share_of_churners"].isna().all()


def test_churn_rate_by_tier() -> None:
    y = np.array([True, False, False, True, True, False])
    tiers = np.array(["at_risk", "at_risk", "at_risk", "healthy", "healthy", "watch"])
    got = churn_rate_by_tier(y, tiers, order=["at_risk", "watch", "healthy", "champion"])
    assert list(got) == ["at_risk", "watch", "healthy", "champion"]
    assert got["at_risk"] == {"n": 3, "churners": 2, "churn_rate": pytest.approx(2 / 3)}
    assert got["watch"] == {"n": 1, "churners": 1, "churn_rate": 1.0}
    assert got["healthy"] == {"n": 2, "churners": 0, "churn_rate": 0.0}
    assert got["champion"]["n"] == 0 and math.isnan(got["champion"]["churn_rate"])
    with pytest.raises(ValueError, match="not in order"):
        churn_rate_by_tier(y, tiers, order=["at_risk", "healthy"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_point_estimate_matches_sklearn_with_ties() -> None:
    y, p_new = _random_book(2_000, 11)
    p_old = np.round(p_new + np.random.default_rng(1).normal(scale=0.2, size=2_000), 1)
    p_old = np.clip(p_old, 0, 1)  # many ties
    delta, low, high = paired_bootstrap_auc_delta(y, p_new, p_old, n_boot=200)
    assert delta == pytest.approx(roc_auc_score(y, p_new) - roc_auc_score(y, p_old), abs=1e-12)
    assert low < delta < high


@pytest.mark.parametrize("n", [400, 25])
def test_bootstrap_equals_a_plain_loop_over_the_same_resamples(n: int) -> None:
    y, p_new = _random_book(n, n)
    if n == 25:  # 3 churners: many resamples hold one class and must be skipped
        y = np.ones(n, dtype=bool)
        y[[3, 11, 17]] = False
    p_old = np.round(np.random.default_rng(n).random(n), 1)  # ties
    n_boot = 300
    idx = np.random.default_rng(42).integers(0, n, size=(n_boot, n))
    deltas = [
        roc_auc_score(y[i], p_new[i]) - roc_auc_score(y[i], p_old[i])
        for i in idx
        if 0 < y[i].sum() < n
    ]
    if n == 25:
        assert 0 < len(deltas) < n_boot
    expected = np.quantile(deltas, [0.05, 0.95])
    _, low, high = paired_bootstrap_auc_delta(y, p_new, p_old, n_boot=n_boot, seed=42, alpha=0.1)
    assert (low, high) == pytest.approx(tuple(expected), abs=1e-12)


def test_identical_predictions_give_zero_delta_and_zero_width() -> None:
    y, p = _random_book(1_000, 4)
    assert paired_bootstrap_auc_delta(y, p, p.copy(), n_boot=300) == (0.0, 0.0, 0.0)


def test_bootstrap_ci_contains_the_true_delta() -> None:
    y, new, old, true_delta = _binormal(5_000, seed=0)
    delta, low, high = paired_bootstrap_auc_delta(y, new, old, n_boot=1_000)
    assert low < true_delta < high
    assert low < delta < high
    # and it does so about as often as promised: 40 independent books, 95% intervals
    covered = 0
    for seed in range(1, 41):
        y, new, old, true_delta = _binormal(1_000, seed=seed)
        _, low, high = paired_bootstrap_auc_delta(y, new, old, n_boot=400, seed=seed)
        covered += low < true_delta < high
    assert covered >= 34  # nominal 38; a too-narrow or biased interval falls well below


def test_bootstrap_ci_narrows_with_more_rows() -> None:
    widths = {}
    for n in (2_000, 20_000):
        y, new, old, _ = _binormal(n, seed=3)
        _, low, high = paired_bootstrap_auc_delta(y, new, old, n_boot=500)
        widths[n] = high - low
    assert widths[20_000] < 0.6 * widths[2_000]  # ~1/√10 expected


def test_bootstrap_is_reproducible_and_depends_on_the_seed() -> None:
    y, new, old, _ = _binormal(1_500, seed=8)
    a = paired_bootstrap_auc_delta(y, new, old, n_boot=300, seed=1)
    assert paired_bootstrap_auc_delta(y, new, old, n_boot=300, seed=1) == a
    b = paired_bootstrap_auc_delta(y, new, old, n_boot=300, seed=2)
    assert a[0] == b[0] and a[1:] != b[1:]
