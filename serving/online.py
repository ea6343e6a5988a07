"""Online scoring without HTTP: features from the online store or a request, scored exactly as
batch scoring does (`serving.batch.score_frame`: the model, `serving.explain`, the playbook).

The HTTP layer (`serving.service`) holds one `Scorer` at a time and swaps it when the registry
alias moves; everything here is plain functions and frozen objects, so it is testable alone.

Posted features are checked against the model's feature list, typed by its FeatureService:
- `string` features (the categorical `segment`) take one of the levels the model was trained on;
- `bool` features take true/false; `int` features whole numbers; `float` features any number;
- numbers must be finite and within ±1e12, and in range: names with `trend`, `slope` or `change`
  are signed; a description with "(a-b)" (NPS 0-10, CSAT 1-5) bounds the value; `_pct` is 0-100;
  every other number (counts, days, users, hours, ARR, shares) is at least 0;
- missing features and nulls are allowed (the model handles missing values); unknown names are not.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import FEATURE_SERVICE
from features.health_model import HealthModel
from serving.batch import score_frame
from serving.explain import Playbook
from serving.schemas import AccountFeatures, AccountScore, Driver, Drivers, ServiceConfig

SIGNED_WORDS = ("trend", "slope", "change")
MAX_MAGNITUDE = 1e12
_RANGE = re.compile(r"\((\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\)")
_FEAST_KINDS = {
    "Int32": "int",
    "Int64": "int",
    "Float32": "float",
    "Float64": "float",
    "String": "string",
    "Bool": "bool",
}


# -- posted features ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """What a posted value of one feature may be."""

    name: str
    kind: str  # int, float, bool, string
    levels: tuple[str, ...] = ()  # for string features: the model's categories
    lower: float | None = None
    upper: float | None = None

    def check(self, value: object) -> str | None:
        """Why `value` is not acceptable, or None when it is (null always is: missing)."""
        if value is None:
            return None
        if self.kind == "string":
            if not isinstance(value, str):
                return f"expected text (one of {', '.join(self.levels)}), got {_json_type(value)}"
            if self.levels and value not in self.levels:
                return f"{value!r} is not one of {', '.join(self.levels)}"
            return None
        if self.kind == "bool":
            if isinstance(value, bool):
                return None
            return f"expected true or false, got {_json_type(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {_json_type(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return "expected a finite number, got NaN or infinity"
        if abs(value) > MAX_MAGNITUDE:
            return f"out of range: {value} (at most {MAX_MAGNITUDE:g} in magnitude)"
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            return f"expected a whole number, got {value}"
        if self.lower is not None and value < self.lower:
            return f"out of range: {value} is below {self.lower:g}"
        if self.upper is not None and value > self.upper:
            return f"out of range: {value} is above {self.upper:g}"
        return None


def bounds(name: str, description: str) -> tuple[float | None, float | None]:
    """The accepted range of a numeric feature, from its name and description (module doc)."""
    if any(word in name for word in SIGNED_WORDS):
        return None, None
    if m := _RANGE.search(description):
        return float(m[1]), float(m[2])
    if name.endswith("_pct"):
        return 0.0, 100.0
    return 0.0, None


def feature_specs(model: HealthModel, service) -> dict[str, FeatureSpec]:
    """A spec per model feature, typed by the FeatureService's fields (feast dtypes)."""
    dtypes = {f.name: str(f.dtype) for p in service.feature_view_projections for f in p.features}
    absent = [f for f in model.features if f not in dtypes]
    if absent:
        raise ValueError(
            f"the model's features {absent} are not in the FeatureService {service.name!r}"
        )
    specs = {}
    for name in model.features:
        kind = _FEAST_KINDS.get(dtypes[name], "float")
        if name in model.categorical:
            specs[name] = FeatureSpec(name, "string", tuple(model.categorical[name]))
        elif kind in ("int", "float"):
            specs[name] = FeatureSpec(name, kind, (), *bounds(name, model.info[name].description))
        else:
            specs[name] = FeatureSpec(name, kind)
    return specs


