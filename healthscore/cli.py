"""The `healthscore` command line: thin Typer entry points over `healthscore.pipeline`."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthscore.settings import Settings, SettingsError, load_settings

console = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="healthscore",
    help=(
        "Customer health scores: will each account renew, why, since when, and what to do.\n\n"
        "Start with [bold]healthscore demo[/bold]: it generates a synthetic book of business and "
        "runs every stage on the embedded default (all state in ./.healthscore).\n\n"
        "Configuration: healthscore.yaml, HEALTHSCORE_* variables, then flags."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class _State:
    def __init__(self, config: Path | None, workspace: Path | None) -> None:
        self.config, self.workspace = config, workspace
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config, workspace=self.workspace)
            except SettingsError as exc:
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(2) from None
        return self._settings


@app.callback()
def main(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Folder holding all state \\[default: ./.healthscore].",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Configuration file \\[default: ./healthscore.yaml if present].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Shared options; settings are loaded lazily by the command that needs them."""
    ctx.obj = _State(config, workspace)
    _quiet_libraries()


def _quiet_libraries() -> None:
    """The CLI prints its own progress; MLflow's INFO lines and download bars are noise here."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _generate(settings: Settings, total: int, **kwargs: object) -> tuple[Path, dict]:
    """Generate the book of business with a progress bar over accounts."""
    from healthscore import pipeline

    with _bar() as bar:
        task = bar.add_task("generating accounts", total=total)
        return pipeline.generate(
            settings, progress=lambda done, _: bar.update(task, completed=done), **kwargs
        )


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@app.command()
def generate(
    ctx: typer.Context,
    accounts: Annotated[int | None, typer.Option(help="Number of accounts.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same data.")] = None,
    months: Annotated[int | None, typer.Option(help="Months of history.", min=1, max=120)] = None,
    end_date: Annotated[
        datetime | None, typer.Option(help="Last day of the history.", formats=["%Y-%m-%d"])
    ] = None,
    drift: Annotated[
        bool,
        typer.Option(
            "--drift",
            help="Shift the most recent months (usage drop in SMB, mid-market price "
            "rise) to exercise drift monitoring.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder \\[default: <workspace>/data/raw].", show_default=False),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes to use.", min=1)] = None,
    example_table: Annotated[
        Path | None,
        typer.Option(
            help="Instead: write a flat CRM churn export (CSV, or Parquet by its name) shaped "
            "like a telecom/SaaS CRM table, one row per customer (--accounts rows, default "
            "7,000), for `healthscore init --from-table`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate a realistic synthetic B2B SaaS book of business in the data contract's shape.

    Every account has a latent health that drives usage, adoption, engagement, support,
    surveys, billing and its renewal decisions. The output replaces the target folder atomically
    and includes manifest.json with row counts and the ceiling AUC (the best any model can do).

    [bold]Example[/bold]: healthscore generate --accounts 10000 --seed 7 --out data/book
    """
    if example_table is not None:
        from features.synthetic.crm_table import write_crm_table

        path = write_crm_table(example_table, rows=accounts or 7_000, seed=seed or 7)
        console.print(
            f"[green]✓[/green] {path}: {accounts or 7_000:,} customers, one row each, churn "
            f"column [bold]Churn[/bold]\nnext: healthscore init --from-table {path}"
        )
        return
    settings = ctx.obj.settings
    overrides = dict(
        accounts=accounts, seed=seed, months=months, end_date=end_date.date() if end_date else None
    )
    total = accounts or settings.generate.accounts
    try:
        target, manifest = _generate(
            settings, total, out=out, drift=drift, workers=workers, **overrides
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_manifest(target, manifest)


def _print_manifest(target: Path, manifest: dict) -> None:
    table = Table(title=f"Book of business in {target}", show_edge=False)
    table.add_column("source")
    table.add_column("rows", justify="right")
    for name, rows in manifest["rows"].items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    churn = ", ".join(f"{k} {v:.1%}" for k, v in manifest["annual_churn_rate_by_segment"].items())
    console.print(
        f"window {manifest['window']['start']} → {manifest['window']['end']}; "
        f"{manifest['renewal_decisions']:,} renewal decisions; annual churn: {churn}\n"
        f"ceiling AUC (generator's true renewal probability): {manifest['ceiling_auc']}; "
        f"{_human(manifest['bytes'])} on disk in {manifest['seconds']:.1f} s"
    )
    if manifest.get("drift"):
        console.print(
            f"[yellow]drift from {manifest['drift']['start']}:[/yellow] "
            + "; ".join(manifest["drift"]["changes"])
        )


@app.command()
def validate(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of raw sources \\[default: <workspace>/data/raw].", show_default=False
        ),
    ] = None,
) -> None:
    """Check raw sources against the data contract (docs/data-contract.md); writes nothing.

    Checks schema, types, keys, ranges, allowed values, time order, row rules and that every
    account_id exists. Each problem names the file, the column and example rows. Exits with
    status 1 when there are errors.

    [bold]Example[/bold]: healthscore validate exports/2026-11
    """
    from healthscore import pipeline

    t0 = time.perf_counter()
    if pipeline.is_table(ctx.obj.settings) and data_dir is None:
        with console.status("validating the account table"):
            path, errors, warnings, facts = pipeline.validate_table(ctx.obj.settings)
        for w in warnings:
            err.print(f"[yellow]warning:[/yellow] {w}")
        for e in errors:
            err.print(f"[red]error:[/red] {e}")
        if errors:
            err.print(f"[red]✗ invalid:[/red] {path} — {len(errors)} error(s); nothing was written")
            raise typer.Exit(1)
        console.print(
            f"[green]✓ valid:[/green] {path} — {facts['rows']:,} rows, {facts['features']} "
            f"feature columns; {facts['renewed']:,} renewed, {facts['churned']:,} churned, "
            f"{facts['undecided']:,} undecided; {facts['snapshot_dates']} snapshot date(s) "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        return
    with console.status("validating") as status:
        target, report = pipeline.validate(
            ctx.obj.settings, data_dir, progress=lambda msg: status.update(f"validating {msg}")
        )
    _print_report(target, report, time.perf_counter() - t0)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(target: Path, report: object, seconds: float) -> None:
    findings = [("error", f) for f in report.errors] + [("warning", f) for f in report.warnings]
    if findings:
        table = Table(show_edge=False, show_lines=False)
        for col in ("", "file", "column", "check", "rows", "problem"):
            table.add_column(col, overflow="fold")
        for level, f in findings:
            colour = "red" if level == "error" else "yellow"
            table.add_row(
                f"[{colour}]{level}[/{colour}]",
                str(f.file),
                f.column or "",
                f.check,
                f"{f.count:,}" if f.count else "",
                f.message,
            )
            for ex in f.examples[:3]:
                table.add_row("", "", "", "", "", f"[dim]e.g. {ex}[/dim]")
        console.print(table)
    rows = sum(report.rows.values())
    if report.ok:
        console.print(
            f"[green]✓ valid:[/green] {target} — {len(report.rows)} sources, "
            f"{rows:,} rows checked in {seconds:.1f} s"
        )
    else:
        err.print(
            f"[red]✗ invalid:[/red] {target} — {len(report.errors)} error(s); nothing was written"
        )


@app.command()
def demo(
    ctx: typer.Context,
    accounts: Annotated[int | None, typer.Option(help="Number of accounts to generate.")] = None,
) -> None:
    """Run the whole product on the embedded default, from raw data to results.

    Generates a synthetic book of business into the workspace, validates it, builds the feature
    store and loads it online, trains the health model beside its baselines, registers it,
    promotes it to champion, scores every account, monitors drift and writes the dashboard;
    then prints where everything is and what to try next.

    [bold]Example[/bold]: healthscore demo --accounts 2000
    """
    from healthscore import pipeline

    settings: Settings = ctx.obj.settings
    t0 = time.perf_counter()
    console.rule("[bold]1. generate[/bold] a synthetic book of business")
    total = accounts or settings.generate.accounts
    target, manifest = _generate(settings, total, accounts=accounts)
    _print_manifest(target, manifest)
    console.rule("[bold]2. validate[/bold] it against the data contract")
    t1 = time.perf_counter()
    with console.status("validating"):
        _, report = pipeline.validate(settings, target)
    _print_report(target, report, time.perf_counter() - t1)
    if not report.ok:
        raise typer.Exit(1)
    console.rule("[bold]3. features[/bold]: daily snapshots, Feast definitions, online store")
    _build_features(settings)
    with console.status("materializing"):
        day = pipeline.features_materialize(settings)
    console.print(f"feature views in {settings.feature_dir}; online store as of {day}")
    console.rule("[bold]4. train[/bold] the health model beside its baselines (MLflow)")
    t1 = time.perf_counter()
    with console.status("training") as status:
        run, split, result = pipeline.train(
            settings, run_name="demo", progress=lambda msg: status.update(msg)
        )
    _print_training(settings, run, split, result, time.perf_counter() - t1)
    console.rule("[bold]5. promote[/bold] the challenger to champion")
    promoted = pipeline.promote(settings, None, force=False, reason="")
    state = "is" if promoted.promoted else "stays"
    console.print(
        f"{settings.training.registered_model} version "
        f"{promoted.version if promoted.promoted else promoted.previous} {state} "
        f"[bold]@champion[/bold]: {promoted.reason}"
    )
    console.rule("[bold]6. score[/bold] every account: tier, drivers, actions")
    t1 = time.perf_counter()
    with _bar() as bar:
        task = bar.add_task("scoring accounts", total=None)
        scored = pipeline.score(
            settings, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    _print_scores(scored, 5, time.perf_counter() - t1)
    console.rule("[bold]7. monitor[/bold]: drift against the champion's data (Evidently)")
    t1 = time.perf_counter()
    with console.status("monitoring") as status:
        monitored = pipeline.monitor(settings, progress=lambda msg: status.update(msg))
    _print_monitor(monitored, time.perf_counter() - t1)
    console.rule("[bold]8. dashboard[/bold] for the CS team")
    page, shown = pipeline.dashboard(settings)
    console.print(f"[green]✓[/green] dashboard of {shown:,} accounts → {page}")
    console.rule("[bold]done[/bold]")
    console.print(
        f"Made in {time.perf_counter() - t0:.0f} s:\n"
        f"  raw sources      {target}/<source>/part-*.parquet (manifest.json, _truth/)\n"
        f"  feature store    {settings.feature_dir} (snapshots), {settings.feature_repo_dir} "
        "(Feast registry, online store)\n"
        f"  MLflow           {settings.mlflow_tracking_uri}\n"
        f"  scores           {scored.path} (history in {settings.scores_dir / 'history'})\n"
        f"  monitoring       {monitored.path / 'index.html'}\n"
        f"  dashboard        {page}"
    )
    console.print(
        "\n[bold]Next[/bold]\n"
        f"  open the dashboard      {page.resolve().as_uri()}\n"
        "  serve the API           healthscore serve   (then: curl -s -H 'Content-Type: "
        'application/json\' -d \'{"account_ids": ["A0000001"]}\' http://127.0.0.1:3000/score)\n'
        f"  browse the experiments  mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}\n"
        "  retrain and compare     healthscore train --num-leaves 31 && healthscore compare\n"
        "  one account's features  healthscore features show A0000001\n"
        "  notebooks               notebooks/01-explore-book.ipynb, 02-retrain-compare.ipynb, "
        "03-monitoring.ipynb"
    )


features_app = typer.Typer(
    help="The Feast feature store: build snapshots, load them online, inspect an account.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(features_app, name="features")


def _as_of(value: datetime | None):
    return value.date() if value else None


def _date_option(help_text: str):  # -> typer.models.OptionInfo
    return typer.Option(help=help_text, formats=["%Y-%m-%d"], show_default=False)


def _build_features(settings: Settings, as_of=None) -> dict:
    """Feature snapshots + Feast definitions, with a progress bar over the views."""
    from healthscore import pipeline

    with _bar() as bar:
        task = bar.add_task("computing feature views", total=7)
        return pipeline.features_apply(
            settings,
            as_of=as_of,
            progress=lambda name, i, n: bar.update(
                task, completed=i, total=n, description=f"feature view {name}"
            ),
        )


@features_app.command("apply")
def features_apply(
    ctx: typer.Context,
    as_of: Annotated[
        datetime | None,
        _date_option("Last day to compute snapshots for \\[default: end of the data]."),
    ] = None,
) -> None:
    """Compute daily feature snapshots per health domain from the raw sources (DuckDB SQL in
    features/sql/) and register the Feast definitions and the FeatureService account_health_v1.

    [bold]Example[/bold]: healthscore features apply
    """

    settings = ctx.obj.settings
    t0 = time.perf_counter()
    written = _build_features(settings, _as_of(as_of))
    console.print(
        f"[green]✓[/green] {len(written)} feature views in {settings.feature_dir}, "
        f"registered in {settings.feature_repo_dir} ({time.perf_counter() - t0:.0f} s)"
    )


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    as_of: Annotated[
        datetime | None,
        _date_option("Serve the snapshots of this day \\[default: end of the data]."),
    ] = None,
) -> None:
    """Load every active account's latest snapshot into the online store (SQLite or Redis).
    Running it twice changes nothing.

    [bold]Example[/bold]: healthscore features materialize --as-of 2026-10-31
    """
    from healthscore import pipeline

    settings = ctx.obj.settings
    with console.status("materializing"):
        day = pipeline.features_materialize(settings, _as_of(as_of))
    console.print(
        f"[green]✓[/green] online store ({settings.stores.online_store}) holds the "
        f"snapshots as of {day}"
    )


@features_app.command("show")
def features_show(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help="Account to show, e.g. A0000042.")],
) -> None:
    """Show an account's current (online) features, grouped by health domain.

    [bold]Example[/bold]: healthscore features show A0000042
    """
    from healthscore import pipeline

    df = pipeline.features_show(ctx.obj.settings, account_id)
    if not df["found"].any():
        err.print(
            f"[red]error:[/red] account '{account_id}' is not in the online store "
            "(unknown, no longer a customer, or not materialized yet)"
        )
        raise typer.Exit(1)
    table = Table(title=f"Features of {account_id}", show_edge=False)
    for col in ("domain", "feature", "value", "meaning"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for domain, group in df.groupby("domain", sort=False):
        for i, (_, r) in enumerate(group.iterrows()):
            v = r["value"]
            text = "—" if v is None or v != v else (f"{v:,.2f}" if isinstance(v, float) else str(v))
            table.add_row(str(domain) if i == 0 else "", r["feature"], text, r["meaning"])
        table.add_section()
    console.print(table)


# -- training, comparison, promotion -----------------------------------------------------------

_METRICS = [
    ("roc_auc", "AUC", "{:.4f}"),
    ("pr_auc_churn", "PR-AUC", "{:.4f}"),
    ("log_loss", "logloss", "{:.4f}"),
    ("brier", "Brier", "{:.4f}"),
    ("ece", "ECE", "{:.4f}"),
    ("top_decile_lift", "lift@10%", "{:.2f}"),
]


def _fmt(fmt: str, value: object) -> str:
    return "—" if value is None or value != value else fmt.format(value)


@app.command()
def train(
    ctx: typer.Context,
    run_name: Annotated[str | None, typer.Option(help="MLflow run name.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed \\[default: training.seed].")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="LightGBM learning rate.")] = None,
    num_leaves: Annotated[int | None, typer.Option(help="LightGBM leaves per tree.")] = None,
    calibration: Annotated[
        str | None, typer.Option(help="auto | isotonic | platt | none \\[default: auto].")
    ] = None,
    tune: Annotated[
        int,
        typer.Option(
            help="Optuna trials searching LightGBM's parameters on the validation period "
            "(each a nested MLflow run) before the final fit; 0 = no search.",
            min=0,
        ),
    ] = 0,
) -> None:
    """Train the renewal model on past renewal decisions and register it as the challenger.

    Builds a point-in-time training set from the FeatureService (each renewal seen
    features.lead_days before its date), splits it by time (train on the oldest decisions,
    validate, test on the newest), fits LightGBM with early stopping and a calibrator, and the
    weighted scorecard and logistic regression baselines on the same periods. Everything is
    logged to MLflow; the model becomes a new version of the registered model with the alias
    [bold]challenger[/bold]. Needs [bold]healthscore features apply[/bold] first.

    [bold]Example[/bold]: healthscore train --run-name more-leaves --num-leaves 31;
    healthscore train --tune 30
    """
    from healthscore import pipeline

    settings = ctx.obj.settings
    if calibration not in (None, "auto", "isotonic", "platt", "none"):
        err.print(f"[red]error:[/red] --calibration: unknown method {calibration!r}")
        raise typer.Exit(2)
    t0 = time.perf_counter()
    with console.status("training") as status:
        run, split, result = pipeline.train(
            settings,
            run_name=run_name,
            progress=lambda msg: status.update(msg),
            tune=tune,
            seed=seed,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            calibration=calibration,
        )
    _print_training(settings, run, split, result, time.perf_counter() - t0)


