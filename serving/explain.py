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
import re
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
    "support": "Escalation review with the support lead: slow, open, escalated and severity-1 "
    "tickets",
    "satisfaction": "Follow up on low survey scores with the respondents; ask the contacts who "
    "never answer for feedback",
    "financial": "Billing conversation: late, failed or overdue payments, price changes, "
    "downgrades, and ARR growing slower than at renewing accounts",
}


MAX_RISKS = 2  # domains that sharpen the actions
# A domain sharpens the actions only when its signals pull the log-odds of renewal down by more
# than this. 0 by default: for a healthy account the weakest area, however slight, is what the
# extra action is about (Acme Corp's training offer comes from a 0.016 pull); 0.05 (about one
# point of score around 50) keeps only material risks.
MIN_RISK_PULL = 0.0
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


# A missing value worded after what the feature measures (first match on the description).
MISSING_WORDS: tuple[tuple[str, str], ...] = (
    (r"^days since ", "none yet"),
    (r"^change in | minus ", "nothing earlier to compare with"),
    (r"^latest ", "no answer yet"),
    (r"^(mean|median|average) ", "nothing in the period"),
    (r"^share of | per |slope", "nothing to measure yet"),
)
MISSING = "none recorded"
# Features whose missing value is itself a reason a CSM can repeat (never answered, never held).
ABSENCE_IS_A_SIGNAL = r"^(days since |latest (?!.* minus ))"


def format_value(name: str, value: object, description: str | None = None) -> str:
    """A feature value as a CSM reads it (percent changes, shares, money, counts, days).

    The unit comes from the feature's description (the catalog's, or `description`), see
    `value_unit`; a missing value is worded after what the feature measures."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return missing_words(name, description)
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return number_format(name, description)(float(value))


def missing_words(name: str, description: str | None = None) -> str:
    """How a missing value of feature `name` reads: 'no answer yet', 'nothing in the period'."""
    text = (description if description is not None else _catalog(name)[0]).lower()
    return next((words for key, words in MISSING_WORDS if re.search(key, text)), MISSING)


def value_unit(name: str, description: str | None = None, type_: str | None = None) -> str:
    """The unit a feature's values are written in, from its description and type (the catalog's
    when not given), then from explicit name patterns; first match wins:

    bool (type bool, `has_…`), change (relative, 'change in …': up/down %), difference ('… minus
    …': signed), slope ('slope per day'), share (a fraction: 'share of …', '… per licensed seat',
    `_share`/`_rate_`/`utilisation`), percent (0–100: '…, percent', `_pct`), money ('USD', `arr`),
    days ('days …', '… days late'), hours ('hours'), average ('average/mean/median …', '… per …',
    a 1-5 or 0-10 scale of a float), count (everything else)."""
    desc_, catalog_type = _catalog(name)
    d = (description if description is not None else desc_).lower()
    t = type_ or catalog_type
    if t == "bool" or name.startswith("has_"):
        return "bool"
    if d.startswith("change in ") or "_trend_" in name or name == "arr_change_365d":
        return "change"
    if " minus " in d:
        return "difference"
    if "slope" in d:
        return "slope"
    if d.startswith("share of ") or "per licensed seat" in d:
        return "share"
    if any(k in name for k in ("_share", "_rate_", "utilisation")) or name.endswith("_rate"):
        return "share"
    if d.endswith("percent") or name.endswith("_pct"):
        return "percent"
    if re.search(r"\busd\b", d) or name == "arr" or name.startswith("arr_"):
        return "money"
    if d.startswith("days ") or "days late" in d or name.startswith("days_"):
        return "days"
    if name.endswith("_days"):
        return "days"
    if re.search(r"\bhours\b", d):
        return "hours"
    averaged = d.startswith(("average ", "mean ", "median ")) or " per " in d
    if averaged or (t == "float" and ("(1-5)" in d or "(0-10)" in d)):
        return "average"
    return "count"


@functools.cache
def number_format(name: str, description: str | None = None) -> Callable[[float], str]:
    """How a number of feature `name` is written (see `value_unit`). One format per feature, so a
    value and its reference ('renewing accounts: …') read alike."""
    unit = value_unit(name, description)
    averaged = (description or _catalog(name)[0]).lower().startswith(("mean ", "median "))
    return _FORMATS[unit](averaged)


def _change(v: float) -> str:  # a relative change (ratio - 1)
    return f"{'up' if v >= 0 else 'down'} {abs(v):.0%}"


def _slope(v: float) -> str:  # units per day
    if round(abs(v), 2) == 0:
        return "flat"
    return f"{'up' if v > 0 else 'down'} {abs(v):,.2f} a day"


def _days(averaged: bool) -> Callable[[float], str]:
    def write(v: float) -> str:
        n = f"{v:,.1f}" if averaged and not v.is_integer() else f"{v:,.0f}"
        return f"{n} {'day' if n == '1' else 'days'}"

    return write


def _hours(v: float) -> str:
    n = f"{v:,.1f}" if abs(v) < 10 and not v.is_integer() else f"{v:,.0f}"
    return f"{n} {'hour' if n == '1' else 'hours'}"


def _average(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def _count(v: float) -> str:
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.1f}"


def _percent(v: float) -> str:  # 0-100
    n = f"{v:.1f}".removesuffix(".0")
    return f"{n}%"


_FORMATS: dict[str, Callable[[bool], Callable[[float], str]]] = {
    "bool": lambda _: lambda v: "yes" if v >= 0.5 else "no",
    "change": lambda _: _change,
    "difference": lambda _: lambda v: f"{v:+,.0f}" if v else "0",
    "slope": lambda _: _slope,
    "share": lambda _: lambda v: f"{v:.0%}",
    "percent": lambda _: _percent,
    "money": lambda _: lambda v: f"{'-' if v < 0 else ''}${abs(v):,.0f}",
    "days": _days,
    "hours": lambda _: _hours,
    "average": lambda _: _average,
    "count": lambda _: _count,
}


@functools.cache
def _catalog(name: str) -> tuple[str, str | None]:
    """The catalog's description and type of `name` ('', None for a feature it does not know)."""
    from features.catalog import feature_by_name

    f = feature_by_name().get(name)
    return (f.description, f.type) if f else ("", None)


