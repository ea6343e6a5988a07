"""The health model: the one artifact that training writes and batch scoring and the service load.

A LightGBM booster (in LightGBM's own text format) that predicts the odds of renewal, a calibrator
that turns them into a probability one can read as "70% likely to renew", the tier policy, the
feature list of the FeatureService it was trained on, and the metadata that explanations are worded
from. It lives in `features/` (the base layer) so scoring and serving never import `training/`.

Saved as two files in a folder: `booster.txt` and `health_model.json` (no pickles).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
BOOSTER_FILE = "booster.txt"
MODEL_FILE = "health_model.json"


@dataclass(frozen=True)
class Calibrator:
    """Maps the booster's raw probability to a calibrated one.

    isotonic: piecewise-linear through (x, y); platt: sigmoid(a * logit(raw) + b); none: identity.
    """

    method: Literal["isotonic", "platt", "none"] = "none"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype="float64")
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        if self.method == "platt":
            z = np.log(np.clip(raw, 1e-9, 1 - 1e-9) / np.clip(1 - raw, 1e-9, 1))
            return 1.0 / (1.0 + np.exp(-(self.a * z + self.b)))
        return raw


@dataclass(frozen=True)
class Tier:
    """One traffic light: accounts whose renewal probability is at least `min_probability`
    (and below the next healthier tier's) fall in it."""

    name: str
    colour: str
    min_probability: float


@dataclass(frozen=True)
class TierPolicy:
    """Tiers ordered healthiest first. `kind` says how the cut points were chosen: fixed bands
    from configuration, or population quantiles resolved on the training population."""

    kind: Literal["fixed", "quantile"]
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        cuts = [t.min_probability for t in self.tiers]
        if not self.tiers or cuts != sorted(cuts, reverse=True):
            raise ValueError("tiers must be ordered healthiest first, cut points descending")
        if cuts[-1] > 0:
            raise ValueError(f"the last tier ({self.tiers[-1].name}) must start at probability 0")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @property
    def colours(self) -> dict[str, str]:
        return {t.name: t.colour for t in self.tiers}

    def assign(self, probability: np.ndarray) -> np.ndarray:
        """The tier name of each probability."""
        p = np.asarray(probability, dtype="float64")
        cuts = np.array([t.min_probability for t in self.tiers])
        index = (p[:, None] < cuts[None, :]).sum(axis=1)  # tiers whose floor p is below
        return np.array(self.names, dtype=object)[np.clip(index, 0, len(cuts) - 1)]

    @classmethod
    def from_quantiles(
        cls, names: list[str], colours: list[str], shares: list[float], population: np.ndarray
    ) -> TierPolicy:
        """Cut points so that `shares` of `population` (healthiest first) fall in each tier."""
        if len(names) != len(shares) or len(names) != len(colours):
            raise ValueError("names, colours and shares must have the same length")
        upper = np.cumsum(shares)[:-1]  # share of the population above each cut, healthiest first
        cuts = [float(np.quantile(population, 1 - s)) for s in upper]
        floors = [*cuts, 0.0]
        return cls(
            "quantile", tuple(Tier(n, c, f) for n, c, f in zip(names, colours, floors, strict=True))
        )


@dataclass(frozen=True)
class FeatureInfo:
    """What explanations need to word a feature: domain, meaning, direction, a healthy reference."""

    domain: str
    description: str
    direction: int
    healthy_median: float | None = None


def model_matrix(
    frame: pd.DataFrame, features: list[str], categorical: dict[str, list[str]]
) -> pd.DataFrame:
    """The model's input matrix from a frame holding (at least) `features`.

    Numbers become float64 (missing stays NaN), categories get the training levels (an unseen
    level becomes missing). A missing column or a non-numeric value is an error naming it.
    """
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ValueError(f"missing feature column(s): {', '.join(absent)}")
    cols = {}
    for name in features:
        col = frame[name]
        if name in categorical:
            values = col.astype("object").where(col.notna(), None)
            cols[name] = pd.Categorical(values, categories=categorical[name])
            continue
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            cols[name] = col.astype("float64")  # fast path; nullable NA becomes NaN
            continue
        try:
            cols[name] = pd.to_numeric(col.astype("object"), errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature {name!r}: not numeric ({exc})") from None
    return pd.DataFrame(cols, index=frame.index)


@dataclass
class HealthModel:
    """Renewal probability, 0-100 health score, tier and contributions for account features."""

    booster: object  # lightgbm.Booster
    features: list[str]
    categorical: dict[str, list[str]]
    calibrator: Calibrator
    tiers: TierPolicy
    info: dict[str, FeatureInfo]
    metadata: dict = field(default_factory=dict)

    # -- inputs ---------------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input matrix (see `model_matrix`)."""
        return model_matrix(frame, self.features, self.categorical)

    # -- predictions ------------------------------------------------------------------------------
    def raw_probability(
        self, frame: pd.DataFrame, matrix: pd.DataFrame | None = None
    ) -> np.ndarray:
        """The booster's uncalibrated P(renew). `matrix`: `self.matrix(frame)` if already built."""
        return self.booster.predict(self.matrix(frame) if matrix is None else matrix)

    def probability(self, frame: pd.DataFrame, matrix: pd.DataFrame | None = None) -> np.ndarray:
        """Calibrated P(renew)."""
        return np.clip(self.calibrator(self.raw_probability(frame, matrix)), 0.0, 1.0)

    @staticmethod
    def health_score(probability: np.ndarray) -> np.ndarray:
        """The 0-100 health score: the calibrated renewal probability in percent, rounded."""
        return np.rint(np.asarray(probability, dtype="float64") * 100).astype("int64")

    def predict(self, frame: pd.DataFrame, matrix: pd.DataFrame | None = None) -> pd.DataFrame:
        """renewal_probability, health_score and tier for each row of `frame` (same index)."""
        p = self.probability(frame, matrix)
        return pd.DataFrame(
            {
                "renewal_probability": p,
                "health_score": self.health_score(p),
                "tier": self.tiers.assign(p),
            },
            index=frame.index,
        )

    def contributions(
        self, frame: pd.DataFrame, matrix: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Each feature's contribution to the log-odds of renewal (LightGBM's TreeSHAP), plus
        the `bias` column; a row sums to the booster's raw log-odds."""
        X = self.matrix(frame) if matrix is None else matrix
        values = self.booster.predict(X, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features, "bias"], index=frame.index)

    # -- files ------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "features": self.features,
            "categorical": self.categorical,
            "calibrator": asdict(self.calibrator),
            "tiers": {"kind": self.tiers.kind, "tiers": [asdict(t) for t in self.tiers.tiers]},
            "info": {k: asdict(v) for k, v in self.info.items()},
            "metadata": self.metadata,
        }

    def save(self, folder: Path) -> Path:
        """Write `booster.txt` and `health_model.json` into `folder` (each atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / BOOSTER_FILE, self.booster.model_to_string())
        _atomic_write(folder / MODEL_FILE, json.dumps(_finite(self.to_json()), indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path) -> HealthModel:
        import lightgbm

        folder = Path(folder)
        spec = json.loads((folder / MODEL_FILE).read_text())
        if spec.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{folder / MODEL_FILE}: format_version {spec.get('format_version')!r}, "
                f"this healthscore reads {FORMAT_VERSION}"
            )
        cal = spec["calibrator"]
        return cls(
            booster=lightgbm.Booster(model_file=str(folder / BOOSTER_FILE)),
            features=list(spec["features"]),
            categorical={k: list(v) for k, v in spec["categorical"].items()},
            calibrator=Calibrator(
                cal["method"], tuple(cal["x"]), tuple(cal["y"]), cal["a"], cal["b"]
            ),
            tiers=TierPolicy(
                spec["tiers"]["kind"], tuple(Tier(**t) for t in spec["tiers"]["tiers"])
            ),
            info={k: FeatureInfo(**v) for k, v in spec["info"].items()},
            metadata=spec.get("metadata", {}),
        )


def _finite(obj):
    """JSON has no NaN: write None instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
