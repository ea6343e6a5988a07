"""The dependency direction of DEVELOPERS.md, and generated docs that match their source."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from features import catalog, contract

REPO = Path(__file__).resolve().parents[1]


def test_import_direction_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed in this environment"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_data_contract_doc_is_up_to_date() -> None:
    doc = (REPO / "docs" / "data-contract.md").read_text()
    assert doc.strip() == contract.render_markdown().strip(), "run `make docs` and commit it"


def test_feature_doc_is_up_to_date() -> None:
    doc = (REPO / "docs" / "features.md").read_text()
    assert doc.strip() == catalog.render_markdown().strip(), "run `make docs` and commit it"
