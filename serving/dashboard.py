"""The one-page health dashboard for CSMs: a single self-contained HTML file.

`render_dashboard` turns a batch-scoring frame (one row per account, `serving.batch.score_frame`
plus the pipeline's context columns) and the score history into one HTML page: traffic lights with
account counts and ARR per tier, the at-risk list sorted by ARR (filterable by tier, segment, CSM
owner and a text search; paginated, so only one page of rows is ever in the DOM), and a drill-down
per account (score trend, domain breakdown, drivers in words, recommended actions).

The page has no external dependency (inline CSS and vanilla JS, no CDN, no web font), so it works
from file:// and when served over HTTP. The data is embedded compactly for 100k accounts:
numeric columns are little-endian typed arrays in base64, repeated strings (names, owners, actions,
action lists, driver phrases) are dictionary-encoded, and each driver's text is split into a
per-feature template and its value. The URL hash holds the view (`#tier=unhealthy&segment=smb&
csm=...&q=...&sort=arr&page=2&account=A0000123`), so a link opens a filtered list or a drill-down.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

TEMPLATE = "dashboard_template.html"
REQUIRED = ("account_id", "health_score", "tier")
DATA_MARK = "/*__HEALTHSCORE_DATA__*/"
TITLE_MARK = "__HEALTHSCORE_TITLE__"
NO_DRIVER = 0xFFFF  # template index of an empty driver slot
ARR_NA = 2**32 - 1  # unknown ARR in the u32 column
MISSING_SCORE = 255  # history: no score that run
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30})$")


class DashboardError(ValueError):
    """The scores or history cannot be shown (the message names the column)."""


# -- public API ------------------------------------------------------------------------------


def render_dashboard(
    scores: pd.DataFrame,
    history: pd.DataFrame | None,
    tiers: Sequence[tuple[str, str]],
    generated_at: datetime | str,
    model_version: str | None,
    title: str = "Customer health",
    page_size: int = 50,
    max_history_runs: int = 12,
    context_domains: Iterable[str] = ("contract",),
) -> str:
    """One self-contained HTML page showing `scores` (one row per account).

    `history`: earlier runs as rows of `account_id, as_of, health_score` (see `load_history`), or
    None. `tiers`: (name, colour) pairs, healthiest first (`tiers_from_scores` derives them from the
    frame). The at-risk list starts on every tier but the healthiest, sorted by ARR.
    """
    data = dashboard_data(
        scores,
        history,
        tiers,
        generated_at,
        model_version,
        title=title,
        page_size=page_size,
        max_history_runs=max_history_runs,
        context_domains=context_domains,
    )
    page = resources.files("serving").joinpath(TEMPLATE).read_text(encoding="utf-8")
    if DATA_MARK not in page or TITLE_MARK not in page:
        raise DashboardError(f"serving/{TEMPLATE} lacks its data or title placeholder")
    head, tail = page.split(DATA_MARK, 1)  # the title cannot inject a second data mark
    safe_title = html.escape(title, quote=True)
    return (
        head.replace(TITLE_MARK, safe_title)
        + embed_json(data)
        + tail.replace(TITLE_MARK, safe_title)
    )


def write_dashboard(path: Path | str, html_text: str) -> Path:
    """Write the page to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html_text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def tiers_from_scores(
    scores: pd.DataFrame, configured: Sequence[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """(tier, colour) pairs healthiest first: `configured` when it names every tier in the frame
    (so an empty tier still gets its light), else the tiers found in the frame, ordered by their
    mean health score."""
    _require(scores, ("tier", "tier_colour", "health_score"))
    found = set(scores["tier"].dropna().astype(str))
    if configured and found <= {str(n) for n, _ in configured}:
        return [(str(n), str(c)) for n, c in configured]
    g = scores.groupby("tier", sort=False).agg(
        colour=("tier_colour", "first"), mean=("health_score", "mean")
    )
    g = g.sort_values("mean", ascending=False)
    return [(str(n), str(c)) for n, c in zip(g.index, g["colour"], strict=True)]


def load_history(history_dir: Path | str, max_runs: int = 12) -> pd.DataFrame | None:
    """The last `max_runs` history partitions (`as_of=YYYY-MM-DD/scores.parquet`) as one frame
    `account_id, as_of, health_score`; None when there is no run."""
    runs = sorted(Path(history_dir).glob("as_of=*/scores.parquet"))[-max_runs:] if max_runs else []
    parts = []
    for path in runs:
        day = path.parent.name.split("=", 1)[1]
        try:
            part = pd.read_parquet(path, columns=["account_id", "health_score"])
        except (KeyError, ValueError) as exc:
            raise DashboardError(f"{path}: needs columns account_id, health_score ({exc})") from exc
        parts.append(part.assign(as_of=day))
    return pd.concat(parts, ignore_index=True) if parts else None


# -- the embedded data -----------------------------------------------------------------------


def dashboard_data(
    scores: pd.DataFrame,
    history: pd.DataFrame | None,
    tiers: Sequence[tuple[str, str]],
    generated_at: datetime | str,
    model_version: str | None,
    title: str = "Customer health",
    page_size: int = 50,
    max_history_runs: int = 12,
    context_domains: Iterable[str] = ("contract",),
) -> dict:
    """The page's data as a JSON-ready dict (rows sorted by ARR, largest first)."""
    _require(scores, REQUIRED)
    if scores["account_id"].isna().any():
        raise DashboardError("scores: column account_id has empty values")
    if scores["account_id"].duplicated().any():
        dup = scores.loc[scores["account_id"].duplicated(), "account_id"].iloc[0]
        raise DashboardError(f"scores: column account_id repeats {dup!r}")
    tier_names = [str(n) for n, _ in tiers]
    if not tier_names or len(set(tier_names)) != len(tier_names):
        raise DashboardError(f"tiers: need distinct (name, colour) pairs, got {list(tiers)!r}")
    unknown = sorted(set(scores["tier"].astype(str)) - set(tier_names))
    if unknown:
        raise DashboardError(f"scores: column tier has {unknown!r}, not among tiers {tier_names!r}")
    score = pd.to_numeric(scores["health_score"], errors="coerce")
    if score.isna().any() or (score < 0).any() or (score > 100).any():
        raise DashboardError("scores: column health_score must be numbers from 0 to 100")

    arr = _numeric(scores, "arr")
    order = np.lexsort((scores["account_id"].astype(str).to_numpy(), -np.nan_to_num(arr, nan=-1)))
    s = scores.iloc[order].reset_index(drop=True)
    arr = arr[order]
    n = len(s)
    tier_idx = pd.Categorical(s["tier"].astype(str), categories=tier_names).codes

    dicts: dict[str, list] = {}
    cols: dict[str, object] = {
        "id": s["account_id"].astype(str).tolist(),
        "tier": _b64(tier_idx, "u8"),
        "score": _b64(np.rint(score.to_numpy()[order]), "u8"),
        "arr": _arr_column(arr),
    }
    if "renewal_probability" in s:
        prob = _numeric(s, "renewal_probability")
        cols["prob"] = _b64(np.where(np.isnan(prob), -1, np.rint(prob * 1000)), "i16")
    for key, col in (("name", "account_name"), ("seg", "segment"), ("csm", "csm_owner")):
        if col in s:
            codes, values = _dictionary(s[col])
            dicts[key] = values
            cols[key] = _codes(codes, len(values))
    if "region" in s:
        codes, values = _dictionary(s["region"])
        dicts["region"] = values
        cols["region"] = _codes(codes, len(values))
    if "score_change" in s:
        chg = pd.to_numeric(s["score_change"], errors="coerce").astype("float64").to_numpy()
        cols["chg"] = _b64(np.where(np.isnan(chg), -128, np.clip(np.rint(chg), -100, 100)), "i8")
    if "declining_runs" in s:
        decl = pd.to_numeric(s["declining_runs"], errors="coerce").fillna(0).to_numpy()
        cols["decl"] = _b64(np.clip(decl, 0, 65535), "u16")

    domains = [c.removeprefix("domain_") for c in s.columns if c.startswith("domain_")]
    dom_values = []
    for d in domains:
        v = _numeric(s, f"domain_{d}")
        dom_values.append(np.where(np.isnan(v), 0, np.clip(np.rint(v * 100), -32767, 32767)))
        cols[f"dom_{d}"] = _b64(dom_values[-1], "i16")
    finite = np.abs(np.concatenate(dom_values)) if dom_values else np.zeros(1)
    dom_scale = float(np.percentile(finite, 99)) / 100 if finite.size else 1.0

    if "main_risk_domain" in s:
        codes, values = _dictionary(s["main_risk_domain"])
        dicts["risk"] = values
        cols["risk"] = _codes(codes, len(values))
    if "actions" in s:
        action_codes, action_values, action_sets = _action_sets(s["actions"])
        dicts["action"], dicts["actionSet"] = action_values, action_sets
        cols["acts"] = _codes(action_codes, len(action_sets))

    templates: dict[tuple[str, str, str], int] = {}
    values: dict[str, int] = {}
    for side, col in (("neg", "drivers_negative"), ("pos", "drivers_positive")):
        if col in s:
            t, v, imp, k = _drivers(s[col], templates, values, col)
            none = 255 if len(templates) < 255 else NO_DRIVER
            cols[side] = {
                "k": k,
                "none": none,
                "t": _b64(np.where(t == NO_DRIVER, none, t), "u8" if none == 255 else "u16"),
                "v": _codes(v, len(values)),
                "i": _b64(imp, "i16"),
            }
    if templates:
        dicts["tmpl"] = [list(key) for key in templates]
        dicts["val"] = list(values)

    hist = _history(s, history, max_history_runs)
    counts = np.bincount(tier_idx, minlength=len(tier_names))
    tier_arr = np.bincount(tier_idx, weights=np.nan_to_num(arr), minlength=len(tier_names))
    as_of = _first_text(s, "as_of") or _first_text(s, "features_as_of")
    return {
        "meta": {
            "title": title,
            "generated_at": _text(generated_at),
            "model_version": None if model_version is None else str(model_version),
            "as_of": as_of,
            "n": n,
            "page_size": int(page_size),
            "has_arr": "arr" in s,
            "dom_scale": round(max(dom_scale, 0.01), 3),
            "context_domains": [d for d in context_domains if d in domains],
        },
        "tiers": [
            {
                "name": name,
                "colour": colour if _COLOUR.match(str(colour)) else "grey",
                "count": int(counts[i]),
                "arr": round(float(tier_arr[i]), 2),
            }
            for i, (name, colour) in enumerate((str(a), str(b)) for a, b in tiers)
        ],
        "domains": domains,
        "dict": dicts,
        "cols": cols,
        "hist": hist,
    }


def embed_json(data: dict) -> str:
    """JSON safe inside a <script> element: `<`, `>`, `&` and the JS line separators escaped."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def decode_column(col: dict) -> np.ndarray:
    """The numpy array of one base64 column (what the page decodes; for tests and tools)."""
    return np.frombuffer(base64.b64decode(col["b"]), dtype=_DTYPES[col["t"]])


# -- helpers ---------------------------------------------------------------------------------

_DTYPES = {
    "u8": np.dtype("<u1"),
    "i8": np.dtype("<i1"),
    "u16": np.dtype("<u2"),
    "i16": np.dtype("<i2"),
    "u32": np.dtype("<u4"),
    "f64": np.dtype("<f8"),
}


def _b64(values: np.ndarray | Sequence, kind: str) -> dict:
    arr = np.ascontiguousarray(np.asarray(values).astype(_DTYPES[kind]))
    return {"t": kind, "b": base64.b64encode(arr.tobytes()).decode("ascii")}


def _arr_column(arr: np.ndarray) -> dict:
    """ARR in whole units as u32 (4294967295 = unknown), or f64 (-1 = unknown) beyond that."""
    if np.nanmax(arr, initial=0) < ARR_NA and np.nanmin(arr, initial=0) >= 0:
        return _b64(np.where(np.isnan(arr), ARR_NA, np.rint(arr)), "u32") | {"na": ARR_NA}
    return _b64(np.where(np.isnan(arr), -1, arr), "f64") | {"na": -1}


def _codes(values: np.ndarray | Sequence, size: int) -> dict:
    """Indexes into a dictionary of `size` entries, in the smallest unsigned type."""
    return _b64(values, "u8" if size <= 256 else "u16" if size <= 65536 else "u32")


def _require(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DashboardError(f"scores: missing column(s) {', '.join(missing)}")


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(len(frame), np.nan)
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() & frame[col].notna()
    if bad.any():
        raise DashboardError(f"scores: column {col} has a non-number {frame[col][bad].iloc[0]!r}")
    return values.astype("float64").to_numpy()


def _dictionary(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes into a sorted list of distinct strings; missing values become ''."""
    text = series.where(series.notna(), "").astype(str)
    codes, uniques = pd.factorize(text, sort=True)
    return codes, [str(u) for u in uniques]


def _as_list(value: object, column: str) -> list:
    if type(value) is np.ndarray:
        return value.tolist()
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)  # a CSV output holds lists as JSON text
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
        raise DashboardError(f"scores: column {column} holds {value[:40]!r}, not a list")
    raise DashboardError(f"scores: column {column} holds {type(value).__name__}, not a list")


def _action_sets(series: pd.Series) -> tuple[np.ndarray, list[str], list[list[int]]]:
    """Each row's action list as an index into distinct action lists of action indexes."""
    keys = [tuple(str(a) for a in _as_list(v, "actions")) for v in series.to_numpy()]
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))
    actions: dict[str, int] = {}
    sets = [[actions.setdefault(a, len(actions)) for a in key] for key in uniques]
    return codes, list(actions), sets


