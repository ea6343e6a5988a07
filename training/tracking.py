"""MLflow: one run per training, baselines as child runs, the health model in the registry.

A training run logs its parameters, lineage (FeatureService, data hash, label window, lead time,
seed), test-period metrics in one batch call, plots as PNG, the health model (registered as a new
version of `account-health` with the alias `challenger`) and the test period itself (`holdout/`),
so later comparisons score every model on the very same renewals.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.health_model_mlflow import log_health_model
from training import metrics as M
from training.data import KEYS, LABEL, Split
from training.train import TrainResult

CHAMPION, CHALLENGER = "champion", "challenger"
HOLDOUT = "holdout/holdout.parquet"
KIND_TAG = "healthscore.kind"


@dataclass(frozen=True)
class Tracking:
    """Where runs and models go. Built by the CLI from settings."""

    tracking_uri: str
    artifact_root: Path  # artifact location of experiments this creates
    experiment: str = "account-health"
    registered_model: str = "account-health"


def start_training_run(t: Tracking, run_name: str | None):
    """Open the training run early (context manager), when trials must nest under it."""
    import mlflow

    return mlflow.start_run(
        experiment_id=experiment_id(t), run_name=run_name, tags={KIND_TAG: "train"}
    )


@dataclass
class TrainingRun:
    run_id: str
    version: str
    metrics: dict[str, dict[str, float]]  # model -> metric -> value
    tiers: dict[str, M.TierStats]
    tracking_seconds: float


def client(t: Tracking):
    import mlflow

    mlflow.set_tracking_uri(t.tracking_uri)
    return mlflow.MlflowClient(t.tracking_uri)


def experiment_id(t: Tracking) -> str:
    c = client(t)
    exp = c.get_experiment_by_name(t.experiment)
    if exp is not None:
        return exp.experiment_id
    root = Path(t.artifact_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return c.create_experiment(t.experiment, artifact_location=root.as_uri())


def _batch(run_id: str, metrics: dict[str, float], params: dict, tags: dict) -> None:
    """Metrics, parameters and tags of a run in one call."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if np.isfinite(v)],
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )


def log_training(
    t: Tracking,
    result: TrainResult,
    split: Split,
    params: dict,
    lineage: dict,
    run_name: str | None = None,
    active: bool = False,
) -> TrainingRun:
    """Log a finished training to MLflow and register its health model as the challenger."""
    import mlflow

    started = time.perf_counter()
    y = split.test[LABEL].to_numpy()
    model = result.model
    scores = {name: M.classification_metrics(y, p) for name, p in result.test_predictions.items()}
    p_model = result.test_predictions["lightgbm"]
    tiers = M.churn_rate_by_tier(y, model.tiers.assign(p_model), model.tiers.names)
    exp = experiment_id(t)

    # `active`: log into the run already open (e.g. the parent of tuning trials).
    run_context = (
        contextlib.nullcontext(mlflow.active_run())
        if active
        else mlflow.start_run(experiment_id=exp, run_name=run_name, tags={KIND_TAG: "train"})
    )
    with run_context as run:
        rid = run.info.run_id
        metrics = dict(scores["lightgbm"])
        for name in ("scorecard", "logistic_regression"):
            metrics[f"auc_gain_vs_{name}"] = scores["lightgbm"]["roc_auc"] - scores[name]["roc_auc"]
        for tier, s in tiers.items():
            key = tier.replace(" ", "_")
            metrics[f"tier_{key}_churn_rate"] = s["churn_rate"]
            metrics[f"tier_{key}_share"] = s["n"] / max(len(y), 1)
        metrics["best_iteration"] = result.best_iteration
        cv = result.calibration_cv
        metrics.update({f"calibration_cv_log_loss_{k}": v for k, v in cv.items()})
        metrics.update({f"seconds_{k}": v for k, v in result.seconds.items()})
        _batch(
            rid,
            metrics,
            {**params, **lineage, **split.describe()},
            {"calibration": model.calibrator.method, "tier_policy": model.tiers.kind},
        )

        # The plots are drawn in a background thread (pyplot-free figures, nothing shared)
        # while the holdout, the baselines and the model are logged and registered here.
        with (
            tempfile.TemporaryDirectory() as tmp,
            ThreadPoolExecutor(1, thread_name_prefix="healthscore-plots") as pool,
        ):
            folder = Path(tmp)
            drawn = pool.submit(_plots, folder / "plots", result, split)
            holdout = split.test[[*KEYS, LABEL, *model.features]]
            holdout.to_parquet(folder / "holdout.parquet", index=False)
            mlflow.log_artifact(str(folder / "holdout.parquet"), "holdout")

            for name in ("scorecard", "logistic_regression"):
                with mlflow.start_run(
                    experiment_id=exp, run_name=name, nested=True, tags={KIND_TAG: "baseline"}
                ) as child:
                    extra = {"weights": result.scorecard.weights} if name == "scorecard" else {}
                    _batch(child.info.run_id, scores[name], {"baseline": name, **extra}, {})

            info = log_health_model(model, split.test)
            version = _register(info.model_uri, t.registered_model)
            c = client(t)
            c.set_registered_model_alias(t.registered_model, CHALLENGER, version)
            c.set_model_version_tag(t.registered_model, version, "run_id", rid)
            c.set_model_version_tag(
                t.registered_model, version, "test_roc_auc", f"{scores['lightgbm']['roc_auc']:.4f}"
            )
            mlflow.set_tag("registered_version", version)
            drawn.result()  # a failed plot fails the run, as before
            mlflow.log_artifacts(str(folder / "plots"), "plots")
    return TrainingRun(rid, str(version), scores, tiers, time.perf_counter() - started)


