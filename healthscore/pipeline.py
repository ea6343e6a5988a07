"""Pipeline wiring: turns settings into the explicit arguments each stage function takes.

Only this package reads configuration; the stages in `features/`, `training/`, `serving/` and
`monitoring/` take plain arguments and know nothing about YAML or the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from features.synthetic.generator import GeneratorConfig, generate_book
from features.validation import ValidationReport, validate_dir
from healthscore.settings import Settings


def generator_config(
    settings: Settings, drift: bool = False, **overrides: object
) -> GeneratorConfig:
    """The generator's arguments from the `generate` section, with CLI overrides applied."""
    values = settings.generate.model_dump(exclude={"workers"}) | {"drift": drift}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return GeneratorConfig(**values)


def generate(
    settings: Settings,
    out: Path | None = None,
    drift: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **overrides: object,
) -> tuple[Path, dict]:
    """Generate the synthetic book of business; returns where it went and its manifest."""
    cfg = generator_config(settings, drift=drift, **overrides)
    target = Path(out) if out else settings.data_dir
    manifest = generate_book(
        cfg, target, workers=workers or settings.generate.workers, progress=progress
    )
    return target, manifest


def validate(
    settings: Settings, data_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> tuple[Path, ValidationReport]:
    """Check raw sources against the data contract; writes nothing."""
    target = Path(data_dir) if data_dir else settings.data_dir
    return target, validate_dir(target, progress=progress)


def store_config(settings: Settings):  # -> features.store.StoreConfig
    """The feature store's arguments from the `stores` section."""
    from features.store import StoreConfig

    st = settings.stores
    return StoreConfig(
        repo_dir=settings.feature_repo_dir,
        feature_dir=settings.feature_dir,
        online_store=st.online_store,
        redis_connection=st.redis_connection,
        registry=st.registry,
        registry_url=st.registry_url,
    )


def features_apply(
    settings: Settings,
    as_of: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Path]:
    """Build the daily snapshot tables from the raw sources and register the Feast definitions."""
    from features import engineering, store

    written = engineering.build_feature_tables(
        settings.data_dir,
        settings.feature_dir,
        as_of=as_of,
        progress=progress,
        memory_limit=settings.features.duckdb_memory_limit,
    )
    cfg = store_config(settings)
    store.apply(store.open_store(cfg), cfg)
    return written


def features_materialize(settings: Settings, as_of: date | None = None) -> date:
    """Load the latest snapshots (as of `as_of`, default the end of the data) online."""
    from features import engineering, store

    if as_of is None:
        as_of = engineering.data_window(engineering.connect(settings.data_dir))[1]
    store.materialize(store.open_store(store_config(settings)), as_of)
    return as_of


def features_show(settings: Settings, account_id: str):  # -> pandas.DataFrame
    """One account's served features, grouped by domain."""
    from features import store

    return store.describe(store.open_store(store_config(settings)), account_id)
