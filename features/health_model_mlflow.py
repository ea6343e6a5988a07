"""The health model as an MLflow model (pyfunc), and loading it back from the registry.

The MLflow model holds the health model's files (`booster.txt`, `health_model.json`) as artifacts;
the pyfunc wrapper below is code, not state, so nothing fitted is pickled. Batch scoring and the
service call `load_health_model("models:/account-health@champion")`.
"""

from __future__ import annotations

import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from features.health_model import HealthModel

ARTIFACT_KEY = "health_model"


class HealthModelPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc: features in, renewal_probability / health_score / tier out."""

    def load_context(self, context) -> None:
        self.model = HealthModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(model_input)


# Models from code: MLflow runs this file to build the pyfunc, so no object is pickled.
_ENTRY = """\
import mlflow.models

from features.health_model_mlflow import HealthModelPyfunc

mlflow.models.set_model(HealthModelPyfunc())
"""


def requirements() -> list[str]:
    """Pinned runtime requirements of the health model (what `mlflow models serve` would need)."""
    pkgs = ["lightgbm", "numpy", "pandas", "scikit-learn", "mlflow", "healthscore"]
    return [f"{p}=={version(p)}" for p in pkgs]


def log_health_model(model: HealthModel, input_example: pd.DataFrame, name: str = "model"):
    """Log `model` to the active MLflow run; returns mlflow's ModelInfo."""
    example = signature_frame(model, input_example.head(5))
    signature = ModelSignature(
        inputs=Schema(
            [
                ColSpec("string" if c in model.categorical else "double", c, required=False)
                for c in model.features
            ]
        ),
        outputs=Schema(
            [
                ColSpec("double", "renewal_probability"),
                ColSpec("long", "health_score"),
                ColSpec("string", "tier"),
            ]
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "health_model")
        entry = Path(tmp) / "health_model_entry.py"
        entry.write_text(_ENTRY)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(entry),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=signature,
            input_example=example,
            pip_requirements=requirements(),
        )


def signature_frame(model: HealthModel, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the types of the model's signature: numbers as float64, categories as text
    (missing features allowed: LightGBM handles missing values)."""
    matrix = model.matrix(frame)
    return matrix.astype({c: "object" for c in model.categorical})


def load_health_model(model_uri: str) -> HealthModel:
    """The HealthModel behind an MLflow model URI (`models:/account-health@champion`, `runs:/…`)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
