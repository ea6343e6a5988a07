"""Reading raw sources and writing outputs atomically (temporary path, then rename)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class SourceNotFoundError(FileNotFoundError):
    """A raw source is neither `<name>.parquet` nor a folder `<name>/` of Parquet parts."""


def source_path(data_dir: Path, name: str) -> Path:
    """Where source `name` lives under `data_dir`: a folder of parts or a single file."""
    folder = data_dir / name
    if folder.is_dir():
        return folder
    single = data_dir / f"{name}.parquet"
    if single.is_file():
        return single
    raise SourceNotFoundError(
        f"{data_dir}: source '{name}' not found (expected {name}.parquet or a folder {name}/)"
    )


def source_files(path: Path) -> list[Path]:
    """The Parquet files of a source, in a stable order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))


def _pandas_type(t: pa.DataType) -> object | None:
    """Map Arrow types to the pandas dtypes validation expects (lossless widening only)."""
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one Parquet file into pandas with nullable ints/bools and naive-UTC timestamps."""
    table = pq.read_table(path, columns=columns)
    df = table.to_pandas(types_mapper=_pandas_type, date_as_object=False)
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            df[name] = col.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_dtype(df[name].dtype) and df[name].dtype != "datetime64[ns]":
            df[name] = df[name].astype("datetime64[ns]")
    return df


def read_source(data_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole source (all parts) into one DataFrame."""
    files = source_files(source_path(data_dir, name))
    if not files:
        raise SourceNotFoundError(f"{data_dir / name}: folder holds no .parquet files")
    frames = [read_table(f, columns) for f in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_parquet(tmp, index=False, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Build a directory in a temporary sibling and swap it into place only on success.

    If the body raises, the temporary directory is removed and `target` is left exactly as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
