"""The online service's wire format and configuration, as pydantic models.

Requests forbid unknown fields and non-finite numbers, so a typo or a NaN is a 400 that names the
field instead of a silent default. `ServiceConfig` is everything the service needs to know, passed
as one JSON environment variable (`HEALTHSCORE_SERVICE_CONFIG`, see `serving.service`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from features.store import StoreConfig

SERVICE_CONFIG_ENV = "HEALTHSCORE_SERVICE_CONFIG"

AccountId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- requests ------------------------------------------------------------------------------------


class ScoreRequest(_Request):
    """Score accounts by id from the online feature store."""

    model_config = ConfigDict(title="ScoreRequest")  # not BentoML's ...IODescriptor subclass

    account_ids: list[AccountId] = Field(
        min_length=1,
        description="Accounts to score (1 to the configured maximum, default 1000). "
        "Duplicates are scored once; results keep the order of first appearance.",
        examples=[["A0000001", "A0000002"]],
    )


class AccountFeatures(_Request):
    """One account and the features the application holds for it."""

    account_id: AccountId
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="Feature name -> value, names and types as in the model's FeatureService. "
        "Missing features (or null) are treated as unknown; unknown names, wrong types, "
        "NaN/infinite and out-of-range values are rejected with the feature's name.",
        examples=[{"segment": "smb", "active_users_30d": 12.5, "sev1_tickets_90d": 0}],
    )


class ScoreFeaturesRequest(_Request):
    """Score accounts from posted features (applications that hold their own data)."""

    model_config = ConfigDict(title="ScoreFeaturesRequest")

    accounts: list[AccountFeatures] = Field(min_length=1)


# -- responses -----------------------------------------------------------------------------------


class Driver(BaseModel):
    """A signal pulling the score down (impact < 0) or up (impact > 0), in words."""

    feature: str
    domain: str
    value: str = Field(description="The feature's value as a CSM reads it")
    impact: float = Field(description="Contribution to the log-odds of renewal")
    text: str


class Drivers(BaseModel):
    negative: list[Driver] = Field(description="Strongest first")
    positive: list[Driver] = Field(description="Strongest first")


class AccountScore(BaseModel):
    """One account's health: the same fields and values as a row of batch scoring."""

    account_id: str
    renewal_probability: float
    health_score: int = Field(description="The renewal probability in percent, rounded (0-100)")
    tier: str
    tier_colour: str
    domains: dict[str, float] = Field(
        description="Contribution of each health domain to the log-odds of renewal"
    )
    drivers: Drivers
    actions: list[str]
    model_version: str
    features_as_of: datetime | None = Field(
        description="Timestamp of the feature snapshot (null for posted features)"
    )


class ItemError(BaseModel):
    """An account that could not be scored; the other accounts of the request still are."""

    account_id: str
    error: str


class ScoreResponse(BaseModel):
    model_version: str
    results: list[AccountScore]
    errors: list[ItemError] = Field(default_factory=list)


# -- configuration -------------------------------------------------------------------------------


class ServiceConfig(BaseModel):
    """Everything the service is configured with. `healthscore serve` builds it from settings
    and passes it as JSON in the `HEALTHSCORE_SERVICE_CONFIG` environment variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str  # MLflow tracking (and registry) URI
    registered_model: str = "account-health"
    model_alias: str = "champion"
    store: StoreConfig  # the Feast feature store (features.store.StoreConfig fields)
    # Actions per tier name (tiers not listed get the default playbook for their place) and one
    # sharpening action per health domain: `scoring.playbooks` / `scoring.domain_actions`.
    playbooks: dict[str, list[str]] = {}
    domain_actions: dict[str, str] = {}
    context_domains: list[str] = ["contract"]
    top_drivers: int = Field(3, ge=1, le=10)
    max_ids: int = Field(1000, ge=1, le=100_000)  # accounts per request, both endpoints
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)  # larger requests get a 413
    # When set, required in the X-API-Key header of every request but /livez and /readyz.
    api_key: SecretStr | None = Field(None, min_length=1)
    poll_seconds: float = Field(30.0, gt=0)  # how often the alias is checked for a new version
    # Worker processes (each loads the model and opens the store) and request threads per
    # worker. Read when `bentoml serve` starts (serving.service.concurrency), not per worker.
    workers: int = Field(2, ge=1, le=64)
    threads: int = Field(1, ge=1, le=64)
    # The pre-rendered dashboard (`healthscore dashboard`) shown at GET /; None: no page.
    dashboard_path: str | None = None


def service_config_from_env(environ: dict[str, str] | None = None) -> ServiceConfig:
    """The service configuration from `HEALTHSCORE_SERVICE_CONFIG` (JSON); an error naming the
    variable when it is absent or invalid."""
    env = os.environ if environ is None else environ
    raw = env.get(SERVICE_CONFIG_ENV)
    if not raw:
        raise RuntimeError(
            f"{SERVICE_CONFIG_ENV} is not set: start the service with `healthscore serve`, "
            "or set it to the JSON of serving.schemas.ServiceConfig"
        )
    try:
        return ServiceConfig.model_validate_json(raw)
    except ValueError as exc:
        raise RuntimeError(f"{SERVICE_CONFIG_ENV}: invalid service configuration: {exc}") from None


def concurrency_from_env(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """(workers, threads) from `HEALTHSCORE_SERVICE_CONFIG` when `bentoml serve` imports the
    service; the defaults when it is absent or invalid (the service then refuses to start and
    says why, see `service_config_from_env`)."""
    try:
        config = service_config_from_env(environ)
    except RuntimeError:
        defaults = ServiceConfig.model_fields
        return defaults["workers"].default, defaults["threads"].default
    return config.workers, config.threads


def service_config_to_env(config: ServiceConfig) -> dict[str, str]:
    """The environment variable that carries `config` to the service (the API key in clear:
    `model_dump_json` masks it)."""
    data = config.model_dump(mode="json")
    data["api_key"] = config.api_key.get_secret_value() if config.api_key else None
    return {SERVICE_CONFIG_ENV: json.dumps(data)}