def feature_errors(
    accounts: list[AccountFeatures], specs: dict[str, FeatureSpec]
) -> list[tuple[tuple, str, str]]:
    """(location, message, error type) of every unacceptable posted feature."""
    errors = []
    for i, acc in enumerate(accounts):
        for name, value in acc.features.items():
            loc = ("accounts", i, "features", name)
            spec = specs.get(name)
            if spec is None:
                errors.append((loc, f"unknown feature {name!r}", "unknown_feature"))
            elif (why := spec.check(value)) is not None:
                errors.append((loc, f"{name}: {why}", "invalid_feature_value"))
    return errors


def posted_frame(accounts: list[AccountFeatures], features: list[str]) -> pd.DataFrame:
    """One row per posted account, a column per model feature (missing ones empty)."""
    rows = [{"account_id": a.account_id, **a.features} for a in accounts]
    return pd.DataFrame.from_records(rows, columns=["account_id", *features])


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- the online store ---------------------------------------------------------------------------


def lookup(store, service, account_ids: list[str]) -> pd.DataFrame:
    """The served features of each account, plus `found` and `features_as_of`.

    One online read through the FeatureService object (fetching it from the registry per
    request would cost more than the read). `found` follows `features.store.online_features`:
    a stored value always has an event timestamp, an unknown account never does (Redis reports
    unknown keys as present). `features_as_of` is the oldest feature timestamp of the account.
    """
    resp = store.get_online_features(
        features=service, entity_rows=[{"account_id": a} for a in account_ids]
    )
    data = resp.to_dict(include_event_timestamps=True)
    stamps = [v for k, v in data.items() if k.endswith("__ts") and k != "account_id__ts"]
    columns: dict = {k: v for k, v in data.items() if not k.endswith("__ts")}
    ts = np.asarray(stamps, dtype="float64").T.reshape(len(account_ids), -1)
    columns["found"] = (ts > 0).any(axis=1)
    oldest = np.where(ts > 0, ts, np.inf).min(axis=1)
    columns["features_as_of"] = pd.to_datetime(
        np.where(np.isfinite(oldest), oldest, np.nan), unit="s", utc=True
    )
    return pd.DataFrame(columns)  # built once: adding columns to a frame costs more


# -- scoring ------------------------------------------------------------------------------------


