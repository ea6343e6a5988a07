"""Shared fixtures: a small synthetic book of business generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.synthetic.generator import GeneratorConfig, generate_book

SMALL_BOOK = GeneratorConfig(accounts=3_000, months=24, seed=11)


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 3,000-account, 24-month book of business: (folder, manifest). Treat it as read-only."""
    out = tmp_path_factory.mktemp("book") / "raw"
    manifest = generate_book(SMALL_BOOK, out)
    return out, manifest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's HEALTHSCORE_* variables."""
    for key in list(os.environ):
        if key.startswith("HEALTHSCORE_"):
            monkeypatch.delenv(key)


def require_service(host: str, port: int, name: str) -> None:
    """Skip when a local server is absent — except under CI=true, where that is a failure."""
    import socket

    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
