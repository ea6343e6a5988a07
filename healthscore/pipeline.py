"""Pipeline wiring: turns settings into the explicit arguments each stage function takes.

Only this package reads configuration; the stages in `features/`, `training/`, `serving/` and
`monitoring/` take plain arguments and know nothing about YAML or the environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
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
    """Check raw sources against the data contract; writes nothing. With `data.sources` (and no
    `data_dir`), the team's exports are staged into a temporary folder, checked, and dropped.
    Raises features.sources.SourceError when a source cannot be read or mapped."""
    if data_dir is None and settings.data.sources:
        import tempfile

        with tempfile.TemporaryDirectory(prefix=".validate-", dir=_scratch(settings)) as tmp:
            staged = stage_sources(settings, Path(tmp) / "staged", progress)
            return settings.source_dir, validate_dir(staged, progress=progress)
    target = Path(data_dir) if data_dir else settings.data_dir
    return target, validate_dir(target, progress=progress)


def _scratch(settings: Settings) -> Path:
    settings.workspace.mkdir(parents=True, exist_ok=True)
    return settings.workspace


def source_specs(settings: Settings) -> dict:  # -> dict[str, features.sources.SourceSpec]
    """`data.sources` as the arguments of features.sources.stage."""
    from features.sources import SourceSpec

    return {n: SourceSpec(**s.model_dump()) for n, s in settings.data.sources.items()}


def stage_sources(
    settings: Settings, out_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> Path:
    """Copy the team's own sources (`data.sources`), renamed and typed, into a contract-shaped
    folder (default `source_dir`); sources not configured come from the raw folder if it has
    them. Atomic: a failure leaves the folder as it was."""
    from features import sources

    out = Path(out_dir) if out_dir else settings.source_dir
    base = settings.data_dir if settings.data_dir.is_dir() else None
    sources.stage(source_specs(settings), out, base_dir=base, progress=progress)
    return out


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
        redis_timeout_seconds=st.redis_timeout_seconds,
    )


def is_table(settings: Settings) -> bool:
    """The project's data is one flat account table (`data.kind: table`)."""
    return settings.data.kind == "table"


def table_spec(settings: Settings):  # -> features.table.TableSpec
    """The flat table's arguments from `data.table`."""
    import dataclasses

    from features.table import ColumnSpec, TableSpec

    t = settings.data.table
    assert t is not None  # the settings validator guarantees it for kind `table`
    # The spec's fields are the section's (lists as tuples); `split` is training's concern.
    names = {f.name for f in dataclasses.fields(TableSpec)}
    values = {
        k: tuple(v) if isinstance(v, list) else v for k, v in t.model_dump(include=names).items()
    }
    values["columns"] = {k: ColumnSpec(**v) for k, v in values["columns"].items()}
    return TableSpec(**values)


def validate_table(settings: Settings) -> tuple[Path, list[str], list[str], dict]:
    """Check the flat table against `data.table` (errors, warnings, facts); writes nothing."""
    import tempfile

    from features import table

    spec = table_spec(settings)
    try:
        with tempfile.TemporaryDirectory(prefix=".validate-", dir=_scratch(settings)) as tmp:
            con = table.connect(settings.features.duckdb_memory_limit, spill_dir=Path(tmp))
            with table.readable(con, spec, Path(tmp)) as text:
                errors, warnings, facts = table.check_table(con, text)
    except table.TableError as exc:
        errors, warnings, facts = [str(exc)], [], {}
    return Path(spec.path), errors, warnings, facts


def end_of_data(settings: Settings) -> date:
    """The last day the data describes: the default as-of date of materialize and score."""
    from features import engineering, table

    if is_table(settings):
        return table.latest_date(table.read_manifest(settings.feature_dir))
    return engineering.data_window(engineering.connect(settings.source_dir))[1]