def _print_training(settings: Settings, run, split, result, seconds: float) -> None:
    d = split.describe()
    console.print(
        f"train {d['train_rows']:,} decisions ({d['train_first_renewal']} → "
        f"{d['train_last_renewal']}), validation {d['validation_rows']:,}, "
        f"test {d['test_rows']:,} ({d['test_first_renewal']} → {d['test_last_renewal']}, "
        f"churn {d['test_churn_rate']:.1%})"
    )
    table = Table(title="Test period: renewals the models have never seen", show_edge=False)
    table.add_column("model")
    for _, label, _ in _METRICS:
        table.add_column(label, justify="right")
    names = {
        "lightgbm": "LightGBM",
        "scorecard": "scorecard",
        "logistic_regression": "logistic",
    }
    for key, label in names.items():
        m = run.metrics[key]
        table.add_row(label, *(_fmt(f, m[k]) for k, _, f in _METRICS))
    console.print(table)
    tiers = ", ".join(
        f"{name} {s['n']:,} (churn {_fmt('{:.1%}', s['churn_rate'])})"
        for name, s in run.tiers.items()
    )
    console.print(f"tiers on the test period: {tiers}")
    console.print(
        f"calibration: {result.model.calibrator.method}; {result.best_iteration} trees; "
        f"{seconds:.0f} s (MLflow {run.tracking_seconds:.1f} s)"
    )
    console.print(
        f"[green]✓[/green] run {run.run_id} → {settings.training.registered_model} "
        f"version {run.version} [bold]@challenger[/bold]. Next: [bold]healthscore compare"
        f"[/bold], [bold]healthscore promote[/bold]; [bold]mlflow ui --backend-store-uri "
        f"{settings.mlflow_tracking_uri}[/bold]"
    )


