"""Fit the health model and its baselines on a time split.

LightGBM (native categorical handling, monotone constraints where the catalog knows a feature's
direction, early stopping on the validation period) predicts P(renew); a calibrator chosen on the
validation period by cross-validated log loss (isotonic or Platt) makes that probability honest.
Beside it, on the same periods: the weighted scorecard and a logistic regression on the same
features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.health_model import (
    Calibrator,
    FeatureInfo,
    HealthModel,
    Tier,
    TierPolicy,
    model_matrix,
)
from training.data import LABEL, Split
from training.scorecard import Scorecard

CLIP = 1e-4  # probabilities are kept inside [CLIP, 1 - CLIP] when scored by log loss
SAMPLE_CAP = 50_000  # baselines and the calibration CV fit on at most this many rows


@dataclass(frozen=True)
class ModelParams:
    """LightGBM and calibration settings (the `training` section of healthscore.yaml)."""

    # Small, slowly learned trees: the renewal signal is close to additive in noisy proxies of one
    # latent health, so deeper/faster trees overfit the ~1,300 churners of 10k accounts
    # (test AUC 0.826 -> 0.829 on the 10k book; issue 4 notes in the session report).
    learning_rate: float = 0.02
    num_leaves: int = 7
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_rounds: int = 3000
    early_stopping_rounds: int = 300
    monotone: bool = True
    calibration: str = "auto"  # auto | isotonic | platt | none
    # `auto` considers isotonic only with at least this many validation rows (0: always).
    isotonic_min_rows: int = 0
    seed: int = 42
    threads: int = 0  # 0: LightGBM's default (all cores)

    def lightgbm(self, directions: list[int]) -> dict:
        params = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.threads,
            "verbosity": -1,
        }
        if self.monotone and any(directions):
            params["monotone_constraints"] = directions
            params["monotone_constraints_method"] = "intermediate"
        return params


# Below FULL_SIZE_ROWS training rows `auto_params` adapts the defaults; at or above it (the 10k
# contract book trains on ~21k) they are used as measured there.
FULL_SIZE_ROWS = 10_000
SMALL_ROWS = 2_500  # below this, stumps-like trees
SMALL_NUM_LEAVES = 3
MIN_LEAF_FLOOR = 20
ISOTONIC_MIN_ROWS = 2_000


def auto_params(n_train: int, params: ModelParams) -> ModelParams:
    """Size-adaptive parameters for a small training set (a flat table of a few thousand rows).

    Only fields still at their `ModelParams` default change, so a value set in healthscore.yaml
    wins (and applying this twice changes nothing more). At `FULL_SIZE_ROWS` training rows or
    more, `params` is returned unchanged. Below it:

    - `isotonic_min_rows` = 2,000: isotonic calibration on a validation part of ~200-1,000 rows
      fits its noise (flat-table bench, population ECE 0.015 -> 0.042 at 225 validation rows,
      0.009 -> 0.018 at 1,050); Platt or none is chosen instead;
    - `min_data_in_leaf` at most n_train / 10 (never below 20): with 100 a table of under ~200
      training rows could not split at all;
    - below `SMALL_ROWS` rows, `num_leaves` 3: ~1,000 rows support few interactions (population
      AUC at 1,050 training rows 0.8139 -> 0.8181 over 3 seeds, tuned logistic regression 0.8156;
      no change at 4,900 rows). A smaller `min_data_in_leaf` did not help (0.8126 at 21).
    """
    if n_train >= FULL_SIZE_ROWS:
        return params
    default = {f.name: f.default for f in fields(ModelParams)}
    wanted: dict[str, object] = {
        "isotonic_min_rows": ISOTONIC_MIN_ROWS,
        "min_data_in_leaf": min(default["min_data_in_leaf"], max(MIN_LEAF_FLOOR, n_train // 10)),
    }
    if n_train < SMALL_ROWS:
        wanted["num_leaves"] = SMALL_NUM_LEAVES
    changes = {k: v for k, v in wanted.items() if getattr(params, k) == default[k]}
    return replace(params, **changes) if changes else params


@dataclass(frozen=True)
class TierSpec:
    """A tier policy as configured: fixed probability floors or population shares."""

    policy: str  # fixed | quantile
    names: list[str]
    colours: list[str]
    values: list[float]  # fixed: min probability per tier; quantile: share per tier

    def resolve(self, population: np.ndarray) -> TierPolicy:
        if self.policy == "quantile":
            return TierPolicy.from_quantiles(self.names, self.colours, self.values, population)
        tiers = zip(self.names, self.colours, self.values, strict=True)
        return TierPolicy("fixed", tuple(Tier(n, c, v) for n, c, v in tiers))


@dataclass
class TrainResult:
    model: HealthModel
    scorecard: Scorecard
    test_predictions: dict[str, np.ndarray]  # model name -> P(renew) on the test period
    best_iteration: int
    calibration_cv: dict[str, float]  # method -> cross-validated log loss on validation
    seconds: dict[str, float] = field(default_factory=dict)


def fit_booster(train_X, y_train, valid_X, y_valid, params: dict, max_rounds: int, patience: int):
    """LightGBM with early stopping on the validation period."""
    import lightgbm as lgb

    categorical = [c for c in train_X.columns if isinstance(train_X[c].dtype, pd.CategoricalDtype)]
    dtrain = lgb.Dataset(train_X, y_train, categorical_feature=categorical, free_raw_data=False)
    dvalid = lgb.Dataset(valid_X, y_valid, reference=dtrain)
    return lgb.train(
        params,
        dtrain,
        num_boost_round=max_rounds,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, CLIP, 1 - CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    """Fit one calibration method on (raw probability, outcome)."""
    if method == "none":
        return Calibrator("none")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        # A "100% certain" score is never honest with a few hundred rows per step.
        ys = np.clip(iso.y_thresholds_, 0.005, 0.995)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)), tuple(map(float, ys)))
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        z = np.log(np.clip(raw, 1e-9, 1 - 1e-9) / np.clip(1 - raw, 1e-9, 1))
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"training.calibration: unknown method {method!r}")


def sample_rows(n: int, cap: int | None, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded random sample of `cap` of `n` rows; None when n <= cap."""
    if cap is None or n <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def choose_calibrator(
    raw: np.ndarray,
    y: np.ndarray,
    method: str,
    seed: int,
    folds: int = 5,
    sample_cap: int | None = SAMPLE_CAP,
    isotonic_min_rows: int = 0,
) -> tuple[Calibrator, dict[str, float]]:
    """`auto` picks isotonic, Platt or none by cross-validated log loss on the validation period
    (on a seeded sample of `sample_cap` rows when there are more); the pick is fitted on all.
    With fewer than `isotonic_min_rows` validation rows isotonic is not a candidate."""
    candidates = ["isotonic", "platt", "none"] if method == "auto" else [method]
    if method == "auto" and len(raw) < isotonic_min_rows:
        candidates.remove("isotonic")
    scores: dict[str, float] = {}
    if len(candidates) > 1:
        from sklearn.model_selection import StratifiedKFold

        rows = sample_rows(len(raw), sample_cap, seed)
        r, t = (raw, y) if rows is None else (raw[rows], y[rows])
        kfold = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for m in candidates:
            losses = [
                _log_loss(t[te], fit_calibrator(r[tr], t[tr], m)(r[te]))
                for tr, te in kfold.split(r, t)
            ]
            scores[m] = float(np.mean(losses))
        method = min(scores, key=scores.__getitem__)
    return fit_calibrator(raw, y, method), scores


