"""Why an account scores as it does, in words a CSM can repeat, and what to do about it.

Drivers come from LightGBM's own TreeSHAP contributions (`pred_contrib`, log-odds of renewal),
summed per health domain; each driver is worded from the feature's description and value, beside
the typical value of accounts that renewed. Actions are the tier's playbook, sharpened by the domain
that pulls the score down most. Batch scoring and the online service share this module.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.health_model import HealthModel

# Playbooks (../shared/product.md), by tier position: healthiest first. Configurable by tier name.
DEFAULT_PLAYBOOKS: tuple[tuple[str, ...], ...] = (
    (
        "Expansion: share a benchmarking report with the champion",
        "Present upgrades and their ROI in the business review, well ahead of renewal",
        "Demo new features to the champion and power users",
    ),
    (
        "Compare with healthy peers to find what is missing",
        "Send targeted suggestions with support articles and videos",
        "Use the business review to show untapped value",
        "Work with the champion on adoption",
    ),
    (
        "Dig into where and since when the score is dipping",
        "Call the champion from the buying process",
        "Offer training aimed at the reasons for dissatisfaction",
    ),
)
# The main negative domain sharpens the playbook.
DEFAULT_DOMAIN_ACTIONS: dict[str, str] = {
    "usage": "Find which teams stopped using the product and since when; re-onboard them",
    "adoption": "Offer a training on the features they do not use yet (enablement gap)",
    "engagement": "Re-engage: book a business review and reconnect with the executive sponsor",
    "support": "Escalation review of open and severity-1 tickets with the support lead",
    "satisfaction": "Follow up on the survey feedback in a call with the respondents",
    "financial": "Billing conversation: late or failed payments, discounts and price changes",
}


MAX_RISKS = 2  # domains that sharpen the actions
# Domains that explain the score but are not something a CSM can change.
CONTEXT_DOMAINS: tuple[str, ...] = ("contract",)


@dataclass(frozen=True)
class Playbook:
    """Actions per tier name, plus one sharpening action per health domain."""

    tiers: dict[str, tuple[str, ...]]
    domains: dict[str, str]

    @classmethod
    def default(cls, tier_names: list[str]) -> Playbook:
        """The product's defaults mapped onto the model's tiers by position."""
        n = len(tier_names)
        picks = [round(i * (len(DEFAULT_PLAYBOOKS) - 1) / max(n - 1, 1)) for i in range(n)]
        return cls(
            {name: DEFAULT_PLAYBOOKS[p] for name, p in zip(tier_names, picks, strict=True)},
            dict(DEFAULT_DOMAIN_ACTIONS),
        )

    def actions(self, tier: str, risk_domains: list[str] | None) -> list[str]:
        """The tier's playbook sharpened by the main risks: for an account at risk their actions
        come first, for a healthy one after the expansion plays."""
        plays = list(self.tiers.get(tier, ()))
        extra = [self.domains[d] for d in risk_domains or [] if d in self.domains]
        extra = [a for a in extra if a not in plays]
        healthiest = next(iter(self.tiers), None)
        return plays + extra if tier == healthiest else extra + plays

    def actions_each(
        self, tiers: Iterable[str], risk_domains: Iterable[list[str] | None]
    ) -> list[list[str]]:
        """`actions` for each (tier, risk domains) pair; each distinct pair is worked out once
        (a batch has only a few), every row gets its own list."""
        known: dict[tuple, list[str]] = {}
        out = []
        for tier, risks in zip(tiers, risk_domains, strict=True):
            key = (tier, tuple(risks or ()))
            if key not in known:
                known[key] = self.actions(tier, risks)
            out.append(list(known[key]))
        return out


def format_value(name: str, value: object) -> str:
    """A feature value as a CSM reads it (percent changes, shares, money, counts, days)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none recorded"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return number_format(name)(float(value))


@functools.cache
def number_format(name: str) -> Callable[[float], str]:
    """How a number of feature `name` is written: its name decides (see `format_value`)."""
    if "trend" in name or name == "arr_change_365d":  # relative changes (ratio - 1)
        return lambda v: f"{'up' if v >= 0 else 'down'} {abs(v):.0%}"
    if any(k in name for k in ("share", "rate", "utilisation")):
        return lambda v: f"{v:.0%}"
    if name == "arr" or name.startswith("arr_"):
        return lambda v: f"{'-' if v < 0 else ''}${abs(v):,.0f}"
    if name.endswith("_pct"):
        return lambda v: f"{v:.0f}%"
    if name.startswith("days_") or name.endswith("_days"):
        return lambda v: f"{v:,.0f} days"
    return _count_or_amount


def _count_or_amount(v: float) -> str:
    if v.is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def describe_driver(model: HealthModel, name: str, value: object) -> str:
    """'severity-1 tickets opened in the last 90 days: 3 (renewing accounts: 0)'."""
    _, _, prefix, suffix = _wording(model, name)
    return f"{prefix}{format_value(name, value)}{suffix}"


def domain_contributions(model: HealthModel, contrib: pd.DataFrame) -> pd.DataFrame:
    """Contributions (log-odds of renewal) summed per health domain."""
    domains = pd.Series({f: model.info[f].domain for f in model.features})
    return contrib[model.features].T.groupby(domains).sum().T