# What mlflow.register_model prints to stderr on every registration (not log records: prints).
_REGISTRATION_CHATTER = ("Successfully registered model", "Registered model", "Created version")


def _register(model_uri: str, name: str) -> str:
    """mlflow.register_model without its "Registered model ... / Created version ..." prints
    (the CLI reports the version itself); any other stderr output is passed through."""
    import io
    import sys

    import mlflow

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            version = mlflow.register_model(model_uri, name).version
    finally:
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(x for x in lines if not x.startswith(_REGISTRATION_CHATTER)))
    return str(version)


SHAP_SAMPLE = 2_000  # test rows drawn in the SHAP summary (ranking and colours from them)


def _plots(out: Path, result: TrainResult, split: Split) -> None:
    from training import plots

    out.mkdir()
    y = split.test[LABEL].to_numpy()
    preds = result.test_predictions
    model = result.model
    plots.save_png(plots.roc_figure(y, preds), out / "roc.png")
    plots.save_png(plots.calibration_figure(y, preds), out / "calibration.png")
    plots.save_png(plots.gains_figure(y, preds), out / "gains.png")
    gain = model.booster.feature_importance(importance_type="gain")
    plots.save_png(
        plots.importance_figure(model.features, gain, title="LightGBM feature importance (gain)"),
        out / "feature_importance.png",
    )
    sample = split.test.sample(min(len(split.test), SHAP_SAMPLE), random_state=0)
    contrib = model.contributions(sample)[model.features].to_numpy()
    plots.save_png(
        plots.shap_summary_figure(contrib, sample[model.features], model.features),
        out / "shap_summary.png",
    )
    p = preds["lightgbm"]
    plots.save_png(
        plots.score_distribution_figure(
            model.health_score(p), model.tiers.assign(p), model.tiers.colours
        ),
        out / "score_distribution.png",
    )


# -- registry: compare, promote, roll back -------------------------------------------------------


def _version(c, t: Tracking, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(t.registered_model, alias)
    except MlflowException:
        return None


def holdout(t: Tracking, run_id: str) -> pd.DataFrame:
    """The test period a training run was measured on."""
    import mlflow

    client(t)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HOLDOUT)
    return pd.read_parquet(path)


def _model(c, t: Tracking, version: str):
    from features.health_model_mlflow import load_health_model

    return load_health_model(f"models:/{t.registered_model}/{version}")


