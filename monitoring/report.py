"""The monitoring run: drift and performance into one report folder, logged to MLflow.

`run_monitor` writes `<report_dir>/monitor-<UTC timestamp>/` atomically (built in a temporary
folder, renamed on success; a failure midway leaves nothing behind):

- `index.html`     the summary page: verdict, drifted features, data quality, score and tier mix,
                   "were we right?" per score run, with plots (PNG embedded)
- `evidently.html` Evidently's own drift report (distributions per feature)
- `summary.json`   everything on the page, machine-readable
- `features.csv`, `performance.csv`

With a tracking URI the folder and the headline numbers go to an MLflow run in the monitoring
experiment, tagged with the champion's model version and its training run id.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.io import atomic_directory
from monitoring.drift import DriftConfig, DriftResult, drift_report

EXPERIMENT = "account-health-monitoring"


@dataclass
class MonitorResult:
    path: Path  # the report folder
    verdict: str  # "no drift" / "drift in N of M features (...) – retrain recommended"
    drift: bool  # what `--fail-on-drift` tests
    drift_result: DriftResult
    performance: pd.DataFrame
    mlflow_run_id: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def html(self) -> Path:
        return self.path / "index.html"

    @property
    def summary_json(self) -> Path:
        return self.path / "summary.json"


# -- plots -----------------------------------------------------------------------------------


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _score_plot(reference: pd.DataFrame, current: pd.DataFrame) -> str | None:
    from matplotlib.figure import Figure

    col = "health_score" if "health_score" in reference else None
    if col is None or col not in current:
        return None
    ref = pd.to_numeric(reference[col], errors="coerce").dropna()
    cur = pd.to_numeric(current[col], errors="coerce").dropna()
    if ref.empty and cur.empty:
        return None
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    bins = list(range(0, 105, 5))
    for data, label in ((ref, "reference"), (cur, "current")):
        if len(data):
            ax.hist(data, bins=bins, density=True, histtype="step", linewidth=2, label=label)
    ax.set_xlabel("health score")
    ax.set_ylabel("share of accounts (density)")
    ax.set_title("Health score: reference vs current")
    ax.legend()
    return _png(fig)


def _performance_plot(perf: pd.DataFrame) -> str | None:
    from matplotlib.figure import Figure

    overall = perf[perf["tier"] == "all"] if len(perf) else perf
    if overall.empty:
        return None
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    x = pd.to_datetime(overall["as_of"])
    ax.plot(x, overall["auc"], marker="o", label="ROC AUC")
    ax.plot(x, 1 - overall["ece"], marker="s", label="1 − ECE (calibration)")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("score run (as of)")
    ax.set_title("Were we right? Renewals decided since each run")
    ax.legend(loc="lower left")
    fig.autofmt_xdate()
    return _png(fig)


# -- page ------------------------------------------------------------------------------------


def _table(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    if frame.empty:
        return "<p><em>none</em></p>"
    return frame.to_html(
        index=False, na_rep="", border=0, classes="t", float_format=floatfmt.format, escape=True
    )


def _page(
    title: str,
    result: DriftResult,
    perf: pd.DataFrame,
    meta: Mapping[str, object],
    plots: Sequence[str | None],
    has_evidently: bool,
) -> str:
    e = html.escape
    score_cols = ["column", "statistic", "threshold", "p_value", "drifted", "method"]
    colour = "#c0392b" if result.drift else "#1e8449"
    f = result.features
    drifted = f[f["drifted"].eq(True)].sort_values("statistic", ascending=False)
    cols = ["feature", "statistic", "threshold", "p_value", "method", "missing_reference",
            "missing_current"]  # fmt: skip
    quality = f[
        (f["missing_current"].fillna(0) - f["missing_reference"].fillna(0)).abs().gt(0.05)
        | f["new_categories"].map(lambda v: bool(v))
        | f["out_of_range"].fillna(0).gt(0)
    ][["feature", "missing_reference", "missing_current", "new_categories", "out_of_range",
       "out_of_range_share", "range"]]  # fmt: skip
    not_judged = pd.DataFrame(
        [{"column": k, "reason": v} for k, v in result.not_judged.items()],
        columns=["column", "reason"],
    )
    sampled = ", ".join(
        f"{side}: {result.rows[side]:,} rows" + (f" (sampled {n:,})" if n else "")
        for side, n in result.sampled.items()
    )
    meta_rows = "".join(
        f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in meta.items()
    )
    imgs = "".join(f'<img alt="plot" src="data:image/png;base64,{p}">' for p in plots if p)
    link = (
        '<p><a href="evidently.html">Evidently drift report: every feature\'s distribution</a></p>'
        if has_evidently
        else "<p><em>No Evidently report: nothing could be judged.</em></p>"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
.v{{font-size:1.3em;padding:.6em 1em;color:#fff;background:{colour};border-radius:6px}}
table.t{{border-collapse:collapse;margin:.5em 0 1.5em}} .t td,.t th{{padding:.2em .6em;
border-bottom:1px solid #ddd;text-align:left}} img{{margin:.5em 1em .5em 0}}</style></head><body>
<h1>{e(title)}</h1><p class="v">{e(result.verdict)}</p>
<table class="t">{meta_rows}<tr><th>rows</th><td>{e(sampled)}</td></tr></table>{link}
{imgs}
<h2>Drifted features</h2>{_table(drifted[cols])}
<h2>Scores and tier mix</h2>{_table(result.scores[score_cols])}
<h2>Data quality (missing-rate change &gt; 5 points, new categories, out-of-range values)</h2>
{_table(quality)}
<h2>Columns not judged</h2>{_table(not_judged)}
<h2>Were we right? (renewals decided since each score run)</h2>{_table(perf)}
<h2>All features</h2>{_table(f[[*cols, "drifted", "judged", "reason"]])}
</body></html>"""