@app.command()
def compare(
    ctx: typer.Context,
    last: Annotated[int, typer.Option(help="How many recent model versions.", min=1)] = 5,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the AUC-delta interval.", min=100)
    ] = 1000,
) -> None:
    """Compare recent model versions side by side on the same test window.

    Every version is scored on the holdout of the newest one (renewals none of them trained on
    when they share its split), with its delta in ROC AUC against the champion and a paired
    bootstrap 95% confidence interval.

    [bold]Example[/bold]: healthscore compare --last 3
    """
    from healthscore import pipeline

    try:
        with console.status("scoring each version on the same holdout"):
            df = pipeline.compare(ctx.obj.settings, last=last, n_boot=bootstrap)
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table(title="Model versions side by side on the newest holdout", show_edge=False)
    table.add_column("")
    for _, r in df.iterrows():
        table.add_column(
            f"v{r['version']}" + (f" @{r['aliases']}" if r["aliases"] else ""), justify="right"
        )
    table.add_row("run", *(str(v) for v in df["run_name"]))
    for key, label, fmt in _METRICS:
        table.add_row(label, *(_fmt(fmt, v) for v in df[key]))
    if "auc_delta_vs_champion" in df.columns:
        table.add_row("ΔAUC vs champion", *(f"{v:+.4f}" for v in df["auc_delta_vs_champion"]))
        table.add_row(
            "  95% CI",
            *(
                f"[{lo:+.4f}, {hi:+.4f}]"
                for lo, hi in zip(df["auc_delta_low"], df["auc_delta_high"], strict=True)
            ),
        )
    console.print(table)
    console.print(
        f"holdout: {int(df['n'].iloc[0]):,} renewal decisions. AUC and PR-AUC (churn as the "
        "positive class): higher is better; logloss, Brier, ECE (calibration error): lower is "
        "better; lift@10%: churn rate among the riskiest 10% over the overall churn rate."
    )


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option(help="Version to promote \\[default: the challenger].")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if not better (needs --reason).")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept with the model version.")] = "",
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Point champion back at the version it replaced.")
    ] = False,
) -> None:
    """Make the challenger the champion, only if it is better on the same holdout.

    Better: a higher ROC AUC and a log loss no worse than the champion's, both on the
    challenger's test period. The first model becomes champion as it is. --force --reason
    overrides the check; --rollback re-points champion to the previous one. Batch scoring and
    the service use the champion.

    [bold]Examples[/bold]: healthscore promote; healthscore promote --rollback --reason "bad data"
    """
    from healthscore import pipeline

    settings = ctx.obj.settings
    if force and not reason:
        err.print('[red]error:[/red] --force needs --reason "..." (it is logged)')
        raise typer.Exit(2)
    try:
        if rollback:
            result = pipeline.rollback(settings, reason or "no reason given")
        else:
            result = pipeline.promote(settings, version, force, reason)
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    name = settings.training.registered_model
    if result.promoted:
        console.print(
            f"[green]✓[/green] {name} version {result.version} is [bold]@champion[/bold] "
            f"(was {result.previous or 'none'}): {result.reason}"
        )
    else:
        err.print(f"[yellow]not promoted:[/yellow] version {result.version}: {result.reason}")
        raise typer.Exit(1)


