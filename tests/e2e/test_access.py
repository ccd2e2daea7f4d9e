"""Data access, audit log and tokens as a user meets them: the `troth` command and `troth serve`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth

# One person seen as two anonymous visitors, identified, and aliased; and somebody else.
CALLS = [
    {"type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "m1",
     "timestamp": "2026-03-01T10:00:00Z", "context": {"ip": "192.0.2.1"}},
    {"type": "identify", "anonymousId": "anon-1", "userId": "ann", "messageId": "m2",
     "timestamp": "2026-03-02T10:00:00Z", "traits": {"email": "ann@example.com", "plan": "free"}},
    {"type": "page", "anonymousId": "anon-2", "name": "Pricing", "messageId": "m3",
     "timestamp": "2026-03-03T10:00:00Z"},
    {"type": "alias", "previousId": "anon-2", "userId": "ann", "messageId": "m4",
     "timestamp": "2026-03-04T10:00:00Z"},
    {"type": "track", "userId": "ann", "event": "Order Completed", "messageId": "m5",
     "timestamp": "2026-03-05T10:00:00Z", "properties": {"revenue": 30, "order_id": "o1"}},
    {"type": "track", "userId": "bob", "event": "Order Completed", "messageId": "m6",
     "timestamp": "2026-03-05T11:00:00Z", "properties": {"revenue": 5}},
]  # fmt: skip


def imported(db_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "calls.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in CALLS))
    troth("import", str(source), db=db_path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_export_on_the_command_line_and_its_audit_trail(
    db_path: Path, tmp_path: Path, admin_token: str
) -> None:
    imported(db_path, tmp_path)
    doc = json.loads(troth("export", "anon-2", db=db_path).stdout)
    assert {(i["kind"], i["value"]) for i in doc["identifiers"]} >= {
        ("user_id", "ann"),
        ("anonymous_id", "anon-1"),
        ("anonymous_id", "anon-2"),
    }
    assert sorted(e["message_id"] for e in doc["events"]) == ["m1", "m2", "m3", "m4", "m5"]
    assert doc["traits"]["latest"] == {"email": "ann@example.com", "plan": "free"}

    out = tmp_path / "ann.json"
    printed = troth("export", "ann@example.com", "--out", str(out), db=db_path).stdout
    assert str(out) in printed and f"{out.stat().st_size:,} bytes" in printed
    assert json.loads(out.read_text())["customer_id"] == doc["customer_id"]
    again = troth("export", "ann", "--out", str(out), db=db_path, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    missing = troth("export", "nobody", db=db_path, check=False)
    assert missing.returncode == 1 and "no customer has the identifier 'nobody'" in missing.stderr

    troth("customers", "show", "ann", db=db_path)
    theirs = json.loads(troth("audit", "--customer", "anon-1", "--json", db=db_path).stdout)
    assert [(e["actor"], e["action"]) for e in theirs["entries"]] == [
        ("cli", "customer.read"),
        ("cli", "customer.export"),
        ("cli", "customer.export"),
    ]
    assert {e["customer_id"] for e in theirs["entries"]} == {doc["customer_id"]}
    everything = json.loads(troth("audit", "--json", "--limit", "100", db=db_path).stdout)
    assert ("cli", "key.create") in {(e["actor"], e["action"]) for e in everything["entries"]}
    shown = troth("audit", "--limit", "1", db=db_path).stdout
    assert "customer.read" in shown and "customer.export" not in shown


def test_export_audit_and_tokens_over_http(db_path: Path, tmp_path: Path, admin_token: str) -> None:
    imported(db_path, tmp_path)
    analyst = json.loads(troth("keys", "create", "--role", "analyst", "--json", db=db_path).stdout)
    viewer = json.loads(troth("keys", "create", "--role", "viewer", "--json", db=db_path).stdout)
    server = Server(db_path, free_port()).start()
    try:
        url = f"{server.url}/api/v1"
        answer = httpx.get(f"{url}/customers/anon-1/export", headers=bearer(admin_token))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert "attachment" in answer.headers["content-disposition"]
        doc = answer.json()
        assert sorted(e["message_id"] for e in doc["events"]) == ["m1", "m2", "m3", "m4", "m5"]
        for token, status in ((analyst["key"], 403), (viewer["key"], 403), (None, 401)):
            headers = bearer(token) if token else {}
            assert httpx.get(f"{url}/customers/ann/export", headers=headers).status_code == status
        assert httpx.get(f"{url}/customers/nobody/export", headers=bearer(admin_token)).json() == {
            "success": False,
            "error": "no customer has the identifier 'nobody'",
        }

        tokens = httpx.get(f"{url}/tokens", headers=bearer(admin_token)).json()
        assert not any("key" in t or "hash" in str(t) for t in tokens)
        admin_id = next(t["id"] for t in tokens if admin_token.startswith(t["prefix"]))
        created = httpx.post(f"{url}/tokens", json={"role": "analyst"}, headers=bearer(admin_token))
        assert created.status_code == 201
        new = created.json()
        assert new["role"] == "analyst" and new["key"].startswith("ttk_")
        assert httpx.get(f"{url}/customers/ann", headers=bearer(new["key"])).status_code == 200
        source = httpx.post(f"{url}/tokens", json={"source": "shop"}, headers=bearer(admin_token))
        assert source.status_code == 201 and source.json()["key"].startswith("twk_")
        bad = httpx.post(f"{url}/tokens", json={"role": "root"}, headers=bearer(admin_token))
        assert bad.status_code == 400 and "unknown role 'root'" in bad.text

        revoked = httpx.delete(f"{url}/tokens/{new['id']}", headers=bearer(admin_token))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert httpx.get(f"{url}/customers/ann", headers=bearer(new["key"])).status_code == 401
        unknown = httpx.delete(f"{url}/tokens/tok_nobody", headers=bearer(admin_token))
        assert unknown.status_code == 404

        log = httpx.get(f"{url}/audit", params={"limit": 50}, headers=bearer(admin_token)).json()
        entries = {(e["actor"], e["action"], e["customer_id"]) for e in log["entries"]}
        assert {
            (admin_id, "customer.export", doc["customer_id"]),
            (admin_id, "key.create", None),
            (new["id"], "customer.read", doc["customer_id"]),
            (admin_id, "key.revoke", None),
        } <= entries
        # A 403 or 404 reads nothing, so it records nothing.
        assert sum(1 for e in log["entries"] if e["action"] == "customer.export") == 1
        about = httpx.get(
            f"{url}/audit", params={"customer": "ann@example.com"}, headers=bearer(admin_token)
        ).json()
        assert about["total"] == 2
        page = httpx.get(
            f"{url}/audit", params={"limit": 1, "offset": 1}, headers=bearer(admin_token)
        ).json()
        assert len(page["entries"]) == 1 and page["total"] == log["total"]
        assert httpx.get(f"{url}/audit", headers=bearer(analyst["key"])).status_code == 403
    finally:
        server.stop()


def test_an_export_file_goes_when_its_person_is_erased(db_path: Path, tmp_path: Path) -> None:
    imported(db_path, tmp_path)
    out = tmp_path / "ann-export.json"
    troth("export", "ann", "--out", str(out), db=db_path)
    bob = tmp_path / "bob-export.json"
    troth("export", "bob", "--out", str(bob), db=db_path)
    troth("erase", "ann", "--yes", db=db_path)
    assert not out.exists()
    assert json.loads(bob.read_text())["events"][0]["user_id"] == "bob"
    actions = [
        e["action"] for e in json.loads(troth("audit", "--json", db=db_path).stdout)["entries"]
    ]
    assert actions[:3] == ["customer.erase", "customer.export", "customer.export"]
