"""The `troth` command as a user runs it: keys, customers, errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth
from troth.engagement.stages import STAGES


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    plain = troth("keys", "create", "--source", "shop", db=db).stdout.strip()
    assert plain.startswith("twk_")
    token = json.loads(troth("keys", "create", "--role", "analyst", "--json", db=db).stdout)
    assert token["key"].startswith("ttk_")
    listed = json.loads(troth("keys", "list", "--json", db=db).stdout)
    assert {(k["kind"], k.get("source") or k.get("role")) for k in listed} == {
        ("write_key", "shop"),
        ("token", "analyst"),
    }
    assert all(plain not in json.dumps(k) for k in listed), "a secret was listed"
    troth("keys", "revoke", token["id"], db=db)
    listed = json.loads(troth("keys", "list", "--json", db=db).stdout)
    assert [k["revoked_at"] is not None for k in listed] == [False, True]
    troth("keys", "revoke", plain, db=db)  # by the key itself
    assert all(k["revoked_at"] for k in json.loads(troth("keys", "list", "--json", db=db).stdout))


def test_keys_create_needs_exactly_one_of_source_or_role(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    result = troth("keys", "create", db=db, check=False)
    assert result.returncode == 2
    assert "exactly one" in result.stderr
    result = troth("keys", "create", "--role", "boss", db=db, check=False)
    assert result.returncode == 2
    assert "unknown role" in result.stderr


def test_customers_show_by_any_identifier(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    key = json.loads(troth("keys", "create", "--source", "web", "--json", db=db).stdout)["key"]
    server = Server(db, free_port()).start()
    batch = [
        {
            "type": "page",
            "anonymousId": "anon-7",
            "name": "Home",
            "timestamp": "2026-03-01T10:00:00Z",
        },
        {
            "type": "identify",
            "anonymousId": "anon-7",
            "userId": "u-7",
            "traits": {"email": "zoe@example.com", "name": "Zoe"},
            "timestamp": "2026-03-01T10:05:00Z",
        },
        {
            "type": "track",
            "userId": "u-7",
            "event": "Order Completed",
            "properties": {"revenue": 20},
            "timestamp": "2026-03-02T09:00:00Z",
        },
        {
            "type": "identify",
            "userId": "u-7",
            "traits": {"name": "Zoe B."},
            "timestamp": "2026-03-03T09:00:00Z",
        },
    ]
    try:
        answer = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(key, ""))
        assert answer.status_code == 200
    finally:
        server.stop()
    for identifier in ("anon-7", "u-7", "zoe@example.com"):
        profile = json.loads(troth("customers", "show", identifier, "--json", db=db).stdout)
        assert profile["event_count"] == 4
        assert profile["first_seen"].startswith("2026-03-01T10:00")
        assert profile["last_seen"].startswith("2026-03-03T09:00")
        assert profile["traits"] == {"email": "zoe@example.com", "name": "Zoe B."}
        assert profile["events_by_name"] == {"identify": 2, "page": 1, "Order Completed": 1}
        assert {i["value"] for i in profile["identifiers"]} == {"anon-7", "u-7"}
        assert [(t["at"][:10], t["what"], t["by"]) for t in profile["timeline"]] == [
            ("2026-03-03", "identify", "customer"),
            ("2026-03-02", "Order Completed", "customer"),
            ("2026-03-01", "identify", "customer"),
            ("2026-03-01", "page", "customer"),
        ]
        assert profile["timeline"][1]["details"] == {"revenue": 20}
    text = troth("customers", "show", "u-7", db=db).stdout
    assert "Order Completed" in text and "anon-7" in text and "Latest interactions" in text


def test_customers_show_unknown_id_fails_clearly(tmp_path: Path) -> None:
    result = troth("customers", "show", "ghost", db=tmp_path / "e.duckdb", check=False)
    assert result.returncode == 1
    assert "no customer has the identifier 'ghost'" in result.stderr


def test_database_in_a_missing_folder_fails_clearly(tmp_path: Path) -> None:
    result = troth("keys", "list", db=tmp_path / "nowhere" / "x.duckdb", check=False)
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_invalid_config_fails_clearly(tmp_path: Path) -> None:
    config = tmp_path / "troth.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    result = troth("keys", "list", "--config", str(config), db=tmp_path / "x.duckdb", check=False)
    assert result.returncode == 1
    assert "server.port" in result.stderr


def test_demo_builds_a_fresh_database_and_reports_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run_demo() -> dict:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "troth",
                "demo",
                "--customers",
                "300",
                "--dir",
                str(tmp_path / "demo"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return json.loads(result.stdout)

    first = run_demo()
    assert first["customers"] >= 300
    assert first["events"] == first["import"]["inserted"] > 10_000
    assert first["import"]["rejected"] == 0
    assert first["customers_anonymous_then_identified"] > 50
    assert {"Order Completed", "Review Posted", "Referral Converted"} <= set(
        first["events_by_name"]
    )
    assert (tmp_path / "demo" / "events.parquet").exists()
    assert sum(first["by_phase"].values()) == sum(
        n for stage, n in first["stages"]["by_stage"].items() if stage != "none"
    )
    for move in first["movers"]["up"]:
        assert move["change"] > 0
    examples = first["examples"]
    assert [e["stage"] for e in examples] == sorted(
        (e["stage"] for e in examples), key=STAGES.index, reverse=True
    )
    assert all(e["why"].startswith(f"{e['stage']} because ") for e in examples)
    second = run_demo()  # a fresh database each time, the same seeded data
    assert second["events"] == first["events"]
    assert second["import"]["inserted"] == first["import"]["inserted"]


def test_generate_writes_events_and_truth(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "gen.parquet"
    result = troth(
        "generate",
        "--customers",
        "200",
        "--months",
        "3",
        "--out",
        str(out),
        "--json",
        db=None,
    )
    summary = json.loads(result.stdout)
    assert pq.read_metadata(out).num_rows == summary["events"] > 0
    truth = pq.read_table(out.with_suffix(".truth.parquet"))
    assert truth.num_rows >= 200
    assert "typology" in truth.column_names


def test_demo_never_replaces_a_database_it_did_not_make(tmp_path: Path) -> None:
    real = tmp_path / "prod.duckdb"
    troth("keys", "create", "--source", "website", db=real)
    result = troth(
        "demo",
        "--customers",
        "20",
        "--months",
        "1",
        "--dir",
        str(tmp_path / "d"),
        db=real,
        check=False,
    )
    assert result.returncode == 1
    assert "is not a demo database" in result.stderr
    assert len(json.loads(troth("keys", "list", "--json", db=real).stdout)) == 1


def test_score_and_stages(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "demo"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "troth",
            "demo",
            "--customers",
            "300",
            "--dir",
            str(folder),
            "--json",
        ],
        capture_output=True,
        check=True,
        timeout=300,
    )
    db = folder / "troth.duckdb"
    scored = json.loads(troth("score", "--as-of", "2026-10-01", "--json", db=db).stdout)
    assert scored["as_of"].startswith("2026-10-01")
    assert sum(scored["by_stage"].values()) == scored["customers"]
    # Known by October: 300 less those who withdrew profiling, counted apart.
    assert scored["customers"] + scored["withheld"] > 200
    assert 0 < scored["withheld"] < scored["customers"]
    shown = json.loads(troth("stages", "--json", db=db).stdout)
    assert shown["customers"] == scored["customers"]
    assert shown["withheld"] == sum(shown["withheld_by_reason"].values()) == scored["withheld"]
    text = troth("stages", db=db).stdout
    for reason, n in shown["withheld_by_reason"].items():
        assert f"withheld ({reason}): {n:,} customers" in text
    assert {k: v for k, v in shown["by_stage"].items()} == {
        k: v for k, v in scored["by_stage"].items() if k != "none"
    }
    assert sum(shown["by_phase"].values()) + shown["no_stage"] == shown["customers"]
    moves = json.loads(troth("stages", "--transitions", "--json", db=db).stdout)["transitions"]
    assert moves["periods"][-1] == "2026-09"  # the snapshot at the scoring date closes September
    assert len(moves["periods"]) == 12
    # Everyone with a stage now arrived from somewhere: the last matrix's columns add up.
    last = moves["matrices"]["2026-09"]
    for stage in shown["by_stage"]:
        assert sum(row[stage] for row in last.values()) == shown["by_stage"][stage]
    printed = troth("stages", "--transitions", db=db).stdout
    assert "Moves into 2026-09" in printed and "Cohort flows" in printed
    profile = json.loads(troth("customers", "show", first_user(db), "--json", db=db).stdout)
    customer = profile["engagement"]
    assert list(profile["attributes"]) == ["active", "emotional", "rational", "ethical"]
    for attribute in profile["attributes"].values():
        assert 0 <= attribute["score"] <= 100
        assert all(d["direction"] in ("raises", "lowers") for d in attribute["drivers"])
    card = profile["card"]
    assert card["balance"] == card["earned"] + card["lost"]
    assert len(card["recent"]) <= 8
    assert [e["at"] for e in card["recent"]] == sorted(
        (e["at"] for e in card["recent"]), reverse=True
    )
    assert profile["ladder"]["rung"] in (
        None,
        "inform",
        "entice",
        "activate",
        "reciprocate",
        "advocate",
    )
    ladder = json.loads(troth("stages", "--ladder", "--json", db=db).stdout)["ladder"]
    reached = list(ladder["overall"]["reached"].values())
    assert reached == sorted(reached, reverse=True) and reached[0] > 0
    assert (
        sum(g["customers"] for g in ladder["by_segment"].values()) == ladder["overall"]["customers"]
    )
    assert "Ladder: customers per rung" in troth("stages", "--ladder", db=db).stdout
    ranked = json.loads(
        troth("customers", "list", "--sort", "emotional", "--limit", "5", "--json", db=db).stdout
    )["customers"]
    assert [c["emotional"] for c in ranked] == sorted(
        (c["emotional"] for c in ranked), reverse=True
    )
    assert ranked[0]["emotional"] > 0
    assert customer["as_of"].startswith("2026-10-01")
    assert [e["stage"] for e in customer["evidence"]] == [
        "connection",
        "interaction",
        "satisfaction",
        "retention",
        "commitment",
        "advocacy",
        "engagement",
    ]
    held = [e["stage"] for e in customer["evidence"] if e["held"]]
    if customer["stage"] is not None:
        assert customer["stage"] in held
        rank = [e["stage"] for e in customer["evidence"]].index(customer["stage"])
        assert all(e["held"] is False for e in customer["evidence"][rank + 1 :])
    for item in customer["evidence"]:
        for requirement in item["requirements"]:
            assert requirement["held"] == any(c["held"] for c in requirement["any_of"])
    bad = troth("score", "--as-of", "someday", db=db, check=False)
    assert bad.returncode == 2 and "--as-of" in bad.stderr


def test_stages_before_any_score_says_what_to_do(tmp_path: Path) -> None:
    result = troth("stages", db=tmp_path / "fresh.duckdb", check=False)
    assert result.returncode == 1
    assert "troth score" in result.stderr


def first_user(db: Path) -> str:
    """Return a userId from the database (read-only), for commands that need one."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT value FROM identifiers WHERE kind = 'user_id' AND first_seen IS NOT NULL "
            "ORDER BY value LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()


