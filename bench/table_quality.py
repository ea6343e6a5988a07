"""Model quality on a flat table (issue 9's quality bar): the automatic training against what a
careful data scientist gets by hand, on exactly the same train / validation / test rows.

For each table size and seed (the seed of the synthetic CRM table *and* of the stratified split),
a project is built in a temporary folder as a new user would (`write_crm_table`, the config
`healthscore init --from-table` writes, `features apply`), then:

- auto: `pipeline.train(settings)` with no overrides (LightGBM + calibration as configured);
- tuned LR: median imputation + missing indicators and standardisation for numbers (flags count
  as numbers), one-hot for categories, `LogisticRegressionCV` choosing C (13 values, 1e-4..1e2)
  by 5-fold stratified cross-validated log loss on the training rows, refitted on them;
- default LGBM: `lightgbm.LGBMClassifier()` with its default parameters (100 trees), native
  categoricals, fitted on the training rows;
- default LGBM + ES: the same with up to 2,000 trees and early stopping (50 rounds) on the
  validation rows' log loss.

Metrics on the split's test rows: ROC AUC and ECE (`training.metrics`, 10 equal-width bins), as
`healthscore train` logs them. A test part of a small table is small (225 rows at 1,500), and ECE
there has a floor well above zero even for a perfectly calibrated model; so the table also shows
`ece floor`: the mean ECE of the auto model's own test predictions against labels drawn from
those predictions (what a perfectly calibrated model with the same scores would get), and every
model is scored again on a fresh draw of `--population` rows from the same generator (seed
10,000 + seed, never seen in training): the population figures are the precise ones.

Quality bar (issue 9): auto AUC >= both baselines' AUC and auto ECE <= 0.03. The AUC tolerance is
the seed-to-seed sd of the paired difference auto - baseline (a mean shortfall smaller than the
noise of the comparison itself is not a failure).

    .venv/bin/python bench/table_quality.py [--rows 1500 7000] [--seeds 3]
    .venv/bin/python bench/table_quality.py --set min_data_in_leaf=20 --set learning_rate=0.05

`--set` passes overrides to `pipeline.train` (ModelParams fields), as `healthscore train` would
with a `training:` section; `--json FILE` writes every run's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ECE_BAR = 0.03
MODELS = ("auto", "tuned_lr", "default_lgbm", "default_lgbm_es")
LABELS = {
    "auto": "auto (pipeline.train)",
    "tuned_lr": "tuned LR (LogisticRegressionCV)",
    "default_lgbm": "default LGBMClassifier()",
    "default_lgbm_es": "default LGBM + early stopping",
    "pipeline_lr": "pipeline's own LR (C=1)",
    "scorecard": "pipeline's scorecard",
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1500, 7000], help="table sizes")
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N per size")
    p.add_argument("--population", type=int, default=20_000, help="fresh rows to score (0: off)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument(
        "--auto-params",
        action="store_true",
        help="apply training.train.auto_params(len(split.train), params) through the overrides\n"
        "(what pipeline.train does once it is wired there; applying it twice is harmless)",
    )
    p.add_argument("--json", type=Path, help="write every run's figures here")
    p.add_argument("--dir", help="work folder (default: a temporary one)")
    p.add_argument("--keep", type=Path, help="pickle each run's split and inputs here")
    return p.parse_args()


def say(msg: str) -> None:
    print(f"[table_quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def overrides(pairs: list[str]) -> dict:
    from training.train import ModelParams

    out = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        field = ModelParams.__dataclass_fields__.get(key)
        if field is None:
            raise SystemExit(f"--set {pair}: {key} is not a ModelParams field")
        kind = type(field.default)
        out[key] = text.lower() in ("1", "true", "yes") if kind is bool else kind(text)
    return out


def project(root: Path, rows: int, seed: int):
    """A flat-table project as a new user makes it: table, starter config, features applied."""
    import yaml

    from features.synthetic.crm_table import write_crm_table
    from healthscore import pipeline
    from healthscore.init import starter_config
    from healthscore.settings import load_settings

    root.mkdir(parents=True)
    table = write_crm_table(root / "crm.csv", rows=rows, seed=seed)
    config = root / "healthscore.yaml"
    text, _ = starter_config(table, config)
    doc = yaml.safe_load(text)
    doc["training"]["seed"] = seed  # the split's seed (and LightGBM's)
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    settings = load_settings(config, workspace=root / "ws")
    pipeline.features_apply(settings)
    return settings


def population(settings, root: Path, rows: int, seed: int) -> pd.DataFrame:
    """A fresh draw from the generator, typed by the project's own table build (same columns,
    same conversions), as one frame of features + `renewed`."""
    from features import table
    from features.synthetic.crm_table import write_crm_table
    from healthscore import pipeline
    from training.data import LABEL

    csv = write_crm_table(root / "population.csv", rows=rows, seed=seed)
    spec = dataclasses.replace(pipeline.table_spec(settings), path=csv)
    out = root / "population"
    manifest = table.build_table(spec, out)
    frame = pd.read_parquet(out / table.LABELS)[["account_id", LABEL]]
    for view in table.views(manifest):
        part = pd.read_parquet(out / f"{view.name}.parquet").drop(columns="event_timestamp")
        frame = frame.merge(part, on="account_id", how="left", validate="one_to_one")
    return frame


def sized_overrides(settings, params: dict) -> dict:
    """`params` plus what `auto_params` changes for this project's training-set size (the split
    is `pipeline.train`'s: stratified on the label events, seeded by `training.seed`)."""
    from features import table
    from healthscore import pipeline
    from training.data import stratified_split
    from training.train import auto_params

    tr = settings.training
    events = pd.read_parquet(settings.feature_dir / table.LABELS)
    n_train = len(stratified_split(events, tr.validation_share, tr.test_share, tr.seed).train)
    base = pipeline.model_params(settings, **params)
    sized = auto_params(n_train, base)
    return params | {k: v for k, v in vars(sized).items() if v != getattr(base, k)}