def describe_driver(model: HealthModel, name: str, value: object) -> str:
    """'severity-1 tickets opened in the last 90 days: 3 (renewing accounts: 0)'."""
    _, _, prefix, suffix = _wording(model, name)
    return f"{prefix}{format_value(name, value, model.info[name].description)}{suffix}"


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
    min_risk_pull: float = MIN_RISK_PULL,
) -> pd.DataFrame:
    """Per row: domain contributions (`domain_<name>`), the top negative and positive drivers in
    words (each a dict: feature, domain, value, impact, text), and `risk_domains`: the (up to two)
    domains whose signals with a known direction pull the score down most, worst first
    (`main_risk_domain` is the first).

    Every feature counts in the domain breakdown. A driver is a signal a CSM can repeat: a feature
    with a known healthy direction, outside `context_domains` (contract terms, segment: nothing
    to act on), whose value reads the way it pulls beside the reference shown ('renewing
    accounts: …'): a value better than the reference is never listed as pulling the score down,
    nor a worse one as pulling it up (SHAP interactions can do both; the next signal is listed
    instead). Features with no known direction (ARR, discount, emails sent, days since the last
    NPS) are never drivers: 'ARR $250,000' or '18 emails sent' is no reason a CSM can act on.

    The risk domains come from the same signals with a value (a missing value has no direction:
    'no invoice paid in 180 days' is no billing problem), counting a domain only when it pulls
    the log-odds down by more than `min_risk_pull`."""
    by_domain = domain_contributions(model, contrib)
    # A category reads as it is ('contract: Month-to-month'): it needs no direction.
    readable = [
        f
        for f in model.features
        if model.info[f].domain not in context_domains
        and (model.info[f].direction != 0 or f in model.categorical)
    ]
    values = contrib[readable].to_numpy(dtype="float64")
    raw = _numeric(frame, readable, set(model.categorical))
    shown = np.where(_reads_as_it_pulls(model, readable, raw, values), values, 0.0)
    order = np.argsort(shown, axis=1)  # most negative first
    with _gc_paused():  # millions of small dicts and lists
        negatives = _drivers(model, frame, readable, shown, order[:, :top], shown < 0)
        positives = _drivers(model, frame, readable, shown, order[:, ::-1][:, :top], shown > 0)
        risks = _risk_domains(model, readable, np.where(np.isnan(raw), 0.0, shown), min_risk_pull)
    out = by_domain.add_prefix("domain_")
    out["main_risk_domain"] = [r[0] if r else None for r in risks]
    out["risk_domains"] = risks
    out["drivers_negative"] = negatives
    out["drivers_positive"] = positives
    return out