def online_matrix(
    frame: pd.DataFrame, features: list[str], categorical: dict[str, list[str]]
) -> np.ndarray:
    """The booster's input for a few rows, as float64 numpy: the values LightGBM itself derives
    from `features.health_model.model_matrix`'s frame (numbers as float64, missing NaN; a
    category as its code among the training levels, an unseen or missing one NaN), without
    pandas' per-column conversions (most of a one-account request's time)."""
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ValueError(f"missing feature column(s): {', '.join(absent)}")
    block = frame[features].to_numpy(dtype=object)  # one conversion, then plain Python
    out = np.empty(block.shape, dtype="float64")
    for j, name in enumerate(features):
        values = block[:, j]
        if name in categorical:
            levels = {level: float(code) for code, level in enumerate(categorical[name])}
            out[:, j] = [levels.get(v, np.nan) if isinstance(v, str) else np.nan for v in values]
            continue
        try:
            out[:, j] = [np.nan if v is None or v is pd.NA else float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature {name!r}: not numeric ({exc})") from None
    return out


class _OneThreadBooster:
    """The booster for online requests: predictions on one thread (for a few rows LightGBM's
    OpenMP threads cost more than they save, and spin on a shared CPU)."""

    def __init__(self, booster) -> None:
        self.booster = booster

    def predict(self, data, **kwargs):
        return self.booster.predict(data, num_threads=1, **kwargs)


@dataclass
class OnlineModel(HealthModel):
    """The same model with a faster input matrix for request-sized frames (`online_matrix`).
    Only for models whose categories are the booster's own, in the same order; `for_requests`
    checks that and otherwise keeps the model as it is."""

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:  # type: ignore[override]
        return online_matrix(frame, self.features, self.categorical)

    @classmethod
    def for_requests(cls, model: HealthModel) -> HealthModel:
        booster = model.booster
        categorical_order = [model.categorical[f] for f in model.features if f in model.categorical]
        if [list(c) for c in getattr(booster, "pandas_categorical", None) or []] != [
            list(c) for c in categorical_order
        ]:
            return model
        fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
        return cls(**(fields | {"booster": _OneThreadBooster(booster)}))


def playbook_for(
    tier_names: list[str], playbooks: dict[str, list[str]], domain_actions: dict[str, str]
) -> Playbook:
    """The default playbooks for the model's tiers, overridden per tier name and per domain
    (batch scoring uses it too, through `healthscore.pipeline.playbook`)."""
    base = Playbook.default(tier_names)
    tiers = {name: tuple(playbooks.get(name, base.tiers[name])) for name in tier_names}
    return Playbook(tiers, base.domains | domain_actions)


@dataclass(frozen=True)
class Scorer:
    """One registered model version, ready to score: swapped as a whole when the alias moves."""

    model: HealthModel
    version: str
    service: object  # feast.FeatureService the model was trained on
    specs: dict[str, FeatureSpec]
    playbook: Playbook
    top: int = 3
    context_domains: tuple[str, ...] = ("contract",)

    def score(self, frame: pd.DataFrame) -> list[AccountScore]:
        """Score each row of `frame` (account_id, the model's features, optionally
        features_as_of) exactly as batch scoring does."""
        if frame.empty:
            return []
        scores = score_frame(
            self.model,
            frame,
            self.playbook,
            top=self.top,
            context_domains=self.context_domains,
        )
        as_of = frame.get("features_as_of")
        return list(self._results(scores, as_of))

    def _results(self, scores: pd.DataFrame, as_of) -> Iterable[AccountScore]:
        domain_cols = [c for c in scores.columns if c.startswith("domain_")]
        for i, row in enumerate(scores.itertuples(index=False)):
            r = row._asdict()
            stamp = None if as_of is None else as_of.iloc[i]
            yield AccountScore(
                account_id=str(r["account_id"]),
                renewal_probability=float(r["renewal_probability"]),
                health_score=int(r["health_score"]),
                tier=str(r["tier"]),
                tier_colour=str(r["tier_colour"]),
                domains={c.removeprefix("domain_"): float(r[c]) for c in domain_cols},
                drivers=Drivers(
                    negative=[Driver(**d) for d in r["drivers_negative"]],
                    positive=[Driver(**d) for d in r["drivers_positive"]],
                ),
                actions=list(r["actions"]),
                model_version=self.version,
                features_as_of=None if stamp is None or pd.isna(stamp) else stamp.to_pydatetime(),
            )


def _client(config: ServiceConfig):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def alias_version(config: ServiceConfig) -> str:
    """The model version the configured alias points at now (a string: see DEVELOPERS.md)."""
    mv = _client(config).get_model_version_by_alias(config.registered_model, config.model_alias)
    return str(mv.version)


def load_scorer(config: ServiceConfig, store, version: str) -> Scorer:
    """Load model `version` from the registry (by number, so a concurrent alias move cannot mix
    versions) and prepare everything a request needs.

    The tracking URI is passed explicitly, never set process-wide (MLflow resolves `models:/`
    URIs through the global registry URI, so the version's artifact location is asked for
    through an explicit client instead)."""
    import tempfile

    import mlflow.artifacts

    from features.health_model_mlflow import load_health_model

    location = _client(config).get_model_version_download_uri(config.registered_model, version)
    with tempfile.TemporaryDirectory(prefix="healthscore-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=config.tracking_uri
        )
        model = load_health_model(local)
    service = store.get_feature_service(model.metadata.get("feature_service", FEATURE_SERVICE))
    return Scorer(
        model=OnlineModel.for_requests(model),
        version=version,
        service=service,
        specs=feature_specs(model, service),
        playbook=playbook_for(model.tiers.names, config.playbooks, config.domain_actions),
        top=config.top_drivers,
        context_domains=tuple(config.context_domains),
    )
