"""`troth value`, value in customers show/list and the value API, driven as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Server, free_port, troth

COMPONENTS = ("clv", "crv", "civ", "ckv")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A scored demo database of 400 customers and what `troth demo --json` printed."""
    folder = tmp_path_factory.mktemp("value") / "demo"
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "troth",
            "demo",
            "--customers",
            "400",
            "--dir",
            str(folder),
            "--json",
        ],
        capture_output=True,
        check=True,
        text=True,
        timeout=300,
    )
    return folder / "troth.duckdb", json.loads(printed.stdout)


def test_demo_reports_top_cev_and_at_risk(demo: tuple[Path, dict]) -> None:
    _, printed = demo
    value = printed["stages"]["value"]
    assert value["purchase_status"] == value["spend_status"] == "fitted"
    assert value["buyers"] > 100
    top = [row["cev"] for row in printed["top_cev"]]
    assert top == sorted(top, reverse=True) and len(top) == 5
    for row in printed["top_cev"]:
        assert row["cev"] == pytest.approx(sum(row[c] for c in COMPONENTS))
    stakes = [row["value_at_risk"] for row in printed["at_risk"]]
    assert stakes == sorted(stakes, reverse=True)
    assert all(row["p_alive"] < 0.5 for row in printed["at_risk"])


def test_value_overview(demo: tuple[Path, dict]) -> None:
    db, printed = demo
    overview = json.loads(troth("value", "--top", "3", "--json", db=db).stdout)
    models = {m["component"]: m for m in overview["models"]}
    assert models["purchase"]["model"] == "bgnbd" and models["purchase"]["status"] == "fitted"
    assert set(models["purchase"]["params"]) == {"r", "alpha", "a", "b"}
    assert all(se > 0 for se in models["purchase"]["standard_errors"].values())
    assert set(models["spend"]["params"]) == {"p", "q", "v"}
    totals = overview["totals"]
    assert totals["cev"] == pytest.approx(sum(totals[c] for c in COMPONENTS))
    assert totals["clv"] == pytest.approx(printed["stages"]["value"]["total_clv"])
    assert overview["customers"] == printed["stages"]["customers"]
    assert sum(b["buyers"] for b in overview["p_alive_bands"]) == overview["buyers"]
    clv = list(overview["quantiles"]["clv"].values())
    assert clv == sorted(clv)
    assert len(overview["top_cev"]) == 3 and len(overview["at_risk_customers"]) <= 3
    text = troth("value", db=db).stdout
    for heading in ("Fits", "Distribution", "Top customers by CEV", "At risk", "in-sample"):
        assert heading in text


def test_holdout_check(demo: tuple[Path, dict]) -> None:
    db, _ = demo
    check = json.loads(troth("value", "--calibration-end", "2026-07-01", "--json", db=db).stdout)
    assert check["model"] == "bgnbd" and check["holdout_periods"] > 10
    buckets = check["by_frequency"]
    assert [b["frequency"] for b in buckets][-1] == "7+"
    assert sum(b["customers"] for b in buckets) == check["total"]["customers"]
    assert sum(b["actual_total"] for b in buckets) == pytest.approx(check["total"]["actual_total"])
    assert check["total"]["actual_total"] > 0
    # A fitted model forecasts the holdout better than carrying each customer's rate forward.
    assert check["total"]["mae"] < check["total"]["naive_mae"]
    pareto = json.loads(
        troth(
            "value", "--calibration-end", "2026-07-01", "--model", "pareto_nbd", "--json", db=db
        ).stdout
    )
    assert set(pareto["params"]) == {"r", "alpha", "s", "beta"}
    assert pareto["total"]["actual_total"] == check["total"]["actual_total"]
    text = troth("value", "--calibration-end", "2026-07-01", db=db).stdout
    assert "Holdout check" in text and "7+" in text and "naive" in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--calibration-end", "July"), 2, "is not a date"),
        (("--calibration-end", "2026-07-01", "--model", "arima"), 2, "unknown model"),
        (("--observation-end", "2026-07-01"), 2, "add --calibration-end"),
        (
            ("--calibration-end", "2026-07-01", "--observation-end", "2026-06-01"),
            1,
            "must be before the observation end",
        ),
        (("--calibration-end", "2020-01-01"), 1, "no orders on or before"),
        (("--calibration-end", "2030-01-01"), 1, "no orders after"),
    ],
)
def test_value_refuses_bad_input_clearly(
    demo: tuple[Path, dict], args: tuple[str, ...], code: int, message: str
) -> None:
    db, _ = demo
    result = troth("value", *args, db=db, check=False)
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_value_before_any_score_says_what_to_do(tmp_path: Path) -> None:
    result = troth("value", db=tmp_path / "empty.duckdb", check=False)
    assert result.returncode == 1
    assert "run `troth score` first" in result.stderr