def logistic_preprocessing(X: pd.DataFrame):  # -> (sklearn ColumnTransformer, categoricals)
    """How a logistic regression sees the features: numbers imputed (with missing flags) and
    scaled, categories one-hot; also the categorical columns `for_sklearn` needs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in X.columns if c not in cats]
    prep = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                nums,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
        ]
    )
    return prep, cats


def fit_logistic(train_X: pd.DataFrame, y: np.ndarray, seed: int):
    """Logistic regression on the same features (`logistic_preprocessing`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    prep, cats = logistic_preprocessing(train_X)
    model = make_pipeline(prep, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    return model.fit(for_sklearn(train_X, cats), y)


def for_sklearn(X: pd.DataFrame, cats: list[str]) -> pd.DataFrame:
    """Categoricals as plain objects with missing as its own value (scikit-learn's encoders)."""
    return X.astype({c: "object" for c in cats}).fillna({c: "missing" for c in cats})


def train(
    split: Split,
    features: list[str],
    info: dict[str, FeatureInfo],
    categorical_features: list[str],
    params: ModelParams,
    tiers: TierSpec,
    scorecard_weights: dict[str, float],
    metadata: dict | None = None,
    sample_cap: int | None = SAMPLE_CAP,
) -> TrainResult:
    """Fit the health model and both baselines; predict the test period with all three.

    LightGBM always learns from every training row. Beyond `sample_cap` rows (None: never), the
    scorecard and the logistic regression are fitted on a random sample of `sample_cap` training
    rows and the calibration method is chosen by cross-validation on a sample of `sample_cap`
    validation rows (the chosen calibrator is then fitted on all of them); samples are seeded
    from `params.seed`. Below the cap nothing is sampled.
    """
    seconds: dict[str, float] = {}
    categorical = {
        c: sorted(split.train[c].dropna().astype(str).unique()) for c in categorical_features
    }
    X = {
        name: model_matrix(part, features, categorical)
        for name, part in (
            ("train", split.train),
            ("validation", split.validation),
            ("test", split.test),
        )
    }
    y = {
        name: part[LABEL].to_numpy(dtype=float)
        for name, part in (
            ("train", split.train),
            ("validation", split.validation),
            ("test", split.test),
        )
    }

    t = time.perf_counter()
    directions = [info[f].direction if f not in categorical else 0 for f in features]
    booster = fit_booster(
        X["train"],
        y["train"],
        X["validation"],
        y["validation"],
        params.lightgbm(directions),
        params.max_rounds,
        params.early_stopping_rounds,
    )
    seconds["lightgbm"] = time.perf_counter() - t

    t = time.perf_counter()
    calibrator, cv = choose_calibrator(
        booster.predict(X["validation"]),
        y["validation"],
        params.calibration,
        params.seed,
        sample_cap=sample_cap,
        isotonic_min_rows=params.isotonic_min_rows,
    )
    seconds["calibration"] = time.perf_counter() - t

    healthy = X["train"][y["train"] == 1]  # the model matrix: numbers already float64
    info = {
        f: FeatureInfo(
            i.domain,
            i.description,
            i.direction,
            None if f in categorical else _median(healthy[f]),
        )
        for f, i in info.items()
        if f in features
    }
    model = HealthModel(
        booster,
        features,
        categorical,
        calibrator,
        TierPolicy("fixed", (Tier("all", "grey", 0.0),)),
        info,
    )

    # model.probability(frame) is this on the frame's matrix; the matrices are already built.
    def probability(part: str) -> np.ndarray:
        return np.clip(calibrator(booster.predict(X[part])), 0.0, 1.0)

    test_probability = probability("test")
    population = (  # only quantile tiers look at the population
        np.concatenate([probability("train"), test_probability])
        if tiers.policy == "quantile"
        else test_probability
    )
    model.tiers = tiers.resolve(population)
    model.metadata = {
        **(metadata or {}),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "best_iteration": booster.best_iteration,
        "calibration": calibrator.method,
    }

    rows = sample_rows(len(split.train), sample_cap, params.seed)
    t = time.perf_counter()
    card = Scorecard.fit(
        split.train if rows is None else split.train.iloc[rows],
        y["train"] if rows is None else y["train"][rows],
        {f: i.direction for f, i in info.items()},
        {f: i.domain for f, i in info.items()},
        scorecard_weights,
    )
    seconds["scorecard"] = time.perf_counter() - t
    t = time.perf_counter()
    logistic = fit_logistic(
        X["train"] if rows is None else X["train"].iloc[rows],
        y["train"] if rows is None else y["train"][rows],
        params.seed,
    )
    seconds["logistic_regression"] = time.perf_counter() - t

    cats = list(categorical)
    predictions = {
        "lightgbm": test_probability,
        "scorecard": card.probability(split.test),
        "logistic_regression": logistic.predict_proba(for_sklearn(X["test"], cats))[:, 1],
    }
    return TrainResult(model, card, predictions, booster.best_iteration, cv, seconds)


def _median(col: pd.Series) -> float | None:
    if pd.api.types.is_float_dtype(col):  # a model-matrix column
        values = col
    else:
        values = pd.to_numeric(col.astype("object"), errors="coerce").astype(float)
    return None if values.isna().all() else float(values.median())
