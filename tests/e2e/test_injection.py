"""Hostile text in every id, filter, sort and file parameter is stored or refused, never run.

Each attempt must leave the database intact (same tables, same events and identifiers) and get
a normal answer: the thing stored as text, an empty result, or a clear 400/404 or CLI error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import pytest

from tests.e2e.harness import Server, free_port, troth

SQL = "' OR 1=1 --"
DROP = "x'); DROP TABLE events; --"
ATTEMPTS = [
    SQL,
    DROP,
    '"; DELETE FROM identifiers; --',
    "1; UPDATE api_tokens SET revoked_at = NULL",
    "%' UNION SELECT token_hash FROM api_tokens --",
    "../../etc/passwd",
    "名前 ünïcødé 🙂 \u202e",
    "[bold red]x[/] [/]",
    "<script>alert(1)</script>",
    "x" * 5000,
]
# Stored as a userId and event name by an ordinary client; must come back as text.
HOSTILE_USER = "ann'); DROP TABLE identifiers; --"
IDS = [f"attempt-{n}" for n in range(len(ATTEMPTS))]


def snapshot(db_path: Path) -> dict[str, int]:
    """Return every table's row count (the audit log grows by design and is left out)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {
            t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in tables
            if t != "audit_log"
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("injection")
    db_path = folder / "troth.duckdb"
    calls = [
        {
            "type": "track",
            "userId": user,
            "event": name,
            "messageId": f"m{n}",
            "timestamp": f"2026-03-0{n + 1}T10:00:00Z",
            "properties": {"revenue": 10 + n, SQL: DROP},
            "context": {"ip": "192.0.2.1"},
        }
        for n, (user, name) in enumerate(
            [("ann", "Order Completed"), (HOSTILE_USER, "Order Completed"), ("bob", DROP)]
        )
    ]
    source = folder / "calls.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in calls))
    troth("import", str(source), db=db_path)
    troth("score", "--as-of", "2026-03-10", db=db_path)
    admin = json.loads(troth("keys", "create", "--role", "admin", "--json", db=db_path).stdout)
    return {"db": db_path, "folder": folder, "admin": admin["key"], "before": snapshot(db_path)}


@pytest.mark.parametrize(
    "args",
    [
        *(["customers", "show", a] for a in ATTEMPTS),
        *(["export", a] for a in ATTEMPTS[:3]),
        ["customers", "list", "--stage", SQL],
        ["customers", "list", "--phase", DROP],
        ["customers", "list", "--sort", "revenue; DROP TABLE events"],
        ["customers", "list", "--sort", "revenue DESC, (SELECT 1)"],
        ["keys", "revoke", DROP],
        ["consent", SQL],
        ["consent", "ann", DROP, "on"],
        ["consent", "ann", "marketing:email", SQL],
        ["erase", DROP, "--yes"],
        ["erase", "../../etc/passwd", "--yes"],
        ["portal-link", SQL],
        ["score", "--as-of", DROP],
        ["import", f"{DROP}.csv"],
    ],
    ids=lambda args: " ".join(args)[:60],
)
def test_the_command_line_refuses_with_a_clear_error(store: dict, args: list[str]) -> None:
    result = troth(*args, db=store["db"], check=False)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "error" in result.stderr.lower()
    assert snapshot(store["db"]) == store["before"]


def test_hostile_values_are_stored_and_read_back_as_text(store: dict) -> None:
    shown = json.loads(troth("customers", "show", HOSTILE_USER, "--json", db=store["db"]).stdout)
    assert [i["value"] for i in shown["identifiers"]] == [HOSTILE_USER]
    assert troth("customers", "show", HOSTILE_USER, db=store["db"]).returncode == 0
    doc = json.loads(troth("export", HOSTILE_USER, db=store["db"]).stdout)
    assert doc["events"][0]["properties"] == {"revenue": 11, SQL: DROP}
    bob = json.loads(troth("export", "bob", db=store["db"]).stdout)
    assert bob["events"][0]["event"] == DROP
    log = json.loads(troth("audit", "--customer", SQL, "--json", db=store["db"]).stdout)
    assert log == {"total": 0, "entries": []}
    hostile_log = troth("audit", "--customer", HOSTILE_USER, db=store["db"]).stdout
    assert "customer.export" in hostile_log
    key = troth("keys", "create", "--source", DROP, "--json", db=store["db"])
    listed = json.loads(troth("keys", "list", "--json", db=store["db"]).stdout)
    assert DROP in [k.get("source") for k in listed] and key.returncode == 0
    # Markup in stored values prints as the text it is.
    marked = troth("audit", "--customer", "[bold red]x[/] [/]", db=store["db"])
    assert marked.returncode == 0
    store["before"] = snapshot(store["db"])  # one source more, nothing else


