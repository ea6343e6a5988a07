"""training.plots: every figure renders to a real PNG with realistic inputs and leaks nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from training.plots import (
    calibration_figure,
    gains_figure,
    importance_figure,
    roc_figure,
    save_png,
    score_distribution_figure,
    shap_summary_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIER_COLOURS = {"at_risk": "#d62728", "watch": "#ff7f0e", "healthy": "#2ca02c"}


@pytest.fixture(scope="module")
def book() -> dict:
    """6,000 renewal decisions: labels, 3 models' P(renew), features with NaNs and categories."""
    rng = np.random.default_rng(0)
    n = 6_000
    health = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-(1.4 + 1.3 * health)))
    X = pd.DataFrame(
        {
            "dau_trend_8w": health + rng.normal(scale=0.7, size=n),
            "open_tickets": pd.array(rng.poisson(np.exp(-0.5 * health)), dtype="Int64"),
            "nps_last": np.where(rng.random(n) < 0.4, np.nan, rng.integers(0, 11, n)),
            "segment": pd.Categorical(rng.choice(["smb", "mid_market", "enterprise"], n)),
            "plan": rng.choice(["basic", "pro", "enterprise"], n).astype(object),
            "has_champion": rng.random(n) < 0.7,
        }
    )
    X.loc[rng.random(n) < 0.1, "open_tickets"] = pd.NA
    for j in range(14):
        X[f"usage_{j:02d}"] = rng.normal(size=n) + (0.2 * health if j < 5 else 0)
    names = list(X.columns)
    contrib = rng.normal(scale=np.linspace(0.8, 0.01, len(names)), size=(n, len(names)))
    contrib = np.column_stack([contrib, np.full(n, 1.3)])  # LightGBM's expected-value column
    sig = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    p_model = sig(1.4 + 1.2 * health + rng.normal(scale=0.5, size=n))
    p_scorecard = np.round(sig(1.2 + 0.8 * health + rng.normal(scale=1.0, size=n)), 2)
    p_prior = np.full(n, y.mean())
    scores = np.clip(100 * p_model + rng.normal(scale=3, size=n), 0, 100)
    scores[:25] = np.nan
    tiers = np.select([scores < 60, scores < 80], ["at_risk", "watch"], "healthy")
    return {
        "y": y,
        "p": {"lightgbm": p_model, "scorecard": p_scorecard, "base rate": p_prior},
        "X": X,
        "names": names,
        "contrib": contrib,
        "scores": scores,
        "tiers": tiers,
    }


def _figures(book: dict) -> dict[str, Figure]:
    y, p = book["y"], book["p"]
    importance = np.abs(book["contrib"][:, :-1]).mean(axis=0)
    importance[3] = np.nan
    return {
        "roc": roc_figure(y, p),
        "calibration": calibration_figure(y, p),
        "gains": gains_figure(y, p),
        "importance": importance_figure(book["names"], importance, top=12),
        "shap": shap_summary_figure(book["contrib"], book["X"], book["names"], top=15),
        "scores": score_distribution_figure(book["scores"], book["tiers"], TIER_COLOURS),
    }


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path.name
    assert len(data) > 5_000, f"{path.name}: only {len(data)} bytes"
    image = matplotlib.image.imread(path)  # decodes: a valid image
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.02, f"{path.name} is blank"


def test_every_figure_writes_a_real_png_and_none_stays_open(book: dict, tmp_path: Path) -> None:
    plt.close("all")
    figures = _figures(book)
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        target = save_png(fig, tmp_path / "plots" / f"{name}.png")
        assert target == tmp_path / "plots" / f"{name}.png"
        _assert_png(target)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        f"{n}.png" for n in figures
    ), "temporary files left behind"
    assert plt.get_fignums() == []


