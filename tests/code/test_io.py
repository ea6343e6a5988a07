"""Atomic writes: a reader never sees half a file or half a folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.io import SourceNotFoundError, atomic_directory, read_source, write_parquet


def test_atomic_directory_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # unchanged until the body succeeds
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_directory_keeps_the_old_folder_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_write_parquet_and_read_source_single_file(tmp_path: Path) -> None:
    df = pd.DataFrame({"account_id": ["a", "b"], "n": pd.array([1, None], dtype="Int64")})
    write_parquet(df, tmp_path / "accounts.parquet")
    back = read_source(tmp_path, "accounts")
    pd.testing.assert_frame_equal(back, df)
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.parquet"]


def test_missing_source_names_the_folder_and_source(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="'tickets'") as exc:
        read_source(tmp_path, "tickets")
    assert str(tmp_path) in str(exc.value)
