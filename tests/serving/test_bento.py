"""`bentoml build` packs the service into a Bento from the repository's bentofile.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.serving.conftest import REPO


def test_bentoml_build_produces_a_bento(tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    bentoml = Path(sys.executable).parent / "bentoml"
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [str(bentoml), "build", "--output", "tag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (bento,) = (home / "bentos" / "healthscore").glob("*/bento.yaml")
    spec = yaml.safe_load(bento.read_text())
    assert spec["service"] == "serving.service:HealthScore"
    src = bento.parent / "src"
    for module in ("serving/service.py", "serving/online.py", "features/store.py"):
        assert (src / module).is_file(), module
    assert not list(src.glob("training/*")) and not list(src.glob("tests/*"))
    requirements = (bento.parent / "env" / "python" / "requirements.txt").read_text()
    assert "bentoml==1.4.39" in requirements and "feast" in requirements
    assert {"/score", "/score_features"} <= {a["route"] for a in spec["schema"]["routes"]}
