"""Each notebook runs top to bottom on small data (a copy of the trained test workspace), in
order: 01 explores and promotes the first champion, 02 retrains and compares, 03 monitors."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.model.conftest import workspace_copy

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workspace_copy(trained, tmp_path_factory.mktemp("nb") / "ws").workspace


def run(name: str, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Execute a notebook in a fresh kernel; returns all its text output."""
    monkeypatch.setenv("HEALTHSCORE_WORKSPACE", str(workspace))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    try:
        NotebookClient(
            book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    finally:  # the executed copy, to read when a test fails
        nbformat.write(book, workspace.parent / name)
    texts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", ""))
            texts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_notebooks_are_committed_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-explore-book.ipynb",
        "02-retrain-compare.ipynb",
        "03-monitoring.ipynb",
    ]
    for path in NOTEBOOKS:
        book = json.loads(path.read_text())
        for cell in book["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path.name


def test_01_explore(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = run("01-explore-book.ipynb", workspace, monkeypatch)
    assert "account-health@champion = version 1" in text
    assert "features in 7 domains" in text
    assert "healthy" in text and "unhealthy" in text  # the tier summary


def test_02_retrain_compare(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = run("02-retrain-compare.ipynb", workspace, monkeypatch)
    assert "version 2 registered as challenger" in text
    assert "auc_delta_vs_champion" in text
    assert "Promotion(promoted=" in text


def test_03_monitoring(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = run("03-monitoring.ipynb", workspace, monkeypatch)
    assert "verdict: " in text
    assert "index.html" in text
    assert "auc" in text  # the performance table of the past run has decisions to judge
