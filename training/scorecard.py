"""The classic weighted health scorecard, kept as the baseline the model must beat in the open.

As the articles build it by hand: each signal is scored 0-100 by where it stands in the book of
business (its percentile among training accounts, turned around where lower is healthier), each
domain's score is the mean of its signals, and the health score is a weighted sum of the domains
with weights a CS team sets in `healthscore.yaml`. Signals without a known direction are left out.
A logistic fit on the training period turns the 0-100 score into a probability, so log loss and
calibration can be compared too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NEUTRAL = 50.0  # a missing signal counts as average


@dataclass
class Scorecard:
    weights: dict[str, float]  # domain -> weight
    grids: dict[str, np.ndarray]  # feature -> training percentiles 0..100
    directions: dict[str, int]
    domains: dict[str, str]
    slope: float = 1.0
    intercept: float = 0.0

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        renewed: np.ndarray,
        directions: dict[str, int],
        domains: dict[str, str],
        weights: dict[str, float],
    ) -> Scorecard:
        """Percentile grids from the training period; weights for domains without signals drop."""
        from sklearn.linear_model import LogisticRegression

        signals = {f: d for f, d in directions.items() if d != 0 and f in train.columns}
        grids = {
            f: np.nanpercentile(pd.to_numeric(train[f], errors="coerce").astype(float), range(101))
            for f in signals
            if train[f].notna().any()
        }
        used = {domains[f] for f in grids}
        card = cls(
            weights={d: w for d, w in weights.items() if d in used and w > 0},
            grids=grids,
            directions={f: signals[f] for f in grids},
            domains={f: domains[f] for f in grids},
        )
        if not card.weights:
            raise ValueError("scorecard: no domain with a positive weight has any signal")
        score = card.score(train) / 100
        fit = LogisticRegression(C=1e6, max_iter=1000).fit(score[:, None], np.asarray(renewed))
        card.slope, card.intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        return card

    def signal_scores(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each signal scored 0-100 (100 = healthiest in the training population)."""
        out = {}
        for f, grid in self.grids.items():
            x = pd.to_numeric(frame[f], errors="coerce").astype(float).to_numpy()
            lo = np.searchsorted(grid, x, side="left")
            hi = np.searchsorted(grid, x, side="right")
            pct = (lo + hi) / 2 / len(grid) * 100
            pct = pct if self.directions[f] > 0 else 100 - pct
            out[f] = np.where(np.isnan(x), NEUTRAL, pct)
        return pd.DataFrame(out, index=frame.index)

    def domain_scores(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each weighted domain scored 0-100: the mean of its signals."""
        signals = self.signal_scores(frame)
        return pd.DataFrame(
            {
                d: signals[[f for f in self.grids if self.domains[f] == d]].mean(axis=1)
                for d in self.weights
            },
            index=frame.index,
        )

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """The weighted health score, 0-100."""
        domains = self.domain_scores(frame)
        w = np.array([self.weights[d] for d in domains.columns])
        return domains.to_numpy() @ w / w.sum()

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """P(renew) from the score (a logistic fit on the training period)."""
        z = self.slope * self.score(frame) / 100 + self.intercept
        return 1 / (1 + np.exp(-z))