def features_apply(
    settings: Settings,
    as_of: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Path]:
    """Build the daily snapshot tables from the raw sources and register the Feast definitions."""
    from features import engineering, store

    if is_table(settings):
        from features import table

        manifest = table.build_table(
            table_spec(settings),
            settings.feature_dir,
            progress=(lambda m: progress(m, 0, 1)) if progress else None,
            memory_limit=settings.features.duckdb_memory_limit,
        )
        views = table.views(manifest)
        cfg = store_config(settings)
        store.apply(store.open_store(cfg), cfg, views=views)
        return {v.name: settings.feature_dir / f"{v.name}.parquet" for v in views}
    from features.sources import available_views, present

    if settings.data.sources:
        stage_sources(settings, progress=(lambda m: progress(m, 0, 1)) if progress else None)
    written = engineering.build_feature_tables(
        settings.source_dir,
        settings.feature_dir,
        as_of=as_of,
        progress=progress,
        memory_limit=settings.features.duckdb_memory_limit,
    )
    cfg = store_config(settings)
    # Views that need a source the team does not have are left out of the FeatureService.
    store.apply(store.open_store(cfg), cfg, views=available_views(present(settings.source_dir)))
    return written


def features_materialize(settings: Settings, as_of: date | None = None) -> date:
    """Load the latest snapshots (as of `as_of`, default the end of the data) online."""
    from features import store

    if as_of is None:
        as_of = end_of_data(settings)
    store.materialize(store.open_store(store_config(settings)), as_of)
    return as_of


def features_show(settings: Settings, account_id: str):  # -> pandas.DataFrame
    """One account's served features, grouped by domain."""
    from features import store

    return store.describe(store.open_store(store_config(settings)), account_id)


def tracking(settings: Settings):  # -> training.tracking.Tracking
    """Where MLflow runs and models go, from the `stores` and `training` sections."""
    from training.tracking import Tracking

    return Tracking(
        tracking_uri=settings.mlflow_tracking_uri,
        artifact_root=settings.mlflow_artifact_dir,
        experiment=settings.training.experiment,
        registered_model=settings.training.registered_model,
    )


def model_params(settings: Settings, **overrides: object):  # -> training.train.ModelParams
    from training.train import ModelParams

    fields = ModelParams.__dataclass_fields__
    values = {k: v for k, v in settings.training.model_dump().items() if k in fields}
    return ModelParams(**(values | {k: v for k, v in overrides.items() if v is not None}))


def tier_spec(settings: Settings):  # -> training.train.TierSpec
    from training.train import TierSpec

    t = settings.tiers
    bands = t.fixed if t.policy == "fixed" else t.quantile
    values = [b.min_probability if t.policy == "fixed" else b.share for b in bands]
    return TierSpec(t.policy, [b.name for b in bands], [b.colour for b in bands], values)


def train(
    settings: Settings,
    run_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    tune: int = 0,
    **overrides: object,
):  # -> (training.tracking.TrainingRun, training.data.Split, TrainResult)
    """Build the point-in-time training set, fit the model and baselines, log and register."""
    from features import engineering
    from features import store as fstore
    from features.catalog import FEATURE_SERVICE
    from features.io import read_source
    from training import data
    from training import tracking as trk
    from training.train import auto_params
    from training.train import train as fit

    say = progress or (lambda _msg: None)
    store = fstore.open_store(store_config(settings))
    tr = settings.training
    names, info, categorical = data.service_features(store)
    weights = dict(tr.scorecard_weights)
    say("building the point-in-time training set")
    if is_table(settings):
        import dataclasses

        import pandas as pd

        from features import table

        manifest = table.read_manifest(settings.feature_dir)
        events = pd.read_parquet(settings.feature_dir / table.LABELS)
        events["event_timestamp"] = pd.to_datetime(events["event_timestamp"], utc=True)
        frame, dropped = data.events_frame(store, events)
        by_time = table_split(settings, frame)
        split = (
            data.time_split(frame, tr.validation_share, tr.test_share)
            if by_time
            else data.stratified_split(frame, tr.validation_share, tr.test_share, tr.seed)
        )
        learned = data.learn_directions(split.train, table.learned(manifest))
        info = {
            n: dataclasses.replace(i, direction=learned[n]) if n in learned else i
            for n, i in info.items()
        }
        # Learned directions orient words and the scorecard; they never constrain the model.
        overrides = {"monotone": False, **overrides} if learned else overrides
        domains = {i.domain for i in info.values()}
        weights = {d: w for d, w in weights.items() if d in domains and w > 0} or dict.fromkeys(
            sorted(domains), 1.0
        )
        lead_days, split_kind = 0, "time" if by_time else "stratified_random"
    else:
        first_day = engineering.data_window(engineering.connect(settings.source_dir))[0]
        frame, dropped = data.training_frame(
            store,
            read_source(settings.source_dir, "contracts"),
            settings.features.lead_days,
            first_day,
        )
        split = data.time_split(frame, tr.validation_share, tr.test_share)
        lead_days, split_kind = settings.features.lead_days, "time"
    params = model_params(settings, **overrides)
    # Small tables: fewer leaves, smaller leaves, no isotonic fit on a few hundred rows.
    params = auto_params(len(split.train), params) if is_table(settings) else params
    lineage = {
        "feature_service": FEATURE_SERVICE,
        "training_data_hash": data.frame_hash(frame),
        "split": split_kind,
        "lead_days": lead_days,
        "label_window": "{}..{}".format(*frame["renewal_date"].agg(["min", "max"]).dt.date),
        "decisions_without_features": dropped,
        # The last prediction time the model learned from: monitoring's reference snapshot date.
        "train_until": str(split.train["event_timestamp"].max().date()),
        "features": len(names),
    }
    t = tracking(settings)
    with contextlib.ExitStack() as stack:
        if tune:
            from training.tune import tune as search

            stack.enter_context(trk.start_training_run(t, run_name))
            say(f"tuning: {tune} Optuna trials (nested MLflow runs)")
            params, _ = search(
                split,
                names,
                info,
                categorical,
                params,
                tune,
                progress=lambda i, n, best: say(f"tuning: trial {i}/{n}, best log loss {best:.4f}"),
            )
            lineage["tuning_trials"] = tune
        say(f"fitting LightGBM and baselines on {len(split.train):,} decisions")
        result = fit(
            split,
            names,
            info,
            categorical,
            params,
            tier_spec(settings),
            weights,
            metadata=lineage,
        )
        say("logging to MLflow and registering the challenger")
        run = trk.log_training(
            t,
            result,
            split,
            params=vars(params),
            lineage=lineage,
            run_name=run_name,
            active=bool(tune),
        )
    return run, split, result


