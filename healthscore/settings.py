"""One typed settings object, read from `healthscore.yaml` and `HEALTHSCORE_*` variables.

Precedence, highest first: explicit overrides (CLI flags) > environment > YAML file > defaults.
Nested fields use a double underscore in the environment: `HEALTHSCORE_GENERATE__ACCOUNTS=500`.
Nothing is read at import time; call `load_settings()`.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from features.contract import check_per_segment

DEFAULT_CONFIG = Path("healthscore.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateSettings(_Section):
    """The synthetic book of business (`healthscore generate`)."""

    accounts: int = Field(5_000, ge=1, le=10_000_000)
    months: int = Field(24, ge=1, le=120)
    seed: int = 42
    end_date: date = date(2026, 10, 31)
    drift_months: int = Field(3, ge=1)
    segment_mix: dict[str, float] = {"smb": 0.6, "mid_market": 0.3, "enterprise": 0.1}
    annual_churn: dict[str, float] = {"smb": 0.22, "mid_market": 0.12, "enterprise": 0.07}
    new_logo_share: float = Field(0.25, ge=0, le=1)
    workers: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _segments(self) -> GenerateSettings:
        check_per_segment("segment_mix", self.segment_mix, shares=True)
        check_per_segment("annual_churn", self.annual_churn)
        return self


class FeatureSettings(_Section):
    """The feature store (`healthscore features ...`) and training sets."""

    # Predict each renewal this many days before the renewal date.
    lead_days: int = Field(90, ge=1, le=730)
    # Cap on DuckDB's memory while building features; beyond it DuckDB spills to disk.
    duckdb_memory_limit: str = Field("8GB", pattern=r"^\d+(\.\d+)?\s*(MB|GB|TB)$")


class StoreSettings(_Section):
    """Where state lives. The defaults are embedded (files under the workspace); the
    alternatives are production switches."""

    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = "127.0.0.1:6379"
    registry: Literal["file", "sql"] = "file"
    registry_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    redis_timeout_seconds: float = Field(1.0, gt=0)  # Redis connect/read timeout, no retries
    # None: an SQLite database inside the workspace.
    mlflow_tracking_uri: str | None = None


class TrainingSettings(_Section):
    """Training, comparison and promotion (`healthscore train|compare|promote`)."""

    experiment: str = "account-health"  # MLflow experiment
    registered_model: str = "account-health"  # MLflow registered model
    validation_share: float = Field(0.15, gt=0, lt=0.5)  # newest decisions before the test period
    test_share: float = Field(0.15, gt=0, lt=0.5)  # newest decisions, held out
    seed: int = 42
    learning_rate: float = Field(0.02, gt=0, le=1)
    num_leaves: int = Field(7, ge=2, le=1024)
    min_data_in_leaf: int = Field(100, ge=1)
    feature_fraction: float = Field(0.5, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    max_rounds: int = Field(3000, ge=1)
    early_stopping_rounds: int = Field(300, ge=1)
    monotone: bool = True  # constrain features whose direction the catalog knows
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    threads: int = Field(0, ge=0)  # 0: all cores
    # The classic scorecard baseline: weight of each health domain.
    scorecard_weights: dict[str, float] = {
        "usage": 0.25,
        "adoption": 0.15,
        "engagement": 0.15,
        "support": 0.15,
        "satisfaction": 0.15,
        "financial": 0.15,
        "contract": 0.0,
    }


class TierBand(_Section):
    name: str
    colour: str
    min_probability: float | None = Field(None, ge=0, le=1)  # fixed policy
    share: float | None = Field(None, gt=0, le=1)  # quantile policy


class TierSettings(_Section):
    """Traffic lights. `fixed`: bands on the renewal probability; `quantile`: shares of the
    population (cut points resolved on the training population and stored with the model)."""

    policy: Literal["fixed", "quantile"] = "fixed"
    fixed: list[TierBand] = [
        TierBand(name="healthy", colour="green", min_probability=0.85),
        TierBand(name="at risk", colour="yellow", min_probability=0.65),
        TierBand(name="unhealthy", colour="red", min_probability=0.0),
    ]
    quantile: list[TierBand] = [
        TierBand(name="doing well", colour="green", share=0.25),
        TierBand(name="take notice", colour="yellow", share=0.5),
        TierBand(name="requires attention", colour="red", share=0.25),
    ]

    @model_validator(mode="after")
    def _bands(self) -> TierSettings:
        floors = [b.min_probability for b in self.fixed]
        if None in floors or floors != sorted(floors, reverse=True) or floors[-1] != 0:
            raise ValueError(
                "tiers.fixed: every band needs min_probability, healthiest first, the last 0"
            )
        shares = [b.share for b in self.quantile]
        if None in shares or abs(sum(shares) - 1) > 1e-6:
            raise ValueError("tiers.quantile: every band needs a share, the shares sum to 1")
        return self


class ScoringSettings(_Section):
    """Batch scoring (`healthscore score`) and the actions it recommends."""

    model_alias: str = "champion"  # which registered version scores
    chunk_size: int = Field(50_000, ge=100)  # accounts scored at a time
    top_drivers: int = Field(3, ge=1, le=10)  # negative and positive drivers per account
    # Actions per tier name; tiers not listed get the product's default playbook for their place.
    playbooks: dict[str, list[str]] = {}
    # One sharpening action per health domain (the domain pulling the score down most).
    domain_actions: dict[str, str] = {}
    # Domains that explain the score but that a CSM cannot act on: never drivers or main risk.
    context_domains: list[str] = ["contract"]
    # A domain sharpens the actions only when its signals pull the log-odds down by more.
    min_risk_pull: float = Field(0.0, ge=0)


class ServingSettings(_Section):
    """The online service (`healthscore serve`)."""

    host: str = "127.0.0.1"  # bind address; 0.0.0.0 exposes it to the network
    port: int = Field(3000, ge=1, le=65535)
    api_key: str | None = None  # when set, required in the X-API-Key header (not for probes)
    max_ids: int = Field(1000, ge=1, le=100_000)  # accounts per request
    poll_seconds: float = Field(30.0, gt=0)  # how often the model alias is checked
    workers: int = Field(2, ge=1, le=64)  # worker processes; each holds the model (~440 MB)
    threads: int = Field(1, ge=1, le=64)  # request threads per worker


class MonitoringSettings(_Section):
    """Drift and performance monitoring (`healthscore monitor`)."""

    experiment: str = "account-health-monitoring"  # MLflow experiment of the monitoring runs
    # Drift thresholds (Evidently distances): normed Wasserstein for numbers, in reference
    # standard deviations; Jensen-Shannon for categories, scores and the tier mix.
    num_threshold: float = Field(0.15, gt=0)
    cat_threshold: float = Field(0.1, gt=0)
    score_threshold: float = Field(0.1, gt=0)
    # tenure_days and days_since_* grow as the book ages: a looser threshold for them.
    elapsed_time_threshold: float = Field(0.3, gt=0)
    # A distance counts only when a two-sample test also rejects at this level (null: off).
    significance: float | None = Field(0.01, gt=0, lt=1)
    # Drifted features that make a "retrain" verdict (a drifted score distribution always does).
    # One product change moves related features together (a launch moves both 30-vs-60-day
    # trends), so one or two drifted features are reported but do not ask for a retrain.
    min_drifted: int = Field(3, ge=1)
    sample_size: int | None = Field(50_000, ge=100)  # rows per side; null compares all rows
    horizon_days: int = Field(365, ge=1)  # renewals this long after a score run judge it


class SourceSettings(_Section):
    """Where one raw source of the data contract comes from (`data.sources.<name>`): a Parquet or
    CSV file (or a folder of Parquet parts), or a PostgreSQL table or query, with a mapping from
    the team's column names to the contract's (docs/data-contract.md)."""

    path: Path | None = None  # file or folder; relative paths are relative to the config file
    format: Literal["auto", "parquet", "csv"] = "auto"  # auto: from the file name
    encoding: str = "utf-8"  # CSV text encoding (e.g. latin-1)
    delimiter: str | None = None  # CSV delimiter; None: detected
    url: str | None = None  # PostgreSQL, e.g. postgresql://user@127.0.0.1:5432/crm
    table: str | None = None  # PostgreSQL table (or `query`)
    query: str | None = None  # PostgreSQL query
    columns: dict[str, str] = {}  # their column name -> the contract's column name

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSettings:
        file_, db = self.path is not None, self.url is not None
        if file_ == db:
            raise ValueError("set either `path` (a file) or `url` with `table` or `query`")
        if db and (self.table is None) == (self.query is None):
            raise ValueError("with `url`, set exactly one of `table` and `query`")
        if len(set(self.columns.values())) != len(self.columns):
            raise ValueError("`columns`: two columns map to the same contract column")
        return self


class TableColumnSettings(_Section):
    """One feature column of a flat account table (`data.table.columns.<column>`)."""

    domain: str = "other"  # the health domain it explains (usage, support, financial, ...)
    type: Literal["auto", "number", "category", "flag"] = "auto"  # auto: from the values
    description: str | None = None  # how explanations word it; default: the column name
    # Orients the scorecard and the wording of drivers; `auto` learns it from the training rows.
    direction: Literal["auto", "higher_is_healthier", "higher_is_riskier", "none"] = "auto"


class TableSettings(_Section):
    """A flat account table: one row per account (or per account and snapshot date), a label
    column, and any number of feature columns (`healthscore init --from-table FILE`)."""

    path: Path  # CSV or Parquet; relative paths are relative to the config file
    format: Literal["auto", "parquet", "csv"] = "auto"
    encoding: str = "utf-8"
    delimiter: str | None = None
    id_column: str  # the account identifier
    label_column: str  # the renewal outcome; empty for accounts still to be decided
    churn_values: list[str] = ["churned", "churn", "yes", "true", "1", "lost"]  # case-insensitive
    renew_values: list[str] = ["renewed", "no", "false", "0", "retained", "won"]
    as_of_column: str | None = None  # the snapshot date of each row, if the table has one
    as_of_date: date | None = None  # without as_of_column: the day every row describes
    name_column: str | None = None  # shown on the dashboard, never a feature
    owner_column: str | None = None  # the CSM owning the account, never a feature
    # Revenue at stake per account (the dashboard's ARR, at-risk lists sorted by it); it may be
    # a feature too. arr_scale: 12 when the column is monthly revenue.
    arr_column: str | None = None
    arr_scale: float = Field(1.0, gt=0)
    exclude: list[str] = []  # columns that are not features (free text, leaky fields)
    columns: dict[str, TableColumnSettings] = {}  # unlisted columns: domain `other`, type auto
    # auto: by snapshot date when the table has at least three, else stratified random.
    split: Literal["auto", "time", "random"] = "auto"

    @model_validator(mode="after")
    def _columns(self) -> TableSettings:
        special = [self.id_column, self.label_column, self.as_of_column]
        special += [self.name_column, self.owner_column]
        named = [c for c in special if c]
        if len(set(named)) != len(named):
            raise ValueError("id, label, as-of, name and owner columns must be different columns")
        clash = sorted(set(self.columns) & set(named + self.exclude))
        if clash:
            raise ValueError(f"`columns` lists non-feature column(s): {', '.join(clash)}")
        if set(self.churn_values) & set(self.renew_values):
            raise ValueError("churn_values and renew_values overlap")
        return self


class DataSettings(_Section):
    """What the team's data is. `contract`: the raw sources of the data contract, generated into
    the workspace (`healthscore generate`) or read from `sources`; `table`: one flat table."""

    kind: Literal["contract", "table"] = "contract"
    sources: dict[str, SourceSettings] = {}  # per contract source; unlisted: the workspace's
    table: TableSettings | None = None

    @model_validator(mode="after")
    def _kind(self) -> DataSettings:
        from features.contract import SOURCES

        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise ValueError(
                f"sources: unknown source(s) {', '.join(unknown)}; the contract has "
                + ", ".join(SOURCES)
            )
        if self.kind == "table" and self.table is None:
            raise ValueError("kind `table` needs a `table` section (healthscore init --from-table)")
        return self


class Settings(BaseSettings):
    """Everything healthscore can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="HEALTHSCORE_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    workspace: Path = Path(".healthscore")
    data: DataSettings = DataSettings()
    generate: GenerateSettings = GenerateSettings()
    features: FeatureSettings = FeatureSettings()
    stores: StoreSettings = StoreSettings()
    training: TrainingSettings = TrainingSettings()
    tiers: TierSettings = TierSettings()
    scoring: ScoringSettings = ScoringSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @property
    def data_dir(self) -> Path:
        """The raw sources of the data contract."""
        return self.workspace / "data" / "raw"

    @property
    def source_dir(self) -> Path:
        """Where the features are computed from: the raw folder, or, when `data.sources` names
        a team's own exports, the contract-shaped copy `features apply` stages from them."""
        return self.workspace / "data" / "staged" if self.data.sources else self.data_dir

    @property
    def feature_dir(self) -> Path:
        """Daily snapshot tables, one per feature view (the offline store)."""
        return self.workspace / "features"

    @property
    def feature_repo_dir(self) -> Path:
        """Feast registry and SQLite online store."""
        return self.workspace / "feature_repo"

    @property
    def scores_dir(self) -> Path:
        """Batch scores: the latest output and the history partitioned by as-of date."""
        return self.workspace / "scores"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring reports, one folder per run."""
        return self.workspace / "monitoring"

    @property
    def mlflow_artifact_dir(self) -> Path:
        """Artifacts (plots, models, holdouts) of the MLflow experiments this workspace creates."""
        return self.workspace / "mlartifacts"

    @property
    def mlflow_tracking_uri(self) -> str:
        uri = self.stores.mlflow_tracking_uri
        return uri or f"sqlite:///{(self.workspace / 'mlflow.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls)


class SettingsError(ValueError):
    """The configuration is invalid; the message names the file and field."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from a YAML file (default `healthscore.yaml` if present, or
    `$HEALTHSCORE_CONFIG`), the environment and explicit overrides (None values are ignored)."""
    explicit = config_file is not None or "HEALTHSCORE_CONFIG" in os.environ
    path = Path(config_file or os.environ.get("HEALTHSCORE_CONFIG", DEFAULT_CONFIG))
    if explicit and not path.is_file():
        raise SettingsError(f"{path}: configuration file not found")
    yaml_file = path if path.is_file() else None

    class _Bound(Settings):
        model_config = SettingsConfigDict(yaml_file=yaml_file)

    try:
        bound = _Bound(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = (
            f"{yaml_file} or HEALTHSCORE_* variables" if yaml_file else "HEALTHSCORE_* variables"
        )
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"{where}: invalid configuration — {problems}") from None
    values = {k: getattr(bound, k) for k in Settings.model_fields}
    base = yaml_file.resolve().parent if yaml_file else Path.cwd()
    values["data"] = _resolve_data_paths(values["data"], base)
    return Settings.model_construct(**values)


def _resolve_data_paths(data: DataSettings, base: Path) -> DataSettings:
    """Relative data paths are relative to the configuration file's folder (where a team keeps
    its exports beside `healthscore.yaml`), not to wherever the command runs."""

    def absolute(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else base / p

    sources = {n: s.model_copy(update={"path": absolute(s.path)}) for n, s in data.sources.items()}
    table = data.table and data.table.model_copy(update={"path": absolute(data.table.path)})
    return data.model_copy(update={"sources": sources, "table": table})