def test_customers_list_filters_and_sorts(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "demo"
    subprocess.run(
        [sys.executable, "-m", "troth", "demo", "--customers", "300", "--dir", str(folder)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    db = folder / "troth.duckdb"
    everyone = json.loads(troth("customers", "list", "--limit", "1000", "--json", db=db).stdout)
    # 300 customers less those whose scores are withheld for lack of consent.
    assert everyone["total"] == len(everyone["customers"]) > 200
    revenues = [c["revenue"] for c in everyone["customers"]]
    assert revenues == sorted(revenues, reverse=True)
    retained = json.loads(
        troth(
            "customers",
            "list",
            "--stage",
            "retention",
            "--cognitive-loyalty",
            "--limit",
            "1000",
            "--json",
            db=db,
        ).stdout
    )
    assert all(c["stage"] == "retention" and c["cognitive_loyalty"] for c in retained["customers"])
    page = json.loads(
        troth(
            "customers",
            "list",
            "--sort",
            "recency_days",
            "--limit",
            "5",
            "--offset",
            "5",
            "--json",
            db=db,
        ).stdout
    )
    assert len(page["customers"]) == 5
    recency = [c["recency_days"] for c in page["customers"] if c["recency_days"] is not None]
    assert recency == sorted(recency)
    bad = troth("customers", "list", "--stage", "bliss", db=db, check=False)
    assert bad.returncode == 1 and "unknown stage 'bliss'" in bad.stderr