def _numeric(
    frame: pd.DataFrame, names: list[str], categories: set[str] = frozenset()
) -> np.ndarray:
    """The raw values of `names` as floats (booleans 0/1, missing NaN; a category 0 when it has
    a value), one column each."""
    cols = [
        np.where(frame[n].notna().to_numpy(), 0.0, np.nan)
        if n in categories
        else pd.to_numeric(frame[n], errors="coerce").to_numpy(dtype="float64")
        for n in names
    ]
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def _reads_as_it_pulls(
    model: HealthModel, names: list[str], raw: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """True where a contribution may be shown: the value sits on the side of the reference
    ('renewing accounts: …') that matches the contribution's sign (equal to the reference reads
    either way), or there is no reference, or the value is missing and its absence is a signal a
    CSM can repeat ('latest NPS answer: no answer yet', 'days since the last business review:
    none yet'; see `ABSENCE_IS_A_SIGNAL`). The mean of nothing ('mean days late of invoices paid
    in the last 180 days' without a paid invoice) is not shown."""
    ref = np.array(
        [
            np.nan if model.info[n].healthy_median is None else model.info[n].healthy_median
            for n in names
        ],
        dtype="float64",
    )
    direction = np.array([model.info[n].direction for n in names], dtype="float64")
    with np.errstate(invalid="ignore"):
        better = (raw - ref) * direction  # > 0: healthier than the reference
        agrees = ~(better * values < 0)  # NaN compares False
    absence = np.array(
        [
            re.search(ABSENCE_IS_A_SIGNAL, model.info[n].description.lower()) is not None
            for n in names
        ]
    )
    return agrees & (~np.isnan(raw) | absence)


def _risk_domains(
    model: HealthModel, names: list[str], values: np.ndarray, min_pull: float
) -> list[list[str]]:
    """The main risks sharpen the actions (../shared/product.md): per domain, the negative pull
    of the signals a CSM can read (`values`, zero where not), the worst two beyond `min_pull`."""
    domains = sorted({model.info[n].domain for n in names})
    of = np.array([domains.index(model.info[n].domain) for n in names], dtype="int64")
    pull = np.zeros((values.shape[0], len(domains)))
    for k in range(len(domains)):
        pull[:, k] = np.minimum(values[:, of == k], 0).sum(axis=1)
    ranked = np.argsort(pull, axis=1, kind="stable")[:, :MAX_RISKS]
    worst = np.take_along_axis(pull, ranked, axis=1) < -min_pull
    names_ = np.array(domains, dtype=object)
    return _per_row(names_[ranked][worst].tolist(), worst.sum(axis=1))


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
        raw = frame[names[j]].to_numpy()[rows[at]]
        words[at] = _worded_column(names[j], raw, model.info[names[j]].description)
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
        reference = format_value(name, info.healthy_median, info.description)
        suffix = f" (renewing accounts: {reference})"
    return str(name), info.domain, f"{info.description}: ", suffix


def _worded_column(name: str, raw: np.ndarray, description: str) -> list[str] | np.ndarray:
    """`format_value` of each value of one feature; numbers are worded once per distinct value."""
    if raw.dtype.kind not in "iuf":  # booleans, strings, objects: value by value
        return [format_value(name, None if _missing(v) else _plain(v), description) for v in raw]
    bits = raw.astype("float64").view("int64")  # distinct bits: -0.0 is written apart from 0.0
    distinct, back = np.unique(bits, return_inverse=True)
    write = number_format(name, description)
    missing = missing_words(name, description)
    words = [missing if math.isnan(v) else write(v) for v in distinct.view("float64").tolist()]
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
