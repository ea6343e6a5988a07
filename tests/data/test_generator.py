"""Expectations on the synthetic book of business: deterministic, realistic, not too predictable."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features import contract
from features.io import read_source
from features.synthetic import generator as gen
from features.synthetic.generator import GeneratorConfig, generate_book

TINY = GeneratorConfig(accounts=400, months=12, seed=3)


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: read_source(folder, name) for name in contract.SOURCES}


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    generate_book(TINY, tmp_path / "a")
    generate_book(TINY, tmp_path / "b")
    generate_book(GeneratorConfig(accounts=400, months=12, seed=4), tmp_path / "c")
    a, b, c = _tables(tmp_path / "a"), _tables(tmp_path / "b"), _tables(tmp_path / "c")
    for name in contract.SOURCES:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    assert not a["usage"].equals(c["usage"])


def test_worker_count_does_not_change_the_data(tmp_path: Path) -> None:
    generate_book(TINY, tmp_path / "one", workers=1, chunk_accounts=150)
    generate_book(TINY, tmp_path / "two", workers=2, chunk_accounts=150)
    assert len(list((tmp_path / "one" / "usage").glob("*.parquet"))) == 3
    one, two = _tables(tmp_path / "one"), _tables(tmp_path / "two")
    for name in contract.SOURCES:
        pd.testing.assert_frame_equal(one[name], two[name], obj=name)


def test_every_source_has_exactly_the_contract_columns(book: tuple[Path, dict]) -> None:
    folder, _ = book
    for name, source in contract.SOURCES.items():
        df = read_source(folder, name)
        assert tuple(df.columns) == source.column_names, name
        assert len(df) > 0, name


def test_churn_rate_per_segment_within_configured_bounds(book: tuple[Path, dict]) -> None:
    _, manifest = book
    target = gen.GeneratorConfig().annual_churn
    for segment, rate in manifest["annual_churn_rate_by_segment"].items():
        assert abs(rate - target[segment]) < 0.05, (segment, rate)
    # Enterprise churns least, SMB most, as configured.
    churn = manifest["annual_churn_rate_by_segment"]
    assert churn["enterprise"] < churn["mid_market"] < churn["smb"]


def test_no_model_can_be_perfect_and_health_is_learnable(book: tuple[Path, dict]) -> None:
    _, manifest = book
    assert 0.65 < manifest["ceiling_auc"] < 0.95
    assert 0.65 < manifest["ceiling_auc_by_term"]["annual_or_longer"] < 0.92


def _account_level(folder: Path) -> pd.DataFrame:
    q = f"""
    with h as (select account_id, avg(latent_health) as health
               from read_parquet('{folder}/_truth/latent_health/*.parquet') group by 1),
         u as (select account_id, avg(active_users / greatest(seats_used, 1)) as utilisation
               from read_parquet('{folder}/usage/*.parquet') group by 1),
         s as (select account_id, avg(nps) as nps
               from read_parquet('{folder}/surveys/*.parquet') where nps is not null group by 1),
         i as (select account_id, avg((paid_at > due_at)::int) as late_share
               from read_parquet('{folder}/invoices/*.parquet') group by 1)
    select * from h left join u using (account_id) left join s using (account_id)
                    left join i using (account_id)
    """
    return duckdb.sql(q).df()


def test_latent_health_drives_usage_nps_and_late_payments(book: tuple[Path, dict]) -> None:
    df = _account_level(book[0])
    corr = df.drop(columns="account_id").corr()["health"]
    assert corr["utilisation"] > 0.25
    assert corr["nps"] > 0.3
    assert corr["late_share"] < -0.1
    # ...but none is a perfect readout of health.
    assert corr[["utilisation", "nps", "late_share"]].abs().max() < 0.9


def test_realistic_missingness(book: tuple[Path, dict]) -> None:
    folder, _ = book
    accounts = read_source(folder, "accounts")
    tickets = read_source(folder, "tickets", ["account_id"])
    surveys = read_source(folder, "surveys", ["account_id", "responded_at"])
    never_ticket = 1 - tickets["account_id"].nunique() / len(accounts)
    answered = surveys.dropna(subset=["responded_at"])["account_id"].nunique()
    assert never_ticket > 0.1
    assert 1 - answered / len(accounts) > 0.1
    assert accounts["csm_owner"].isna().mean() > 0.05  # tech-touch accounts have no CSM
    outcomes = read_source(folder, "contracts", ["outcome"])["outcome"]
    assert set(outcomes.dropna()) == set(contract.OUTCOMES)
    assert outcomes.isna().any()  # terms still running have no decision yet


def test_weekly_seasonality_in_usage(book: tuple[Path, dict]) -> None:
    usage = read_source(book[0], "usage", ["date", "active_users"])
    by_day = usage.groupby(usage["date"].dt.dayofweek)["active_users"].mean()
    assert by_day.loc[[5, 6]].max() < 0.5 * by_day.loc[[0, 1, 2, 3, 4]].min()


def test_drift_shifts_recent_smb_usage_and_mid_market_price(tmp_path: Path) -> None:
    base = GeneratorConfig(accounts=1_200, months=12, seed=5)
    drifted = GeneratorConfig(accounts=1_200, months=12, seed=5, drift=True)
    m0 = generate_book(base, tmp_path / "base")
    m1 = generate_book(drifted, tmp_path / "drift")
    assert m0["drift"] is None and m1["drift"]["start"] == "2026-08-01"
    q = """select a.segment, (u.date >= date '2026-08-01') as recent,
                  avg(u.active_users / greatest(u.seats_used, 1)) as util
           from read_parquet('{d}/usage/*.parquet') u
           join read_parquet('{d}/accounts/*.parquet') a using (account_id) group by all"""
    u0 = duckdb.sql(q.format(d=tmp_path / "base")).df().set_index(["segment", "recent"])["util"]
    u1 = duckdb.sql(q.format(d=tmp_path / "drift")).df().set_index(["segment", "recent"])["util"]
    assert u1["smb", True] < 0.75 * u0["smb", True]
    assert u1["mid_market", True] == pytest.approx(u0["mid_market", True], rel=0.1)
    changes = read_source(tmp_path / "drift", "plan_changes")
    recent_mm_price = changes[
        (changes["change_type"] == "price_increase") & (changes["changed_at"] >= "2026-08-01")
    ]
    assert len(recent_mm_price) > 100


def test_failed_run_leaves_previous_output_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "raw"
    generate_book(TINY, out, chunk_accounts=200)
    before = json.loads((out / "manifest.json").read_text())
    calls = {"n": 0}
    real = gen._simulate_chunk

    def crash_on_second(*args: object) -> dict:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed half-way")
        return real(*args)

    monkeypatch.setattr(gen, "_simulate_chunk", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        generate_book(GeneratorConfig(accounts=400, months=12, seed=99), out, chunk_accounts=200)
    assert json.loads((out / "manifest.json").read_text()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temporary folder left behind


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"accounts": 0}, "accounts"),
        ({"months": 0}, "months"),
        ({"segment_mix": {"smb": 1.0}}, "segment_mix"),
        ({"annual_churn": {"smb": 1.5, "mid_market": 0.1, "enterprise": 0.1}}, "annual_churn"),
    ],
)
def test_bad_generator_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**kwargs)