def tuned_logistic(X: pd.DataFrame, y: np.ndarray, seed: int):
    """The by-hand logistic regression: the pipeline's preprocessing, C chosen by 5-fold log loss
    on the training rows; returns a function frame matrix -> P(renew)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    from training.train import for_sklearn, logistic_preprocessing

    prep, cats = logistic_preprocessing(X)
    lr = LogisticRegressionCV(
        Cs=np.logspace(-4, 2, 13),
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        scoring="neg_log_loss",
        max_iter=5000,
    )
    model = make_pipeline(prep, lr).fit(for_sklearn(X, cats), y)
    c = float(model[-1].C_[0])
    return (lambda M: model.predict_proba(for_sklearn(M, cats))[:, 1]), {"C": c}


def default_lightgbm(X, y, Xv, yv, seed: int, early_stopping: bool):
    import lightgbm as lgb

    if not early_stopping:
        model = lgb.LGBMClassifier(random_state=seed, verbose=-1).fit(X, y)
        return (lambda M: model.predict_proba(M)[:, 1]), {"trees": 100}
    model = lgb.LGBMClassifier(n_estimators=2000, random_state=seed, verbose=-1).fit(
        X, y, eval_set=[(Xv, yv)], callbacks=[lgb.early_stopping(50, verbose=False)]
    )
    return (lambda M: model.predict_proba(M)[:, 1]), {"trees": int(model.best_iteration_)}


def ece_floor(p: np.ndarray, draws: int = 400, seed: int = 0) -> float:
    """Mean ECE of `p` against labels drawn from `p` itself: a perfectly calibrated model's ECE
    on this many rows with these scores."""
    from training.metrics import expected_calibration_error as ece

    rng = np.random.default_rng(seed)
    return float(np.mean([ece(rng.random(p.size) < p, p) for _ in range(draws)]))


def one_run(
    root: Path,
    rows: int,
    seed: int,
    params: dict,
    pop_rows: int,
    keep: Path | None = None,
    auto: bool = False,
) -> dict:
    from sklearn.metrics import roc_auc_score

    from features.health_model import model_matrix
    from healthscore import pipeline
    from training.data import LABEL
    from training.metrics import expected_calibration_error as ece

    settings = project(root, rows, seed)
    if auto:
        params = sized_overrides(settings, params)
    t = time.perf_counter()
    run, split, result = pipeline.train(settings, **params)
    seconds = time.perf_counter() - t
    model = result.model
    levels, cats = model.categorical, list(model.categorical)
    X = {
        k: model_matrix(getattr(split, k), model.features, levels)
        for k in ("train", "validation", "test")
    }
    y = {k: getattr(split, k)[LABEL].to_numpy(dtype=int) for k in ("train", "validation", "test")}

    predictors = {
        "auto": (
            model.probability,
            {"best_iteration": result.best_iteration, "calibration": model.calibrator.method},
        )
    }
    predictors["tuned_lr"] = tuned_logistic(X["train"], y["train"], seed)
    predictors["default_lgbm"] = default_lightgbm(
        X["train"], y["train"], X["validation"], y["validation"], seed, early_stopping=False
    )
    predictors["default_lgbm_es"] = default_lightgbm(
        X["train"], y["train"], X["validation"], y["validation"], seed, early_stopping=True
    )
    out = {
        "rows": rows,
        "seed": seed,
        "n_train": len(split.train),
        "n_test": len(split.test),
        "train_seconds": round(seconds, 1),
        "params": params,
        "test": {},
        "population": {},
    }
    for name, (predict, extra) in predictors.items():
        p = predict(split.test if name == "auto" else X["test"])
        out["test"][name] = {"auc": float(roc_auc_score(y["test"], p)), "ece": ece(y["test"], p)}
        out.setdefault("fit", {})[name] = extra
    for name, key in (("pipeline_lr", "logistic_regression"), ("scorecard", "scorecard")):
        out["test"][name] = {"auc": run.metrics[key]["roc_auc"], "ece": run.metrics[key]["ece"]}
    # The pipeline's own figure for the auto model must be the one recomputed here.
    assert abs(out["test"]["auto"]["auc"] - run.metrics["lightgbm"]["roc_auc"]) < 1e-9
    out["ece_floor"] = ece_floor(model.probability(split.test), seed=seed)
    if pop_rows:
        frame = population(settings, root, pop_rows, 10_000 + seed)
        yp = frame[LABEL].to_numpy(dtype=int)
        Xp = model_matrix(frame, model.features, levels)
        for name, (predict, _) in predictors.items():
            p = predict(frame) if name == "auto" else predict(Xp)
            out["population"][name] = {"auc": float(roc_auc_score(yp, p)), "ece": ece(yp, p)}
    if keep:  # what `training.train.train` needs to refit this run without Feast or MLflow
        import pickle

        keep.mkdir(parents=True, exist_ok=True)
        inputs = {
            "split": split,
            "features": model.features,
            "info": model.info,
            "categorical": cats,
            "weights": result.scorecard.weights,
            "population": frame if pop_rows else None,
            "params": vars(pipeline.model_params(settings, **params)),
        }
        (keep / f"{rows}-{seed}.pkl").write_bytes(pickle.dumps(inputs))
    return out


def mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def verdict(runs: list[dict], where: str) -> tuple[bool, list[str]]:
    """PASS/FAIL of the quality bar on `where` (test | population) for one table size."""
    lines, ok = [], True
    auto = [r[where]["auto"]["auc"] for r in runs]
    for base in ("tuned_lr", "default_lgbm", "default_lgbm_es"):
        diff = [a - r[where][base]["auc"] for a, r in zip(auto, runs, strict=True)]
        m, sd = mean_sd(diff)
        good = m >= -sd
        ok &= good
        lines.append(
            f"  AUC auto - {base:16} {m:+.4f} (sd {sd:.4f}; tolerance -sd) "
            f"{'ok' if good else 'SHORT'}"
        )
    e, _ = mean_sd([r[where]["auto"]["ece"] for r in runs])
    good = e <= ECE_BAR
    ok &= good
    lines.append(f"  ECE auto {e:.4f} <= {ECE_BAR} {'ok' if good else 'OVER'}")
    return ok, lines


def report(runs: list[dict]) -> None:
    for rows in sorted({r["rows"] for r in runs}):
        rs = [r for r in runs if r["rows"] == rows]
        print(
            f"\n## {rows:,} rows: {len(rs)} seeds, {rs[0]['n_train']:,} train / "
            f"{rs[0]['n_test']:,} test rows; params {rs[0]['params'] or 'defaults'}"
        )
        has_pop = bool(rs[0]["population"])
        head = f"{'model':34} {'test AUC':>16} {'test ECE':>16}"
        print(head + (f" {'population AUC':>16} {'population ECE':>16}" if has_pop else ""))
        for name in (*MODELS, "pipeline_lr", "scorecard"):
            cells = []
            for where in ("test", "population") if has_pop else ("test",):
                if name not in rs[0][where]:
                    cells += ["", ""]
                    continue
                for metric in ("auc", "ece"):
                    m, sd = mean_sd([r[where][name][metric] for r in rs])
                    cells.append(f"{m:.4f} ± {sd:.4f}")
            print(f"{LABELS[name]:34} " + " ".join(f"{c:>16}" for c in cells))
        floor, sd = mean_sd([r["ece_floor"] for r in rs])
        print(f"{'ECE floor (calibrated, test size)':34} {'':>16} {f'{floor:.4f} ± {sd:.4f}':>16}")
        fits = "; ".join(
            f"seed {r['seed']}: auto {r['fit']['auto']['best_iteration']} rounds "
            f"{r['fit']['auto']['calibration']}, LR C={r['fit']['tuned_lr']['C']:.3g}, "
            f"ES {r['fit']['default_lgbm_es']['trees']} trees"
            for r in rs
        )
        print(f"fits: {fits}")
        for where in ("test", "population") if has_pop else ("test",):
            ok, lines = verdict(rs, where)
            print(f"quality bar on the {where} rows: {'PASS' if ok else 'FAIL'}")
            print("\n".join(lines))


def main() -> None:
    a = parse()
    params = overrides(a.set)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hs-table-quality-", dir=a.dir) as tmp:
        tmp_root = Path(tmp)
        for rows in a.rows:
            for seed in range(1, a.seeds + 1):
                say(f"{rows:,} rows, seed {seed}")
                r = one_run(
                    tmp_root / f"{rows}-{seed}",
                    rows,
                    seed,
                    params,
                    a.population,
                    a.keep,
                    a.auto_params,
                )
                say(
                    f"  auto AUC {r['test']['auto']['auc']:.4f} ECE {r['test']['auto']['ece']:.4f}"
                    f" | LR {r['test']['tuned_lr']['auc']:.4f} | LGBM "
                    f"{r['test']['default_lgbm']['auc']:.4f} / ES "
                    f"{r['test']['default_lgbm_es']['auc']:.4f} ({r['train_seconds']} s)"
                )
                runs.append(r)
    report(runs)
    if a.json:
        a.json.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