def table_split(settings: Settings, frame) -> bool:
    """Whether a flat table splits by snapshot date (`split: time`, or `auto` with at least
    three dates) rather than at random."""
    mode = settings.data.table.split if settings.data.table else "auto"
    return mode == "time" or (mode == "auto" and frame["renewal_date"].nunique() >= 3)


def compare(settings: Settings, last: int = 5, n_boot: int = 1000):  # -> pandas.DataFrame
    """The newest registered versions scored on the newest version's holdout."""
    from training import tracking as trk

    t = tracking(settings)
    versions = trk.recent_versions(t, last)
    if not versions:
        raise LookupError(f"no versions of {t.registered_model} yet: run `healthscore train`")
    c = trk.client(t)
    newest = c.get_model_version(t.registered_model, versions[0])
    return trk.evaluate_versions(t, versions, newest.tags.get("run_id") or newest.run_id, n_boot)


def promote(settings: Settings, version: str | None, force: bool, reason: str):
    from training import tracking as trk

    return trk.promote(tracking(settings), version=version, force=force, reason=reason)


def rollback(settings: Settings, reason: str):
    from training import tracking as trk

    return trk.rollback(tracking(settings), reason=reason)


@dataclass
class ScoreRun:
    scores: object  # pandas.DataFrame, one row per account
    path: Path
    as_of: date
    model_version: str
    tiers: list[str]  # healthiest first


def playbook(settings: Settings, tier_names: list[str]):  # -> serving.explain.Playbook
    """The product's default playbooks, overridden per tier name and domain from `scoring`."""
    from serving.online import playbook_for

    return playbook_for(tier_names, settings.scoring.playbooks, settings.scoring.domain_actions)


def _scoring_model(settings: Settings):  # -> (Tracking, mlflow ModelVersion)
    """The registered version under `scoring.model_alias` (the champion), or a LookupError that
    says how to make one."""
    from training import tracking as trk

    t = tracking(settings)
    alias = settings.scoring.model_alias
    try:
        return t, trk.client(t).get_model_version_by_alias(t.registered_model, alias)
    except Exception as exc:  # mlflow raises its own RESOURCE_DOES_NOT_EXIST
        raise LookupError(
            f"no model {t.registered_model}@{alias}: run `healthscore train` and "
            "`healthscore promote` first"
        ) from exc