def evaluate_versions(
    t: Tracking, versions: list[str], on_run_id: str, n_boot: int = 1000
) -> pd.DataFrame:
    """Score model versions on one run's holdout: metrics, and the AUC delta against the
    champion with a paired-bootstrap 95% interval."""
    c = client(t)
    data = holdout(t, on_run_id)
    y = data[LABEL].to_numpy()
    champion = _version(c, t, CHAMPION)
    probs = {v: _model(c, t, v).probability(data) for v in versions}
    champ = str(champion.version) if champion is not None else None
    if champ is not None and champ not in probs:
        probs[champ] = _model(c, t, champ).probability(data)
    rows = []
    for v in versions:
        mv = c.get_model_version(t.registered_model, v)
        aliases = ",".join(mv.aliases) if mv.aliases else ""
        run_id = mv.tags.get("run_id") or mv.run_id or ""
        run_name = c.get_run(run_id).info.run_name if run_id else ""
        row = {"version": str(v), "aliases": aliases, "run_id": run_id, "run_name": run_name}
        row.update(M.classification_metrics(y, probs[v]))
        if champion is not None:
            d, lo, hi = M.paired_bootstrap_auc_delta(y, probs[v], probs[champ], n_boot)
            row.update(auc_delta_vs_champion=d, auc_delta_low=lo, auc_delta_high=hi)
        rows.append(row)
    return pd.DataFrame(rows)


def recent_versions(t: Tracking, n: int) -> list[str]:
    c = client(t)
    found = c.search_model_versions(f"name = '{t.registered_model}'")
    return [str(v) for v in sorted((int(m.version) for m in found), reverse=True)[:n]]


@dataclass
class Promotion:
    promoted: bool
    version: str
    previous: str | None
    reason: str
    comparison: pd.DataFrame | None = None


def promote(
    t: Tracking, version: str | None = None, force: bool = False, reason: str = ""
) -> Promotion:
    """Make `version` (default: the challenger) champion if it beats the champion on the
    challenger's holdout (higher ROC AUC, log loss no worse), or unconditionally with `force`."""
    c = client(t)
    if version is None:
        challenger = _version(c, t, CHALLENGER)
        if challenger is None:
            raise LookupError(f"{t.registered_model} has no {CHALLENGER}: run `healthscore train`")
        version = challenger.version
    version = str(version)
    mv = c.get_model_version(t.registered_model, version)
    champion = _version(c, t, CHAMPION)
    previous = str(champion.version) if champion is not None else None
    if previous == version:
        return Promotion(False, version, previous, f"version {version} is already {CHAMPION}")
    table = None
    if champion is None:
        verdict = "first champion"
    else:
        run_id = mv.tags.get("run_id") or mv.run_id
        table = evaluate_versions(t, [version, previous], run_id)
        new, old = table.iloc[0], table.iloc[1]
        better = new["roc_auc"] > old["roc_auc"] and new["log_loss"] <= old["log_loss"]
        verdict = (
            f"ROC AUC {new['roc_auc']:.4f} vs {old['roc_auc']:.4f} "
            f"(delta 95% CI {new['auc_delta_low']:+.4f}..{new['auc_delta_high']:+.4f}), "
            f"log loss {new['log_loss']:.4f} vs {old['log_loss']:.4f}"
        )
        if not better and not force:
            return Promotion(
                False, version, previous, f"not better than the champion: {verdict}", table
            )
        if not better:
            verdict = f"forced ({reason}); {verdict}"
    _point_champion(c, t, version, previous, reason or verdict)
    return Promotion(True, version, previous, verdict, table)


def rollback(t: Tracking, reason: str) -> Promotion:
    """Point `champion` back at the version it replaced."""
    c = client(t)
    champion = _version(c, t, CHAMPION)
    if champion is None:
        raise LookupError(f"{t.registered_model} has no {CHAMPION} to roll back")
    previous = champion.tags.get("previous_champion")
    if not previous:
        raise LookupError(f"version {champion.version} replaced no earlier {CHAMPION}")
    current = str(champion.version)
    _point_champion(c, t, previous, current, f"rollback: {reason}", rollback=True)
    return Promotion(True, previous, current, f"rolled back: {reason}")


def _point_champion(
    c, t: Tracking, version: str, previous: str | None, reason: str, rollback: bool = False
) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    c.set_registered_model_alias(t.registered_model, CHAMPION, version)
    challenger = _version(c, t, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        c.delete_registered_model_alias(t.registered_model, CHALLENGER)
    tags = {"promoted_at": stamp, "promotion_reason": reason}
    if previous and not rollback:
        tags["previous_champion"] = previous
    for k, v in tags.items():
        c.set_model_version_tag(t.registered_model, version, k, v)
    c.set_registered_model_tag(
        t.registered_model, f"champion_history.{stamp}", f"{previous or '-'} -> {version}: {reason}"
    )
