"""The one-page health dashboard: rendered from real batch scores (three runs of the champion on
the shared small book) and opened in headless Chromium, asserting on what the page shows — the
traffic lights, the at-risk list by ARR, filters from the URL hash, a drill-down, a screenshot —
plus the embedded data and its escaping without a browser."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import pytest

from healthscore import pipeline
from serving.dashboard import (
    DashboardError,
    dashboard_data,
    decode_column,
    embed_json,
    load_history,
    render_dashboard,
    tiers_from_scores,
    write_dashboard,
)
from tests.model.conftest import workspace_copy

AS_OF = pd.Timestamp("2026-10-31").date()  # the end of the shared book
RUNS = [AS_OF - timedelta(days=56), AS_OF - timedelta(days=28), AS_OF]
PAGE = 25  # rows per page in these tests
EVIL_NAME = "<img src=x onerror=\"document.title='pwned'\">Evil & Co </script><b>x</b>"
EVIL_DRIVER = "tickets <script>window.pwned=1</script> & more: 7 (renewing accounts: 1)"
EVIL_ACTION = "Call </script><script>document.title='pwned'</script> now"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The champion's scores of three monthly runs (history) in a copy of the trained workspace."""
    settings = workspace_copy(trained, tmp_path_factory.mktemp("dash") / "ws")
    pipeline.promote(settings, None, force=False, reason="")
    runs = [pipeline.score(settings, day) for day in RUNS]
    latest = runs[-1]
    history = load_history(settings.scores_dir / "history")
    tiers = tiers_from_scores(latest.scores)
    return {"scores": latest.scores, "history": history, "run": latest, "tiers": tiers}