# -- batch scoring ---------------------------------------------------------------------------


@app.command()
def score(
    ctx: typer.Context,
    as_of: Annotated[
        datetime | None, _date_option("Score as of this day \\[default: end of the data].")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Output file \\[default: <workspace>/scores/scores.<format>].", show_default=False
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    top: Annotated[int, typer.Option(help="At-risk accounts to list.", min=0)] = 10,
) -> None:
    """Score every active account: renewal probability, 0-100 health score, tier, the drivers
    pulling the score down or up (by health domain, in words), the trend since the previous
    run and the recommended actions.

    Uses the champion model (scoring.model_alias) on the offline feature store. The output is
    written atomically; each run also appends to the score history in <workspace>/scores/history.

    [bold]Example[/bold]: healthscore score --as-of 2026-10-31 --format csv
    """
    from healthscore import pipeline

    if fmt not in ("parquet", "csv"):
        err.print(f"[red]error:[/red] --format: {fmt!r} is not parquet or csv")
        raise typer.Exit(2)
    settings = ctx.obj.settings
    t0 = time.perf_counter()
    try:
        with _bar() as bar:
            task = bar.add_task("scoring accounts", total=None)
            run = pipeline.score(
                settings,
                _as_of(as_of),
                output,
                fmt,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_scores(run, top, time.perf_counter() - t0)


def _print_scores(run, top: int, seconds: float) -> None:
    import pandas as pd

    from serving.batch import tier_summary

    scores = run.scores
    summary = tier_summary(scores, run.tiers)
    colours = dict(zip(scores["tier"], scores["tier_colour"], strict=True))
    has_arr = "arr" in scores and scores["arr"].notna().any()
    table = Table(
        title=f"Health of {len(scores):,} accounts on {run.as_of} (model v{run.model_version})",
        show_edge=False,
    )
    cols = (
        ("tier", "accounts", "share", "ARR", "ARR share")
        if has_arr
        else ("tier", "accounts", "share")
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "tier" else "right")
    for tier, r in summary.iterrows():
        c = colours.get(tier, "white")
        cells = [f"[{c}]●[/{c}] {tier}", f"{int(r['accounts']):,}", f"{r['share']:.1%}"]
        if has_arr:
            cells += [f"${r['arr']:,.0f}", f"{r['arr_share']:.1%}"]
        table.add_row(*cells)
    console.print(table)
    # With revenue, the accounts that matter most are the largest at risk; without, the lowest.
    risky = scores[scores["tier"] != run.tiers[0]]
    risky = (
        risky.sort_values(["arr", "health_score"], ascending=[False, True])
        if has_arr
        else risky.sort_values(["health_score", "account_id"])
    ).head(top)
    if len(risky):
        title = f"Top {len(risky)} at-risk accounts by " + ("ARR" if has_arr else "lowest score")
        t = Table(title=title, show_edge=False)
        cols = ("account", "ARR", "score", "Δ", "tier", "main risk")
        for col in cols if has_arr else tuple(c for c in cols if c != "ARR"):
            t.add_column(col, justify="right" if col in ("ARR", "score", "Δ") else "left")
        for _, r in risky.iterrows():
            change = r["score_change"]
            cells = [
                f"{r.get('account_name') or ''} {r['account_id']}".strip(),
                *([f"${r['arr']:,.0f}"] if has_arr else []),
                str(r["health_score"]),
                "—" if pd.isna(change) else f"{int(change):+d}",
                str(r["tier"]),
                str(r["main_risk_domain"] or "—"),
            ]
            t.add_row(*cells)
        console.print(t)
    console.print(
        f"[green]✓[/green] {len(scores):,} accounts scored in {seconds:.0f} s → {run.path}"
    )


@app.command()
def monitor(
    ctx: typer.Context,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where report folders go \\[default: <workspace>/monitoring].", show_default=False
        ),
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option(
            "--fail-on-drift", help="Exit with status 3 when drift is found (for cron and CI)."
        ),
    ] = False,
) -> None:
    """Report data, score and tier drift of the latest score run against the champion's
    training-time population (Evidently), data quality, and — once renewals have happened — how
    right past score runs were (AUC, calibration, churn per tier).

    Writes an HTML report and summary.json into a new folder, logs both to the MLflow experiment
    monitoring.experiment (tagged with the model version) and ends with a verdict line.

    [bold]Example[/bold]: healthscore monitor --fail-on-drift || echo "retrain recommended"
    """
    from healthscore import pipeline

    t0 = time.perf_counter()
    try:
        with console.status("monitoring") as status:
            result = pipeline.monitor(
                ctx.obj.settings, report_dir, progress=lambda msg: status.update(msg)
            )
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_monitor(result, time.perf_counter() - t0)
    if fail_on_drift and result.drift:
        raise typer.Exit(3)