def test_export_file_names_cannot_escape_or_overwrite(store: dict, tmp_path: Path) -> None:
    # Relative traversal from a working folder two levels down: ../../etc/x lands in a folder
    # that does not exist, and is refused rather than created.
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    for out, message in (
        ("../../etc/x", "does not exist"),
        ("/etc/passwd", "already exists"),
        (str(store["db"]), "already exists"),
        (str(tmp_path / "missing" / "x.json"), "does not exist"),
        (str(tmp_path / ("x" * 300 + ".json")), "cannot write"),
    ):
        before = Path(out).read_bytes() if os.path.isfile(out) else None
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "troth",
                "export",
                "ann",
                "--out",
                out,
                "--db",
                str(store["db"]),
            ],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "COLUMNS": "200"},
            timeout=120,
        )
        assert result.returncode == 1, result.stdout
        assert message in result.stderr and "Traceback" not in result.stderr
        if before is not None:
            assert Path(out).read_bytes() == before
    assert not (tmp_path / "etc").exists()
    # A link planted at the name is not followed.
    target = tmp_path / "target.txt"
    target.write_text("keep")
    (tmp_path / "link.json").symlink_to(target)
    link = troth("export", "ann", "--out", str(tmp_path / "link.json"), db=store["db"], check=False)
    assert link.returncode == 1 and target.read_text() == "keep"
    assert snapshot(store["db"]) == store["before"]


def test_the_api_answers_400_404_or_an_empty_result(store: dict) -> None:
    server = Server(store["db"], free_port()).start()
    headers = {"Authorization": f"Bearer {store['admin']}"}
    url = f"{server.url}/api/v1"
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            for attempt in ATTEMPTS:
                path = quote(attempt, safe="")
                for endpoint in (f"/customers/{path}", f"/customers/{path}/export"):
                    answer = client.get(url + endpoint)
                    assert answer.status_code == 404, (endpoint, answer.text)
                assert client.delete(f"{url}/tokens/{path}").status_code == 404
                assert client.delete(f"{url}/customers/{path}").status_code == 404
                assert client.get(f"{url}/customers/{path}/consent").status_code == 404
                consent = {"purpose": "marketing:sms", "granted": False}
                answer = client.post(f"{url}/customers/{path}/consent", json=consent)
                assert answer.status_code == 404, answer.text
                assert client.post(f"{url}/customers/{path}/portal-link").status_code == 404
                hostile_purpose = {"purpose": attempt, "granted": True}
                answer = client.post(f"{url}/customers/ann/consent", json=hostile_purpose)
                assert answer.status_code == 400, answer.text
                for query in (
                    {"stage": attempt},
                    {"phase": attempt},
                    {"sort": attempt},
                    {"limit": attempt},
                    {"offset": attempt},
                    {"cognitive_loyalty": attempt},
                ):
                    answer = client.get(f"{url}/customers", params=query)
                    assert answer.status_code == 400, (query, answer.text)
                    assert answer.json()["success"] is False
                log = client.get(f"{url}/audit", params={"customer": attempt[:1000]})
                assert log.status_code == 200 and log.json() == {"total": 0, "entries": []}
                for endpoint, query in (
                    ("/value", {"top": attempt}),
                    ("/value/at-risk", {"limit": attempt}),
                    ("/audit", {"limit": attempt}),
                ):
                    assert client.get(url + endpoint, params=query).status_code == 400
                bad_role = client.post(f"{url}/tokens", json={"role": attempt})
                assert bad_role.status_code == 400
            # What a client sent is stored and read back as text, through any endpoint.
            hostile = client.get(f"{url}/customers/{quote(HOSTILE_USER, safe='')}")
            assert hostile.status_code == 200
            assert [i["value"] for i in hostile.json()["identifiers"]] == [HOSTILE_USER]
            exported = client.get(f"{url}/customers/{quote(HOSTILE_USER, safe='')}/export")
            assert exported.json()["events"][0]["properties"][SQL] == DROP
            page = client.get(f"{url}/customers", params={"sort": "revenue", "limit": 10}).json()
            assert page["total"] == 3
            summary = client.get(f"{url}/summary").json()
            assert summary["customers"] == 3
    finally:
        server.stop()
    assert snapshot(store["db"]) == store["before"]
