"""`healthscore init --from-table`: a starter configuration written from the table itself."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

HEADER = """\
# healthscore configuration for the flat account table {table}
# Written by `healthscore init --from-table`: check what it guessed, then `healthscore validate`.
# Every column not named below as id / label / name / owner / exclude is a feature; give each a
# health domain (usage, adoption, engagement, support, satisfaction, financial, contract, other),
# optionally a type (number | category | flag), a description (how drivers word it) and a
# direction (higher_is_healthier | higher_is_riskier | none; auto learns it from the data).
# Domains listed under scoring.context_domains explain the score but are never drivers.
# Delete the `data:` section's guesses you disagree with; `healthscore validate` says what is wrong.
"""


def starter_config(table: Path, config_path: Path, encoding: str = "utf-8") -> tuple[str, list]:
    """The YAML text of a starter config for `table` and a few lines saying what was guessed."""
    from features.table import suggest

    found = suggest(table, encoding=encoding)
    t = found["table"]
    # The path as seen from the config file's folder (where relative paths are resolved).
    t["path"] = os.path.relpath(Path(table).resolve(), Path(config_path).resolve().parent)
    if encoding != "utf-8":
        t["encoding"] = encoding
    domains = sorted({c["domain"] for c in t["columns"].values()})
    config = {
        "workspace": ".healthscore",
        "data": {"kind": "table", "table": t},
        "training": {"scorecard_weights": dict.fromkeys(domains, 1.0)},
        # Every column of a table was chosen by the team: none is mere context, all may be
        # drivers (the default, [contract], suits the data contract's segment and term).
        "scoring": {"context_domains": []},
    }
    text = HEADER.format(table=t["path"]) + yaml.safe_dump(
        config, sort_keys=False, allow_unicode=True
    )
    summary = [
        f"{found['rows']:,} rows; account id [bold]{t['id_column']}[/bold], label "
        f"[bold]{t['label_column']}[/bold] (churned = {', '.join(t['churn_values'])}; "
        f"renewed = {', '.join(t['renew_values'])})",
        "as-of: "
        + (f"column {t['as_of_column']}" if "as_of_column" in t else f"{t['as_of_date']} (fixed)"),
        f"{len(t['columns'])} feature columns in {len(domains)} domains: {', '.join(domains)}",
    ]
    if "arr_column" in t:
        scale = f" × {t['arr_scale']:g}" if t.get("arr_scale", 1) != 1 else ""
        summary.append(f"revenue at stake (ARR): {t['arr_column']}{scale}")
    if t["exclude"]:
        summary.append(f"excluded (identifier-like): {', '.join(t['exclude'])}")
    return text, summary