def _print_monitor(result, seconds: float) -> None:
    d = result.drift_result
    table = Table(title="Drifted features (Evidently)", show_edge=False)
    for col in ("feature", "method", "distance", "threshold"):
        table.add_column(col, justify="left" if col in ("feature", "method") else "right")
    rows = d.features.set_index("feature")
    for name in d.drifted_features[:15]:
        r = rows.loc[name]
        table.add_row(name, str(r["method"]), f"{r['statistic']:.3f}", f"{r['threshold']:.2f}")
    if d.drifted_features:
        console.print(table)
    if d.not_judged:
        console.print(
            f"not judged: {len(d.not_judged)} column(s), e.g. "
            + "; ".join(f"{k} ({v})" for k, v in list(d.not_judged.items())[:3])
        )
    perf = result.performance
    if len(perf):
        overall = perf[perf["tier"] == perf["tier"].iloc[0]]
        last = overall.iloc[-1]
        console.print(
            f"were we right? {len(overall)} past score run(s) with renewals decided since; "
            f"latest judged ({last['as_of']}): AUC {last['auc']:.3f}, ECE {last['ece']:.3f} "
            f"on {int(last['decisions']):,} decisions"
        )
    else:
        console.print("were we right? no renewal decided yet after a score run")
    colour = "yellow" if result.drift else "green"
    console.print(f"[{colour}]verdict:[/{colour}] {result.verdict}")
    console.print(
        f"[green]✓[/green] monitoring report in {seconds:.0f} s → {result.path}"
        + (f" (MLflow run {result.mlflow_run_id})" if result.mlflow_run_id else "")
    )