def score(
    settings: Settings,
    as_of: date | None = None,
    output: Path | None = None,
    fmt: str = "parquet",
    progress: Callable[[int, int], None] | None = None,
) -> ScoreRun:
    """Score every active account as of `as_of` (default: the end of the data) with the
    registered model under `scoring.model_alias`; write the output and the history partition."""
    import pandas as pd

    from features import store as fstore
    from features.health_model_mlflow import load_health_model
    from features.io import read_source
    from serving import batch

    t, mv = _scoring_model(settings)
    model = load_health_model(f"models:/{t.registered_model}/{mv.version}")
    if as_of is None:
        as_of = end_of_data(settings)
    frame = batch.snapshot(fstore.open_store(store_config(settings)), as_of)
    if frame.empty:
        raise LookupError(f"no account has a feature snapshot on {as_of}: nothing to score")
    scores = batch.score_frame(
        model,
        frame,
        playbook(settings, model.tiers.names),
        chunk_size=settings.scoring.chunk_size,
        progress=progress,
        top=settings.scoring.top_drivers,
        context_domains=tuple(settings.scoring.context_domains),
        min_risk_pull=settings.scoring.min_risk_pull,
    )
    scores.insert(1, "as_of", pd.Timestamp(as_of))
    scores["model_version"] = str(mv.version)
    scores["features_as_of"] = frame["features_as_of"].to_numpy()
    try:
        if is_table(settings):
            from features.table import ACCOUNTS

            accounts = pd.read_parquet(settings.feature_dir / ACCOUNTS)
        else:
            accounts = read_source(settings.source_dir, "accounts")
        info = [
            c
            for c in ("account_name", "csm_owner", "region", "arr")
            if c in accounts and c not in scores
        ]
        scores = scores.merge(accounts[["account_id", *info]], on="account_id", how="left")
    except FileNotFoundError:
        pass
    history = settings.scores_dir / "history"
    scores = batch.add_trend(scores, batch.previous_scores(history, as_of))
    target = Path(output) if output else settings.scores_dir / f"scores.{fmt}"
    batch.write_atomic(scores, target, fmt)
    batch.write_history(history, as_of, scores)
    return ScoreRun(scores, target, as_of, str(mv.version), model.tiers.names)


def monitor(settings: Settings, report_dir: Path | None = None, progress=None):
    """Drift of the latest score run against the champion's training-time population, and how
    past score runs fared against the renewals decided since; returns monitoring.MonitorResult.

    Reference: every account's offline snapshot on the prediction day of the champion's newest
    test decision, scored with the champion: the latest world the model was measured on.
    Current: the latest score run's snapshot and scores. Both are whole populations on one day,
    so their mix of contract ages and renewal dates is alike and a difference means the book
    changed."""
    import pandas as pd

    from features import store as fstore
    from features.catalog import feature_by_name
    from features.health_model_mlflow import load_health_model
    from monitoring.drift import DriftConfig
    from monitoring.performance import performance_from_files
    from monitoring.report import run_monitor
    from serving import batch
    from training import tracking as trk

    say = progress or (lambda _msg: None)
    t, mv = _scoring_model(settings)
    history = settings.scores_dir / "history"
    runs = sorted(history.glob("as_of=*/scores.parquet"))
    if not runs:
        raise LookupError(f"{history}: no score run yet: run `healthscore score` first")
    as_of = runs[-1].parent.name.split("=", 1)[1]
    client = trk.client(t)
    params = client.get_run(mv.run_id).data.params
    # The newest population the champion was measured on: the prediction day of its last test
    # decision. Training and the first scoring on the same data then show no drift by design.
    last = pd.Timestamp(params["test_last_renewal"])
    newest = last - pd.Timedelta(days=int(params.get("lead_days", settings.features.lead_days)))
    # Same weekday as the current run: weekly usage cycles must not read as drift.
    newest -= pd.Timedelta(days=(pd.Timestamp(as_of) - newest).days % 7)
    cutoff = str(newest.date())

    say(f"reading the snapshots of {cutoff} (reference) and {as_of} (current)")
    store = fstore.open_store(store_config(settings))
    model = load_health_model(f"models:/{t.registered_model}/{mv.version}")
    reference = batch.snapshot(store, pd.Timestamp(cutoff).date())
    if reference.empty:
        raise LookupError(f"no feature snapshot on {cutoff}, the champion's newest test day")
    reference = pd.concat([reference, model.predict(reference)], axis=1)
    current = batch.snapshot(store, pd.Timestamp(as_of).date())
    scored = pd.read_parquet(
        runs[-1], columns=["account_id", "renewal_probability", "health_score", "tier"]
    )
    current = current.merge(scored, on="account_id", how="inner")
    names = list(model.features)
    catalog = feature_by_name()
    # Strings and flags are compared as categories (Jensen-Shannon), numbers by Wasserstein.
    categorical = [
        n
        for n in names
        if n in model.categorical
        or (n in catalog and catalog[n].type in ("string", "bool"))
        or pd.api.types.is_bool_dtype(current[n])
    ]

    if is_table(settings):  # a flat table holds no renewals decided after a score run
        perf = None
    else:
        say("judging past score runs against the renewals decided since")
        perf = performance_from_files(
            history, settings.source_dir, settings.monitoring.horizon_days
        )

    mon = settings.monitoring
    if client.get_experiment_by_name(mon.experiment) is None:  # artifacts in the workspace
        client.create_experiment(
            mon.experiment,
            artifact_location=(settings.mlflow_artifact_dir / "monitoring").resolve().as_uri(),
        )
    say(f"Evidently drift report on {len(current):,} accounts")
    return run_monitor(
        reference,
        current,
        names,
        categorical,
        Path(report_dir) if report_dir else settings.monitoring_dir,
        performance=perf,
        config=DriftConfig(
            num_threshold=mon.num_threshold,
            cat_threshold=mon.cat_threshold,
            score_threshold=mon.score_threshold,
            elapsed_time_threshold=mon.elapsed_time_threshold,
            significance=mon.significance,
            min_drifted=mon.min_drifted,
            sample_size=mon.sample_size,
        ),
        tracking_uri=settings.mlflow_tracking_uri,
        experiment=mon.experiment,
        model_name=t.registered_model,
        model_version=str(mv.version),
        model_run_id=mv.run_id,
        reference_label=f"all accounts on {cutoff} (the champion's newest test day)",
        current_label=f"score run of {as_of}",
    )