def test_customers_show_and_list_carry_value(demo: tuple[Path, dict]) -> None:
    db, printed = demo
    best = printed["top_cev"][0]
    profile = json.loads(troth("customers", "show", best["customer_id"], "--json", db=db).stdout)
    value = profile["value"]
    assert value["cev"] == pytest.approx(best["cev"])
    assert value["cev"] == pytest.approx(sum(value[c] for c in COMPONENTS))
    assert 0 <= value["p_alive"] <= 1
    assert value["expected_purchases_365d"] >= value["expected_purchases_90d"] >= 0
    shown = troth("customers", "show", best["customer_id"], db=db).stdout
    assert "Customer engagement value (CEV)" in shown and "CRV (referral)" in shown
    for key in ("cev", "clv", "p_alive"):
        page = json.loads(
            troth("customers", "list", "--sort", key, "--limit", "1000", "--json", db=db).stdout
        )
        values = [c[key] for c in page["customers"] if c[key] is not None]
        assert values == sorted(values, reverse=True)
        # Customers without orders have no P(alive): they come after everyone who has one.
        missing = [c[key] is None for c in page["customers"]]
        assert missing == sorted(missing)
    assert page["customers"][0]["customer_id"] is not None
    text = troth("customers", "list", "--sort", "cev", "--limit", "3", db=db).stdout
    assert "CEV" in text
    wrong = troth("customers", "list", "--sort", "wealth", db=db, check=False)
    assert wrong.returncode == 1 and "clv" in wrong.stderr


def test_value_api_roles(demo: tuple[Path, dict]) -> None:
    db, _ = demo
    tokens = {
        role: json.loads(troth("keys", "create", "--role", role, "--json", db=db).stdout)["key"]
        for role in ("viewer", "analyst")
    }
    server = Server(db, free_port()).start()
    try:

        def get(path: str, role: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            return httpx.get(f"{server.url}{path}", headers=headers, timeout=30)

        seen = get("/api/v1/value?top=4", "viewer")
        assert seen.status_code == 200
        body = seen.json()
        assert body["top_cev"] == [] and body["at_risk_customers"] == []  # aggregates only
        assert body["totals"]["cev"] > 0
        full = get("/api/v1/value?top=4", "analyst").json()
        assert len(full["top_cev"]) == 4
        assert full["totals"] == body["totals"]
        assert get("/api/v1/value/at-risk?limit=2", "viewer").status_code == 403
        risky = get("/api/v1/value/at-risk?limit=2", "analyst")
        assert risky.status_code == 200 and len(risky.json()) <= 2
        assert get("/api/v1/value?top=-1", "analyst").status_code == 400
        best = full["top_cev"][0]["customer_id"]
        customer = get(f"/api/v1/customers/{best}", "analyst").json()
        assert customer["value"]["cev"] == pytest.approx(full["top_cev"][0]["cev"])
        listed = get("/api/v1/customers?sort=cev&limit=2", "analyst").json()
        assert listed["customers"][0]["customer_id"] == best
    finally:
        server.stop()
