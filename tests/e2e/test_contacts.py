"""Contact lists as a marketing team meets them: `troth contacts` and GET /api/v1/contacts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth

CALLS = [
    {"type": "identify", "userId": "ann", "messageId": "m1", "timestamp": "2026-03-01T10:00:00Z",
     "traits": {"email": "ann@example.com", "phone": "+4412345"}},
    {"type": "identify", "userId": "bob", "messageId": "m2", "timestamp": "2026-03-01T11:00:00Z",
     "traits": {"email": "bob@example.com"}},
    {"type": "identify", "userId": "cy", "messageId": "m3", "timestamp": "2026-03-01T12:00:00Z",
     "traits": {"email": "cy@example.com"}},
    {"type": "track", "userId": "ann", "event": "Consent Updated", "messageId": "m4",
     "timestamp": "2026-03-02T10:00:00Z",
     "properties": {"purpose": "marketing:email", "granted": True}},
    {"type": "track", "userId": "bob", "event": "Consent Updated", "messageId": "m5",
     "timestamp": "2026-03-02T10:00:00Z",
     "properties": {"purpose": "marketing:email", "granted": True}},
    {"type": "track", "userId": "bob", "event": "Consent Updated", "messageId": "m6",
     "timestamp": "2026-03-03T10:00:00Z",
     "properties": {"purpose": "marketing:email", "granted": False}},
]  # fmt: skip


def imported(db_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "calls.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in CALLS))
    troth("import", str(source), db=db_path)


def test_contacts_on_the_command_line(db_path: Path, tmp_path: Path) -> None:
    imported(db_path, tmp_path)
    page = json.loads(troth("contacts", "email", "--json", db=db_path).stdout)
    assert [c["address"] for c in page["contacts"]] == ["ann@example.com"]
    assert page["purpose"] == "marketing:email" and page["total"] == 1
    assert json.loads(troth("contacts", "sms", "--json", db=db_path).stdout)["total"] == 0
    out = tmp_path / "email.csv"
    shown = troth("contacts", "email", "--out", str(out), db=db_path).stdout
    assert "1 contacts" in shown
    with out.open() as f:
        assert [r["address"] for r in csv.DictReader(f)] == ["ann@example.com"]
    again = troth("contacts", "email", "--out", str(out), db=db_path, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = troth("contacts", "fax", db=db_path, check=False)
    assert bad.returncode != 0 and "unknown channel 'fax'" in bad.stderr
    # A withdrawal through the admin override takes the customer off the list at once.
    troth("consent", "ann", "marketing:email", "off", "--reason", "asked by phone", db=db_path)
    assert json.loads(troth("contacts", "email", "--json", db=db_path).stdout)["total"] == 0
    log = json.loads(troth("audit", "--json", db=db_path).stdout)["entries"]
    # Three lists shown and one file written; the refused calls wrote nothing.
    assert sum(e["action"] == "contacts.export" for e in log) == 4


def test_contacts_over_http_need_an_analyst(
    db_path: Path, tmp_path: Path, admin_token: str
) -> None:
    imported(db_path, tmp_path)
    analyst = json.loads(troth("keys", "create", "--role", "analyst", "--json", db=db_path).stdout)
    viewer = json.loads(troth("keys", "create", "--role", "viewer", "--json", db=db_path).stdout)
    server = Server(db_path, free_port()).start()
    try:
        url = f"{server.url}/api/v1/contacts"
        headers = {"Authorization": f"Bearer {analyst['key']}"}
        answer = httpx.get(f"{url}/email", headers=headers)
        assert answer.status_code == 200
        assert [c["address"] for c in answer.json()["contacts"]] == ["ann@example.com"]
        assert httpx.get(f"{url}/email").status_code == 401
        viewed = httpx.get(f"{url}/email", headers={"Authorization": f"Bearer {viewer['key']}"})
        assert viewed.status_code == 403
        bad = httpx.get(f"{url}/fax", headers=headers)
        assert bad.status_code == 400 and "unknown channel" in bad.text
        paged = httpx.get(f"{url}/email", params={"limit": 0}, headers=headers)
        assert paged.status_code == 400
    finally:
        server.stop()