def dashboard(
    settings: Settings, scores: Path | None = None, output: Path | None = None
) -> tuple[Path, int]:
    """The one-page health dashboard of the latest score run (and its history) as one HTML file;
    returns where it went and how many accounts it shows."""
    from datetime import UTC, datetime

    import pandas as pd

    from serving import dashboard as dash

    source = Path(scores) if scores else settings.scores_dir / "scores.parquet"
    if not source.is_file():
        raise LookupError(f"{source}: no scores yet: run `healthscore score` first")
    if source.suffix != ".parquet":
        raise LookupError(
            f"{source}: the dashboard reads the Parquet output of `healthscore score`"
        )
    frame = pd.read_parquet(source)
    versions = frame["model_version"].dropna().unique() if "model_version" in frame else []
    # Configured bands keep an empty tier's light (used only when they name the frame's tiers).
    bands = settings.tiers.fixed if settings.tiers.policy == "fixed" else settings.tiers.quantile
    page = dash.render_dashboard(
        frame,
        dash.load_history(settings.scores_dir / "history"),
        dash.tiers_from_scores(frame, [(b.name, b.colour) for b in bands]),
        generated_at=datetime.now(UTC),
        model_version=str(versions[0]) if len(versions) == 1 else None,
        context_domains=tuple(settings.scoring.context_domains),
    )
    target = Path(output) if output else settings.scores_dir / "dashboard.html"
    return dash.write_dashboard(target, page), len(frame)


def service_config(settings: Settings):  # -> serving.schemas.ServiceConfig
    """The online service's configuration from the `serving`, `scoring` and `stores` sections."""
    from serving.schemas import ServiceConfig

    sc, sv = settings.scoring, settings.serving
    return ServiceConfig(
        tracking_uri=settings.mlflow_tracking_uri,
        registered_model=settings.training.registered_model,
        model_alias=sc.model_alias,
        store=store_config(settings),
        playbooks=sc.playbooks,
        domain_actions=sc.domain_actions,
        context_domains=sc.context_domains,
        top_drivers=sc.top_drivers,
        max_ids=sv.max_ids,
        api_key=sv.api_key,
        poll_seconds=sv.poll_seconds,
        workers=sv.workers,
        threads=sv.threads,
        dashboard_path=str((settings.scores_dir / "dashboard.html").resolve()),
    )