@pytest.fixture(scope="module")
def page(scored: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    html = render_dashboard(
        scored["scores"],
        scored["history"],
        scored["tiers"],
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
        scored["run"].model_version,
        title="Health <test> & co",
        page_size=PAGE,
    )
    return write_dashboard(tmp_path_factory.mktemp("page") / "dashboard.html", html)


def chromium() -> str:
    """The browser, or a skip with the reason (a failure under CI=true)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found:
        return found
    message = "headless Chromium not found (Debian package `chromium`, /usr/bin/chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


def browse(
    path: Path, tmp_path: Path, hash_: dict | None = None, screenshot: Path | None = None
) -> Element:
    """Open `path#hash` in headless Chromium (own profile in tmp) and parse the rendered DOM."""
    url = path.resolve().as_uri() + ("#" + urlencode(hash_, quote_via=quote) if hash_ else "")
    args = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,900",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    if screenshot:
        return Element("screenshot", {})
    root = parse_html(done.stdout)
    html = root.find(tag="html")
    assert html.attrs.get("data-ready") == "1", "the page's script did not finish"
    return root


# -- a small DOM for assertions --------------------------------------------------------------

VOID = {"meta", "link", "br", "hr", "img", "input", "col", "source", "area", "base", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Element):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        def match(e: Element) -> bool:
            if tag and e.tag != tag:
                return False
            for k, v in attrs.items():
                key = k.replace("_", "-").removesuffix("-")
                have = e.attrs.get(key)
                if key == "class":
                    if have is None or v not in have.split():
                        return False
                elif (v is not True and have != v) or (v is True and have is None):
                    return False
            return True

        return [e for e in self.iter() if match(e)]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'} {attrs}> in the page"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        e = Element(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(e)
        if tag not in VOID:
            self.stack.append(e)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


def by_arr(frame: pd.DataFrame) -> pd.DataFrame:
    """The page's order: ARR, largest first; account id breaks ties."""
    return frame.assign(_a=frame["arr"].fillna(-1)).sort_values(
        ["_a", "account_id"], ascending=[False, True]
    )


def rows_of(dom: Element) -> list[Element]:
    return dom.find(tag="tbody", id="rows").find_all(tag="tr", data_account=True)


# -- in the browser --------------------------------------------------------------------------


def test_traffic_lights_show_each_tiers_accounts_and_arr(
    scored: dict, page: Path, tmp_path: Path
) -> None:
    dom = browse(page, tmp_path)
    frame = scored["scores"]
    lights = dom.find(id="lights").find_all(tag="button", class_="light")
    assert [b.attrs["data-tier"] for b in lights] == [n for n, _ in scored["tiers"]]
    assert [n for n, _ in scored["tiers"]] == scored["run"].tiers  # healthiest first, as the model
    counts = frame["tier"].value_counts()
    arr = frame.groupby("tier")["arr"].sum()
    for b in lights:
        tier = b.attrs["data-tier"]
        assert int(b.attrs["data-count"]) == counts.get(tier, 0)
        assert f"{counts.get(tier, 0):,}" in b.find(class_="count").text()
        assert float(b.attrs["data-arr"]) == pytest.approx(arr.get(tier, 0), rel=1e-9, abs=0.01)
        assert "ARR" in b.text()
    meta = dom.find(id="meta").text()
    assert f"{len(frame):,} accounts" in meta and "2026-10-31" in meta
    assert dom.find(tag="title").text() == "Health <test> & co"  # escaped, shown literally


def test_at_risk_list_is_sorted_by_arr_and_paginated(scored: dict, page: Path, tmp_path: Path):
    dom = browse(page, tmp_path)
    frame = scored["scores"]
    healthiest = scored["tiers"][0][0]
    at_risk = by_arr(frame[frame["tier"] != healthiest])
    assert len(at_risk) > PAGE  # the test needs more than one page
    rows = rows_of(dom)
    assert len(rows) == PAGE  # only one page of rows in the DOM
    assert [r.attrs["data-account"] for r in rows] == at_risk["account_id"].head(PAGE).tolist()
    arrs = [float(r.attrs["data-arr"]) for r in rows]
    assert arrs == sorted(arrs, reverse=True)
    assert healthiest not in {r.attrs["data-tier"] for r in rows}
    assert int(dom.find(id="count").attrs["data-total"]) == len(at_risk)
    # page 2 continues where page 1 stopped
    dom2 = browse(page, tmp_path, {"page": 2})
    assert [r.attrs["data-account"] for r in rows_of(dom2)] == (
        at_risk["account_id"].iloc[PAGE : 2 * PAGE].tolist()
    )


def test_hash_filters_show_only_that_tier_segment_and_owner(
    scored: dict, page: Path, tmp_path: Path
) -> None:
    frame = scored["scores"]
    worst = scored["tiers"][-1][0]
    segment = frame.loc[frame["tier"] == worst, "segment"].value_counts().index[0]
    expected = by_arr(frame[(frame["tier"] == worst) & (frame["segment"] == segment)])
    dom = browse(page, tmp_path, {"tier": worst, "segment": segment})
    rows = rows_of(dom)
    assert rows and {r.attrs["data-tier"] for r in rows} == {worst}
    assert {r.attrs["data-segment"] for r in rows} == {segment}
    assert int(dom.find(id="count").attrs["data-total"]) == len(expected)
    assert [r.attrs["data-account"] for r in rows] == expected["account_id"].head(PAGE).tolist()
    assert dom.find(tag="select", id="f-tier").attrs  # the selects exist
    owner = frame["csm_owner"].value_counts().index[0]
    dom = browse(page, tmp_path, {"tier": "all", "csm": owner})
    rows = rows_of(dom)
    assert {r.attrs["data-csm"] for r in rows} == {owner}
    assert int(dom.find(id="count").attrs["data-total"]) == int((frame["csm_owner"] == owner).sum())
    # text search on the account id
    some = frame["account_id"].iloc[len(frame) // 2]
    dom = browse(page, tmp_path, {"tier": "all", "q": some.lower()})
    assert [r.attrs["data-account"] for r in rows_of(dom)] == [some]


def test_drill_down_shows_trend_domains_drivers_and_actions(
    scored: dict, page: Path, tmp_path: Path
) -> None:
    frame = scored["scores"].set_index("account_id")
    runs = scored["history"].groupby("account_id").size()
    # the lowest score among accounts scored in every run: pinned by the hash, not the list's top
    account = frame.loc[runs.index[runs == len(RUNS)], "health_score"].idxmin()
    row = frame.loc[account]
    dom = browse(page, tmp_path, {"tier": "all", "account": account})
    detail = dom.find(id="detail")
    assert detail.attrs["data-account"] == account
    assert dom.find(id="d-score").text() == str(row["health_score"])
    assert row["tier"] in dom.find(id="d-tier").text()
    shown_neg = [e.text() for e in dom.find(id="d-neg").find_all(class_="txt")]
    shown_pos = [e.text() for e in dom.find(id="d-pos").find_all(class_="txt")]
    assert shown_neg == [d["text"] for d in row["drivers_negative"]]
    assert shown_pos == [d["text"] for d in row["drivers_positive"]]
    assert [li.text() for li in dom.find(id="d-actions").find_all(tag="li")] == list(row["actions"])
    history = scored["history"].query("account_id == @account").sort_values("as_of")
    assert len(history) == len(RUNS)
    assert dom.find(id="trend").attrs["data-points"] == ",".join(
        str(int(v)) for v in history["health_score"]
    )
    assert dom.find(id="trend").find_all(tag="polyline")  # the sparkline is drawn
    bars = {
        b.attrs["data-domain"]: float(b.attrs["data-value"]) for b in dom.find_all(class_="bar")
    }
    domains = [c.removeprefix("domain_") for c in frame.columns if c.startswith("domain_")]
    assert set(bars) == set(domains)
    for d in domains:
        assert bars[d] == pytest.approx(row[f"domain_{d}"], abs=0.006)
    # an unknown account says so instead of showing another one silently
    dom = browse(page, tmp_path, {"account": "NOPE"})
    assert "NOPE is not in these scores" in dom.find(id="d-missing").text()


def test_screenshot_is_a_real_picture(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    browse(page, tmp_path, {"tier": "risk"}, screenshot=shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 900)
    idat = b"".join(_png_chunks(data, b"IDAT"))
    pixels = zlib.decompress(idat)
    # a blank or single-colour page compresses to almost nothing and has few distinct bytes
    assert len(data) > 40_000
    assert len(set(pixels)) > 64


def _png_chunks(data: bytes, kind: bytes):
    pos = 8
    while pos < len(data):
        length, name = struct.unpack(">I4s", data[pos : pos + 8])
        if name == kind:
            yield data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def test_html_in_names_drivers_and_actions_is_shown_as_text(scored: dict, tmp_path: Path) -> None:
    frame = by_arr(scored["scores"]).reset_index(drop=True)
    frame.loc[0, "account_name"] = EVIL_NAME
    drivers = list(frame.loc[0, "drivers_negative"])
    drivers[0] = {**drivers[0], "text": EVIL_DRIVER, "value": "7"}
    frame.at[0, "drivers_negative"] = drivers
    frame.at[0, "actions"] = [EVIL_ACTION, *frame.loc[0, "actions"]]
    evil_owner = 'Eve "</select><script>window.pwned=2</script>'
    frame.loc[0, "csm_owner"] = evil_owner
    html = render_dashboard(
        frame, scored["history"], scored["tiers"], "now", "1", title="</title><script>x</script>"
    )
    assert html.count("<script") == 2  # the data block and the page's own script, nothing more
    path = write_dashboard(tmp_path / "evil.html", html)
    account = frame.loc[0, "account_id"]
    dom = browse(path, tmp_path, {"tier": "all", "account": account})
    assert dom.find(tag="title").text() == "</title><script>x</script>"
    assert dom.find(id="d-name").text() == EVIL_NAME
    assert EVIL_DRIVER in [e.text() for e in dom.find(id="d-neg").find_all(class_="txt")]
    assert dom.find(id="d-actions").find_all(tag="li")[0].text() == EVIL_ACTION
    assert evil_owner in [o.text() for o in dom.find(id="f-csm").find_all(tag="option")]
    assert not dom.find_all(tag="img") and not dom.find_all(tag="b")
    assert len(dom.find_all(tag="script")) == 2


# -- without a browser -----------------------------------------------------------------------


def test_embedded_data_round_trips_compactly(scored: dict) -> None:
    frame, history = scored["scores"], scored["history"]
    data = dashboard_data(frame, history, scored["tiers"], "now", "7", page_size=PAGE)
    order = by_arr(frame).reset_index(drop=True)
    cols, dicts = data["cols"], data["dict"]
    assert cols["id"] == order["account_id"].tolist()
    tiers = [t["name"] for t in data["tiers"]]
    assert [tiers[i] for i in decode_column(cols["tier"])] == order["tier"].tolist()
    assert decode_column(cols["score"]).tolist() == order["health_score"].tolist()
    np.testing.assert_allclose(decode_column(cols["arr"]), order["arr"].round(), atol=0.5)
    # a missing owner or segment is shown empty
    csm = [dicts["csm"][i] for i in decode_column(cols["csm"])]
    assert csm == order["csm_owner"].fillna("").tolist()
    assert [dicts["seg"][i] for i in decode_column(cols["seg"])] == order["segment"].tolist()
    sets = [
        [dicts["action"][a] for a in dicts["actionSet"][i]] for i in decode_column(cols["acts"])
    ]
    assert sets == [list(a) for a in order["actions"]]
    for side, col in (("neg", "drivers_negative"), ("pos", "drivers_positive")):
        d = cols[side]
        t, v = decode_column(d["t"]), decode_column(d["v"])
        texts = [
            [
                dicts["tmpl"][t[i * d["k"] + j]][0]
                + dicts["val"][v[i * d["k"] + j]]
                + dicts["tmpl"][t[i * d["k"] + j]][1]
                for j in range(d["k"])
                if t[i * d["k"] + j] != d["none"]
            ]
            for i in range(len(order))
        ]
        assert texts == [[x["text"] for x in drivers] for drivers in order[col]]
        # driver phrasings are shared: far fewer templates than drivers
        assert len(dicts["tmpl"]) * 10 < sum(len(x) for x in texts)
    for k, d in enumerate(c.removeprefix("domain_") for c in frame if c.startswith("domain_")):
        assert data["domains"][k] == d
        np.testing.assert_allclose(
            decode_column(cols[f"dom_{d}"]) / 100, order[f"domain_{d}"], atol=0.006
        )
    # history: one row per run, oldest first, aligned to the accounts
    assert data["hist"]["dates"] == [str(d) for d in RUNS]
    pivot = history.pivot(index="account_id", columns="as_of", values="health_score")
    for r, day in enumerate(data["hist"]["dates"]):
        got = decode_column(data["hist"]["score"][r]).astype(float)
        want = order["account_id"].map(pivot[day]).fillna(255).to_numpy()
        np.testing.assert_array_equal(got, want)
    assert [t["count"] for t in data["tiers"]] == [
        int((frame["tier"] == n).sum()) for n, _ in scored["tiers"]
    ]
    # compact: well under the plain JSON records of the same columns
    records = frame.drop(columns=["as_of", "features_as_of"]).to_json(orient="records")
    assert len(embed_json(data)) < 0.5 * len(records)


def test_embedding_escapes_what_could_end_the_script() -> None:
    text = embed_json({"a": "</script><!-- & \u2028 \u2029 >"})
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028 \u2029 >"}


def _tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3"],
            "health_score": [90, 70, 30],
            "tier": ["healthy", "at risk", "unhealthy"],
            "tier_colour": ["green", "yellow", "red"],
            "arr": [10.0, None, 30.0],
            "drivers_negative": [
                [],
                ["plain text driver"],
                json.dumps([{"text": "a: 1", "value": "1"}]),
            ],
            "actions": [["x"], ["y", "x"], "[]"],
        }
    )


def test_minimal_frame_and_csv_style_lists() -> None:
    frame = _tiny()
    tiers = tiers_from_scores(frame)
    assert tiers == [("healthy", "green"), ("at risk", "yellow"), ("unhealthy", "red")]
    data = dashboard_data(frame, None, tiers, "now", None)
    assert data["cols"]["id"] == ["A3", "A1", "A2"]  # unknown ARR last
    assert decode_column(data["cols"]["arr"]).tolist()[2] == data["cols"]["arr"]["na"]
    assert data["hist"] == {"dates": [], "score": []}  # no as_of column, no history
    html = render_dashboard(frame, None, tiers, "now", None)
    assert "<!DOCTYPE html>" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html  # nothing fetched from the network


def test_bad_input_names_the_column(tmp_path: Path) -> None:
    frame = _tiny()
    tiers = tiers_from_scores(frame)
    with pytest.raises(DashboardError, match=r"missing column.*tier"):
        dashboard_data(frame.drop(columns=["tier"]), None, tiers, "now", None)
    with pytest.raises(DashboardError, match=r"tier has \['unhealthy'\]"):
        dashboard_data(frame, None, tiers[:2], "now", None)
    with pytest.raises(DashboardError, match="account_id repeats 'A1'"):
        dashboard_data(frame.assign(account_id=["A1", "A1", "A2"]), None, tiers, "now", None)
    with pytest.raises(DashboardError, match="column arr has a non-number 'lots'"):
        dashboard_data(frame.assign(arr=["lots", 1, 2]), None, tiers, "now", None)
    with pytest.raises(DashboardError, match="health_score must be numbers from 0 to 100"):
        dashboard_data(frame.assign(health_score=[1, 2, 300]), None, tiers, "now", None)
    with pytest.raises(DashboardError, match="drivers_negative holds 'oops'"):
        dashboard_data(frame.assign(drivers_negative=["oops", [], []]), None, tiers, "now", None)
    with pytest.raises(DashboardError, match="history: missing column as_of"):
        dashboard_data(
            frame, pd.DataFrame({"account_id": ["A1"], "health_score": [1]}), tiers, "x", None
        )


def test_write_dashboard_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "dashboard.html"
    write_dashboard(target, "first")
    write_dashboard(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["dashboard.html"]  # no temp file left


def test_configured_tiers_keep_an_empty_tier() -> None:
    frame = _tiny().query("tier != 'at risk'")
    configured = [("healthy", "green"), ("at risk", "yellow"), ("unhealthy", "red")]
    assert tiers_from_scores(frame) == [("healthy", "green"), ("unhealthy", "red")]
    assert tiers_from_scores(frame, configured) == configured
    data = dashboard_data(frame, None, configured, "now", None)
    assert [t["count"] for t in data["tiers"]] == [1, 0, 1]
    # a configuration that does not name the frame's tiers is not used
    assert tiers_from_scores(frame, [("good", "green"), ("bad", "red")])[0] == ("healthy", "green")