def _drivers(
    series: pd.Series,
    templates: dict[tuple[str, str, str], int],
    values: dict[str, int],
    column: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Fixed-width (k per account) template, value and impact (×1000) arrays. A driver's text is
    prefix + value + suffix; (prefix, suffix, domain) repeats across accounts, the value less so."""
    rows = [_as_list(v, column) for v in series.to_numpy()]
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    k = int(counts.max()) if len(rows) else 0
    flat = [d for r in rows for d in r]
    try:
        fields = [(d["text"], d.get("value"), d.get("domain"), d.get("impact")) for d in flat]
    except (TypeError, KeyError, AttributeError):
        fields = [_driver_fields(d, column) for d in flat]
    texts = np.empty(len(fields), dtype=object)
    texts[:] = [f[0] for f in fields]
    # the same text always splits the same way: split each distinct text once
    codes, uniques = pd.factorize(texts)
    _, first = np.unique(codes, return_index=True)
    t_of = np.empty(len(uniques), dtype=np.int64)
    v_of = np.empty(len(uniques), dtype=np.int64)
    for u, at_row in enumerate(first):
        text, value, domain, _ = fields[at_row]
        text, value, domain = str(text), str(value or ""), str(domain or "")
        at = text.find(": " + value) + 2 if value else 0
        key = (text[:at], text[at + len(value) :], domain) if at >= 2 else (text, "", domain)
        t_of[u] = templates.setdefault(key, len(templates))
        v_of[u] = values.setdefault(value if at >= 2 else "", len(values))
    t_idx, v_idx = t_of[codes], v_of[codes]
    imp = np.array([np.nan if f[3] is None else f[3] for f in fields], dtype="float64")
    if len(templates) >= NO_DRIVER:
        raise DashboardError(f"scores: column {column} has more than {NO_DRIVER - 1} phrasings")
    # scatter the flat drivers into k slots per account
    slot = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    where = np.repeat(np.arange(len(rows)), counts) * k + slot
    t = np.full(len(rows) * k, NO_DRIVER, dtype=np.int64)
    v = np.zeros(len(rows) * k, dtype=np.int64)
    i = np.zeros(len(rows) * k, dtype=np.int64)
    t[where], v[where] = t_idx, v_idx
    i[where] = np.clip(np.rint(np.nan_to_num(imp) * 1000), -32767, 32767)
    return t, v, i, k


def _driver_fields(d: object, column: str) -> tuple:
    if isinstance(d, str):
        return (d, None, None, None)
    if isinstance(d, dict) and "text" in d:
        return (d["text"], d.get("value"), d.get("domain"), d.get("impact"))
    raise DashboardError(f"scores: column {column} has a driver without 'text': {d!r}")


def _history(s: pd.DataFrame, history: pd.DataFrame | None, max_runs: int) -> dict:
    """Scores per run (oldest first) aligned to the rows, 255 where an account had no score;
    the current run is added when the history does not hold it yet."""
    current = _first_text(s, "as_of")
    runs: dict[str, np.ndarray] = {}
    if history is not None and len(history) and max_runs > 0:
        for col in ("account_id", "as_of", "health_score"):
            if col not in history:
                raise DashboardError(f"history: missing column {col}")
        h = history[["account_id", "as_of", "health_score"]].copy()
        h["as_of"] = pd.to_datetime(h["as_of"], errors="coerce").dt.strftime("%Y-%m-%d")
        if h["as_of"].isna().any():
            raise DashboardError("history: column as_of has values that are not dates")
        h["health_score"] = pd.to_numeric(h["health_score"], errors="coerce")
        h = h.dropna(subset=["health_score"])
        position = pd.Series(np.arange(len(s)), index=s["account_id"].astype(str).to_numpy())
        for day in sorted(h["as_of"].unique())[-max_runs:]:
            run = h[h["as_of"] == day].drop_duplicates("account_id", keep="last")
            row = np.full(len(s), MISSING_SCORE, dtype=np.int64)
            where = run["account_id"].astype(str).map(position)
            ok = where.notna().to_numpy()
            row[where[ok].astype(int).to_numpy()] = np.clip(
                np.rint(run["health_score"].to_numpy()[ok]), 0, 100
            )
            runs[str(day)] = row
    if current and current not in runs:
        runs[current] = np.rint(pd.to_numeric(s["health_score"]).to_numpy()).astype(np.int64)
        runs = dict(sorted(runs.items())[-max(max_runs, 1) :])
    return {"dates": list(runs), "score": [_b64(r, "u8") for r in runs.values()]}


def _first_text(frame: pd.DataFrame, col: str) -> str | None:
    if col not in frame or frame[col].isna().all():
        return None
    return _text(frame[col].dropna().iloc[0])


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        if ts == ts.normalize() and ts.tzinfo is None:
            return ts.strftime("%Y-%m-%d")
        return ts.strftime("%Y-%m-%d %H:%M %Z").strip()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
