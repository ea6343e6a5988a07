"""A workspace with features built and a model trained on the shared small book."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from healthscore import pipeline
from healthscore.settings import load_settings


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, book: tuple[Path, dict]) -> dict:
    """Features applied and one model trained (registered as challenger, not promoted).
    Tests that change the registry work on a copy (see `workspace_copy`)."""
    root = tmp_path_factory.mktemp("train")
    config = root / "healthscore.yaml"
    config.write_text("training:\n  seed: 7\n")
    settings = load_settings(config, workspace=root / "ws")
    shutil.copytree(book[0], settings.data_dir)
    pipeline.features_apply(settings)
    run, split, result = pipeline.train(settings, run_name="first")
    return {"settings": settings, "run": run, "split": split, "result": result, "root": root}


def workspace_copy(trained: dict, dest: Path):  # -> Settings
    """An independent copy of the trained workspace (own MLflow database and scores)."""
    src = trained["settings"].workspace
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("scores"))
    return load_settings(trained["root"] / "healthscore.yaml", workspace=dest)
