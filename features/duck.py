"""Small DuckDB helpers shared by the readers of team data (`features.table`, `features.sources`):
quoting, the format of a file by its name, and a CSV read as text so types are decided by us."""

from __future__ import annotations

from pathlib import Path


def ident(name: str) -> str:
    """A quoted SQL identifier (any column name a spreadsheet allows)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def file_format(path: Path, declared: str = "auto") -> str:
    """`parquet` or `csv`: as declared, else from the file name."""
    if declared != "auto":
        return declared
    return "parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "csv"


def csv_text(
    files: list[Path], encoding: str = "utf-8", delimiter: str | None = None, sniff_all=False
) -> str:
    """A DuckDB relation reading CSV files with a header as text (`all_varchar`); `sniff_all`
    detects the dialect from the whole file rather than a sample."""
    opts = ["header = true", "all_varchar = true"]
    if sniff_all:
        opts.append("sample_size = -1")
    if delimiter:
        opts.append(f"delim = {literal(delimiter)}")
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        opts.append(f"encoding = {literal(encoding)}")
    return f"read_csv([{', '.join(literal(f) for f in files)}], {', '.join(opts)})"