# -- MLflow ----------------------------------------------------------------------------------


def _mlflow_start(tracking_uri: str, experiment: str, tags: dict[str, str]):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id, tags=tags, run_name=tags.get("mlflow.runName"))
    return client, run.info.run_id


def _mlflow_metrics(result: DriftResult, perf: pd.DataFrame) -> dict[str, float]:
    out = {
        "drift": float(result.drift),
        "drifted_features": float(len(result.drifted_features)),
        "features_judged": float(result.judged),
        "share_drifted": result.share_drifted,
        "columns_not_judged": float(len(result.not_judged)),
    }
    for frame, key in ((result.features, "feature"), (result.scores, "column")):
        for name, stat in zip(frame[key], frame["statistic"], strict=True):
            if stat is not None and math.isfinite(stat):
                out[f"drift_{name}"] = float(stat)
    overall = perf[perf["tier"] == "all"] if len(perf) else perf
    if len(overall):
        last = overall.sort_values("as_of").iloc[-1]
        for m in ("auc", "log_loss", "brier", "ece", "churn_rate"):
            if pd.notna(last[m]):
                out[f"latest_{m}"] = float(last[m])
    return out


# -- entry point -----------------------------------------------------------------------------


def _folder_name(now: datetime, report_dir: Path) -> Path:
    base = f"monitor-{now:%Y%m%dT%H%M%SZ}"
    target, i = report_dir / base, 1
    while target.exists():
        target, i = report_dir / f"{base}-{i}", i + 1
    return target


def run_monitor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    feature_names: Sequence[str],
    categorical: Sequence[str],
    report_dir: Path,
    performance: pd.DataFrame | None = None,
    config: DriftConfig | None = None,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    model_name: str | None = None,
    model_version: str | None = None,
    model_run_id: str | None = None,
    reference_label: str = "reference",
    current_label: str = "current",
    now: datetime | None = None,
) -> MonitorResult:
    """Drift of `current` vs `reference` (see `monitoring.drift.drift_report`) plus the
    performance table (`monitoring.performance.performance`), written to a new folder under
    `report_dir` and, with `tracking_uri`, logged to MLflow. Returns the folder and the verdict.
    """
    now = now or datetime.now(UTC)
    report_dir = Path(report_dir)
    perf = performance if performance is not None else pd.DataFrame()
    result = drift_report(reference, current, feature_names, categorical, config)
    target = _folder_name(now, report_dir)
    meta = {
        "created (UTC)": now.strftime("%Y-%m-%d %H:%M:%S"),
        "model": f"{model_name or '?'} version {model_version or '?'}",
        "reference": reference_label,
        "current": current_label,
    }

    client = run_id = None
    if tracking_uri:
        tags = {
            "mlflow.runName": target.name,
            "verdict": result.verdict[:5000],
            "drift": str(result.drift).lower(),
        }
        if model_name:
            tags["model_name"] = model_name
        if model_version is not None:
            tags["model_version"] = str(model_version)
        if model_run_id:
            tags["model_run_id"] = model_run_id
        client, run_id = _mlflow_start(tracking_uri, experiment, tags)
        meta["MLflow run"] = f"{run_id} (experiment {experiment})"

    try:
        summary = {
            "created_at": now.isoformat(),
            "model_name": model_name,
            "model_version": None if model_version is None else str(model_version),
            "model_run_id": model_run_id,
            "reference": reference_label,
            "current": current_label,
            "mlflow_run_id": run_id,
            **result.summary(),
            "performance": json.loads(perf.to_json(orient="records", date_format="iso")),
        }
        with atomic_directory(target) as tmp:
            if result.evidently is not None:
                result.evidently.save_html(str(tmp / "evidently.html"))
            plots = [_score_plot(reference, current), _performance_plot(perf)]
            page = _page(
                "Account health monitoring", result, perf, meta, plots, result.evidently is not None
            )
            (tmp / "index.html").write_text(page, encoding="utf-8")
            result.features.to_csv(tmp / "features.csv", index=False)
            perf.to_csv(tmp / "performance.csv", index=False)
            (tmp / "summary.json").write_text(
                json.dumps(summary, indent=2, default=str, allow_nan=False) + "\n",
                encoding="utf-8",
            )
        if client is not None:
            from mlflow.entities import Metric

            ts = int(now.timestamp() * 1000)
            metrics = [Metric(k, v, ts, 0) for k, v in _mlflow_metrics(result, perf).items()]
            for i in range(0, len(metrics), 500):
                client.log_batch(run_id, metrics=metrics[i : i + 500])
            client.log_artifacts(run_id, str(target), artifact_path="monitoring")
            client.set_terminated(run_id, "FINISHED")
    except BaseException:
        if client is not None:
            client.set_terminated(run_id, "FAILED")
        raise
    files = {p.name: p for p in target.iterdir()}
    return MonitorResult(
        path=target,
        verdict=result.verdict,
        drift=result.drift,
        drift_result=result,
        performance=perf,
        mlflow_run_id=run_id,
        files=files,
    )