def test_figures_say_what_they_show(book: dict) -> None:
    figures = _figures(book)

    def text(fig: Figure) -> str:
        parts = []
        for ax in fig.axes:
            parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
            legend = ax.get_legend()
            if legend is not None:
                parts += [t.get_text() for t in legend.get_texts()]
            parts += [t.get_text() for t in ax.get_yticklabels()]
        return "\n".join(parts)

    roc = text(figures["roc"])
    assert "churn" in roc and "lightgbm (AUC 0." in roc and "scorecard (AUC" in roc
    assert "base rate (AUC 0.500)" in roc  # a constant prediction ranks at random
    assert "ECE" in text(figures["calibration"]) and "P(renew)" in text(figures["calibration"])
    gains = text(figures["gains"])
    assert "top-decile lift" in gains and "share of accounts contacted" in gains
    shap = text(figures["shap"])
    assert "low → high" in shap and "5,000 of 6,000 accounts drawn" in shap
    assert "segment" in shap or "plan" in shap  # categorical rows are drawn (grey)
    importance = figures["importance"].axes[0]
    labels = [t.get_text() for t in importance.get_yticklabels()]
    assert len(labels) == 12 and labels[-1] == "dau_trend_8w"  # the largest at the top
    assert "segment" not in labels  # its importance was NaN
    widths = [bar.get_width() for bar in importance.patches]
    assert widths == sorted(widths)
    assert "at_risk (n=" in text(figures["scores"]) and "25 without a score" in text(
        figures["scores"]
    )


def test_shap_rows_are_ranked_by_mean_absolute_contribution(book: dict) -> None:
    contrib = book["contrib"][:, :-1].copy()
    contrib[:, 7] *= 20  # make a mid-table feature the most important
    fig = shap_summary_figure(contrib, book["X"], book["names"], top=5)
    labels = [t.get_text().split()[0] for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == book["names"][7] and len(labels) == 5
    points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert points == 5 * 5_000  # subsampled to at most 5,000 rows per feature


def test_shap_colours_grey_for_missing_and_non_numeric(book: dict) -> None:
    X = book["X"]
    names = ["nps_last", "segment"]
    contrib = np.column_stack([np.ones(len(X)), np.full(len(X), 0.5)])
    fig = shap_summary_figure(contrib, X[names], names, max_points=len(X))
    grey_counts = [len(c.get_offsets()) for c in fig.axes[0].collections[::2]]
    # the bottom row is the less important "segment": all grey; then nps_last: its NaNs
    assert grey_counts == [len(X), int(X["nps_last"].isna().sum())]


def test_figures_can_be_built_from_threads(book: dict, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            fig = gains_figure(book["y"], book["p"])
            save_png(fig, tmp_path / f"gains_{i}.png")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(4):
        _assert_png(tmp_path / f"gains_{i}.png")
    assert plt.get_fignums() == []


def test_one_class_still_draws(tmp_path: Path) -> None:
    y = np.ones(300, dtype=bool)
    p = {"lightgbm": np.linspace(0.5, 0.99, 300)}
    for name, fig in {
        "roc": roc_figure(y, p),
        "calibration": calibration_figure(y, p),
        "gains": gains_figure(y, p),
    }.items():
        path = save_png(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_bad_inputs_are_rejected(book: dict) -> None:
    y = book["y"]
    with pytest.raises(ValueError, match="NaN"):
        roc_figure(y, {"broken": np.full(y.size, np.nan)})
    with pytest.raises(ValueError, match="shape"):
        gains_figure(y, {"short": np.ones(3)})
    with pytest.raises(ValueError, match="without a colour"):
        score_distribution_figure([50.0, 90.0], ["at_risk", "champion"], TIER_COLOURS)
    with pytest.raises(ValueError, match="missing from X"):
        shap_summary_figure(np.zeros((2, 1)), pd.DataFrame({"a": [1, 2]}), ["b"])


def test_save_png_replaces_atomically_and_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "roc.png"
    target.write_bytes(b"old")

    class Exploding(Figure):
        def savefig(self, fname, *args, **kwargs):
            Path(fname).write_bytes(PNG_SIGNATURE)  # half an image, then the disk fills up
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_png(Exploding(), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]