@app.command()
def dashboard(
    ctx: typer.Context,
    scores: Annotated[
        Path | None,
        typer.Option(
            help="Scores to show \\[default: <workspace>/scores/scores.parquet].",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="HTML file to write \\[default: <workspace>/scores/dashboard.html].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the one-page health dashboard for CSMs: traffic lights with the ARR at stake, the
    at-risk list sorted by ARR (filter by tier, segment, CSM owner), and per account the score's
    trend, the domain breakdown, the drivers in words and the recommended actions.

    One self-contained HTML file from the latest [bold]healthscore score[/bold] run: open it in a
    browser, no server needed (the service also shows it at /).

    [bold]Example[/bold]: healthscore dashboard && xdg-open .healthscore/scores/dashboard.html
    """
    from healthscore import pipeline

    t0 = time.perf_counter()
    try:
        path, n = pipeline.dashboard(ctx.obj.settings, scores, output)
    except (LookupError, ValueError) as exc:  # ValueError: serving.dashboard.DashboardError
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    size = path.stat().st_size / 1e6
    console.print(
        f"[green]✓[/green] dashboard of {n:,} accounts ({size:.1f} MB) in "
        f"{time.perf_counter() - t0:.1f} s → {path}"
    )


# -- online service ----------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address \\[default: serving.host, 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port \\[default: serving.port, 3000].", min=1)
    ] = None,
) -> None:
    """Start the online health-score service (BentoML): POST /score with account ids, POST
    /score_features with posted features, /livez and /readyz.

    Loads the champion model (scoring.model_alias) from MLflow and reads features from the Feast
    online store (run [bold]healthscore features materialize[/bold] first); a newly promoted
    champion is picked up without a restart. Set serving.api_key to require an X-API-Key header.

    [bold]Example[/bold]: healthscore serve --port 3000, then
    curl -s -H 'Content-Type: application/json' -d '{"account_ids": ["A0000001"]}'
    http://127.0.0.1:3000/score
    """
    import os
    import sys

    from healthscore import pipeline
    from serving.schemas import service_config_to_env

    settings = ctx.obj.settings
    env = os.environ | service_config_to_env(pipeline.service_config(settings))
    bentoml = str(Path(sys.executable).parent / "bentoml")
    argv = [
        bentoml,
        "serve",
        "serving.service:HealthScore",
        "--host",
        host or settings.serving.host,
        "--port",
        str(port or settings.serving.port),
    ]
    console.print(f"serving on http://{argv[4]}:{argv[6]} (Ctrl-C stops)")
    os.execve(bentoml, argv, env)  # the service replaces this process: signals go straight to it


@app.command()
def init(
    ctx: typer.Context,
    from_table: Annotated[
        Path,
        typer.Option(
            "--from-table",
            help="A flat account table (CSV or Parquet): one row per account, a churn column.",
            exists=True,
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Configuration file to write.")
    ] = Path("healthscore.yaml"),
    force: Annotated[bool, typer.Option(help="Replace an existing configuration file.")] = False,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV.")] = "utf-8",
) -> None:
    """Write a starter healthscore.yaml for a flat account table by inspecting it.

    Guesses the account id (unique per row), the churn column and which value means churned,
    an as-of date column, name and owner columns, and a health domain for every other column
    (usage, adoption, engagement, support, satisfaction, financial, contract, other).
    Identifier-like columns are excluded. Read the file, fix what it guessed wrong, then run
    `healthscore validate`.

    [bold]Example[/bold]: healthscore init --from-table crm_export.csv
    """
    from healthscore.init import starter_config

    if output.exists() and not force:
        err.print(f"[red]error:[/red] {output} exists: pass --force to replace it")
        raise typer.Exit(2)
    try:
        text, summary = starter_config(from_table, output, encoding=encoding)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text)
    tmp.replace(output)
    for line in summary:
        console.print(line)
    console.print(
        f"[green]✓[/green] wrote {output}\nnext: healthscore validate, then healthscore "
        "features apply, train, promote, score"
    )


def run() -> None:  # console-script entry point
    from features.sources import SourceError
    from features.table import TableError

    try:
        app()
    except (TableError, SourceError) as exc:  # bad input: the message names file and column
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