def explain(
    model: HealthModel,
    frame: pd.DataFrame,
    contrib: pd.DataFrame,
    top: int = 3,
    context_domains: tuple[str, ...] = CONTEXT_DOMAINS,
) -> pd.DataFrame:
    """Per row: domain contributions (`domain_<name>`), the top negative and positive drivers in
    words (each a dict: feature, domain, value, impact, text), and `risk_domains`: the (up to two)
    domains whose signals with a known direction pull the score down most, worst first
    (`main_risk_domain` is the first).

    Features of `context_domains` (contract terms, segment: what a CSM cannot act on) count in the
    domain breakdown but are neither drivers nor the main negative domain."""
    by_domain = domain_contributions(model, contrib)
    actionable = [f for f in model.features if model.info[f].domain not in context_domains]
    values = contrib[actionable].to_numpy()
    order = np.argsort(values, axis=1)  # most negative first
    with _gc_paused():  # millions of small dicts and lists
        negatives = _drivers(model, frame, actionable, values, order[:, :top], values < 0)
        positives = _drivers(model, frame, actionable, values, order[:, ::-1][:, :top], values > 0)
        risks = _risk_domains(model, contrib, actionable)
    out = by_domain.add_prefix("domain_")
    out["main_risk_domain"] = [r[0] if r else None for r in risks]
    out["risk_domains"] = risks
    out["drivers_negative"] = negatives
    out["drivers_positive"] = positives
    return out


def _risk_domains(
    model: HealthModel, contrib: pd.DataFrame, actionable: list[str]
) -> list[list[str]]:
    """The main risks sharpen the actions (../shared/product.md): per domain, the negative pull
    of the features whose healthy direction is known (more ARR is not an action); the worst two."""
    directed = [f for f in actionable if model.info[f].direction != 0]
    domain_of = pd.Series({f: model.info[f].domain for f in directed})
    pull = contrib[directed].clip(upper=0).T.groupby(domain_of).sum().T
    ranked = np.argsort(pull.to_numpy(), axis=1)[:, :MAX_RISKS]
    worst = np.take_along_axis(pull.to_numpy(), ranked, axis=1) < 0
    names = np.array([str(c) for c in pull.columns], dtype=object)
    return _per_row(names[ranked][worst].tolist(), worst.sum(axis=1))


def _drivers(
    model: HealthModel,
    frame: pd.DataFrame,
    names: list[str],
    values: np.ndarray,
    picked: np.ndarray,
    signed: np.ndarray,
) -> list[list[dict]]:
    """Per row, the driver dicts of the `picked` columns of `values` (in order) that are True in
    `signed` (the contributions of the right sign).

    Vectorised: the kept (row, feature) pairs are found with numpy, each feature's raw values are
    worded in one pass over its column, then the dicts are cut into per-row lists."""
    keep = np.take_along_axis(signed, picked, axis=1)
    rows, slots = np.nonzero(keep)  # row by row, in rank order within a row
    feature = picked[rows, slots]
    impacts = values[rows, feature].tolist()
    words = np.empty(len(rows), dtype=object)
    for j in np.unique(feature):
        at = np.flatnonzero(feature == j)
        words[at] = _worded_column(names[j], frame[names[j]].to_numpy()[rows[at]])
    wording = [_wording(model, n) for n in names]
    drivers = []
    for j, word, impact in zip(feature.tolist(), words.tolist(), impacts, strict=True):
        name, domain, prefix, suffix = wording[j]
        drivers.append(
            {
                "feature": name,
                "domain": domain,
                "value": word,
                "impact": round(impact, 4),
                "text": f"{prefix}{word}{suffix}",
            }
        )
    return _per_row(drivers, keep.sum(axis=1))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the drivers and risks are built: none of their dicts
    and lists can be in a cycle, yet every few hundred allocations trigger a collection (~20% of
    `explain`'s time at 100k rows). The previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _wording(model: HealthModel, name: str) -> tuple[str, str, str, str]:
    """Feature name, domain, and the text around its worded value in a driver's `text`."""
    info = model.info[name]
    suffix = ""
    if info.healthy_median is not None:
        suffix = f" (renewing accounts: {format_value(name, info.healthy_median)})"
    return str(name), info.domain, f"{info.description}: ", suffix


def _worded_column(name: str, raw: np.ndarray) -> list[str] | np.ndarray:
    """`format_value` of each value of one feature; numbers are worded once per distinct value."""
    if raw.dtype.kind not in "iuf":  # booleans, strings, objects: value by value
        return [format_value(name, None if _missing(v) else _plain(v)) for v in raw]
    bits = raw.astype("float64").view("int64")  # distinct bits: -0.0 is written apart from 0.0
    distinct, back = np.unique(bits, return_inverse=True)
    write = number_format(name)
    words = [
        "none recorded" if math.isnan(v) else write(v) for v in distinct.view("float64").tolist()
    ]
    return np.array(words, dtype=object)[back]


def _per_row(flat: list, counts: np.ndarray) -> list[list]:
    """`flat` cut into consecutive lists of `counts` items."""
    ends = np.cumsum(counts).tolist()
    return [flat[a:b] for a, b in zip([0, *ends][:-1], ends, strict=True)]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value
