"""Erasure as a user does it: `troth erase` and DELETE on a running `troth serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth

EMAIL = "ann.gone@example.com"
ANN = ("ann-user-1", "ann-anon-1", "ann-anon-2", EMAIL)


def _calls() -> list[dict]:
    """Ann on two devices, then identified with her email; Bob refers her; Cy buys."""
    at = "2026-05-0{}T10:00:00Z"
    return [
        {"type": "page", "anonymousId": "ann-anon-1", "timestamp": at.format(1)},
        {"type": "track", "event": "Product Viewed", "anonymousId": "ann-anon-2",
         "timestamp": at.format(1)},
        {"type": "identify", "userId": "ann-user-1", "anonymousId": "ann-anon-1",
         "traits": {"email": EMAIL}, "timestamp": at.format(2)},
        {"type": "alias", "userId": "ann-user-1", "previousId": "ann-anon-2",
         "timestamp": at.format(2)},
        {"type": "track", "event": "Order Completed", "userId": "ann-user-1",
         "properties": {"revenue": 40}, "timestamp": at.format(3)},
        {"type": "track", "event": "Referral Converted", "userId": "bob-user-2",
         "properties": {"referred_user_id": "ann-user-1"}, "timestamp": at.format(3)},
        {"type": "track", "event": "Order Completed", "userId": "bob-user-2",
         "properties": {"revenue": 25}, "timestamp": at.format(4)},
        {"type": "track", "event": "Order Completed", "userId": "cy-user-3",
         "properties": {"revenue": 15}, "timestamp": at.format(4)},
    ]  # fmt: skip


def _write(path: Path, calls: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in calls))
    return path


def _holding(folder: Path, secrets: tuple[str, ...], skip: tuple[Path, ...]) -> list[str]:
    """Return 'file: secret' for every file under `folder` (but `skip`) holding a secret."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path not in skip:
            data = path.read_bytes().lower()
            found += [f"{path.name}: {s}" for s in secrets if s.lower().encode() in data]
    return found


def test_troth_erase_leaves_nothing_of_the_person(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    bad = {"type": "track", "event": "", "userId": "ann-user-1", "messageId": "bad-ann"}
    bad_other = {"type": "track", "event": "", "userId": "cy-user-3", "messageId": "bad-cy"}
    source = _write(tmp_path / "events.jsonl", [*_calls(), bad, bad_other])
    imported = json.loads(troth("import", str(source), "--json", db=db).stdout)
    assert imported["rejected"] == 2
    rejects = Path(imported["rejects_path"])
    troth("score", "--as-of", "2026-05-10", db=db)
    listed = json.loads(troth("customers", "list", "--json", db=db).stdout)
    ann = json.loads(troth("customers", "show", EMAIL, "--json", db=db).stdout)["customer_id"]
    assert ann in {c["customer_id"] for c in listed["customers"]}

    unknown = troth("erase", "nobody@example.com", "--yes", db=db, check=False)
    assert unknown.returncode == 1
    assert "no customer has the identifier 'nobody@example.com'" in unknown.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "troth", "erase", EMAIL, "--db", str(db)],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    assert troth("customers", "show", EMAIL, db=db).returncode == 0  # nothing happened

    summary = json.loads(troth("erase", EMAIL, "--yes", "--json", db=db).stdout)

    assert summary["customer_id"] == ann
    assert summary["rows_removed"]["events"] == 5
    assert summary["rows_removed"]["rejects"] == 1
    assert summary["files_scrubbed"] == [{"path": str(rejects.resolve()), "lines_removed": 1}]
    # The database file and every file Troth wrote: no trace (the input file is the user's).
    assert _holding(tmp_path, (*ANN, ann), skip=(source,)) == []
    assert "cy-user-3" in rejects.read_text()
    text = troth("erase", "ann-anon-2", "--yes", db=db, check=False)
    assert text.returncode == 1 and "was erased already" in text.stderr

    troth("score", "--as-of", "2026-05-10", db=db)
    after = json.loads(troth("customers", "list", "--json", db=db).stdout)
    assert ann not in {c["customer_id"] for c in after["customers"]}
    assert after["total"] == listed["total"] - 1

    late = [
        {"type": "track", "event": "Page Viewed", "userId": "ann-user-1"},
        {"type": "identify", "userId": "someone-new", "traits": {"email": EMAIL}},
        {"type": "track", "event": "Page Viewed", "userId": "cy-user-3"},
    ]
    again = json.loads(
        troth("import", str(_write(tmp_path / "late.jsonl", late)), "--json", db=db).stdout
    )
    assert (again["inserted"], again["suppressed"], again["rejected"]) == (1, 2, 0)
    assert _holding(tmp_path, (*ANN, ann), skip=(source, tmp_path / "late.jsonl")) == []

    grant = {
        "type": "track",
        "event": "Consent Updated",
        "userId": "ann-user-1",
        "properties": {"purpose": "analytics", "granted": True},
    }
    back = json.loads(
        troth("import", str(_write(tmp_path / "back.jsonl", [grant])), "--json", db=db).stdout
    )
    assert back["inserted"] == 1
    assert troth("customers", "show", "ann-user-1", db=db).returncode == 0


def _post(server: Server, key: str, calls: list[dict]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/batch", json={"batch": calls}, auth=(key, ""), timeout=30)


def _metric(server: Server, name: str) -> int:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"{name} not in /metrics")


def test_delete_on_a_running_server(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    key = troth("keys", "create", "--source", "web", db=db).stdout.strip()
    tokens = {
        role: troth("keys", "create", "--role", role, db=db).stdout.strip()
        for role in ("admin", "analyst", "viewer")
    }
    server = Server(db, free_port()).start()
    try:
        assert _post(server, key, _calls()).status_code == 200

        def call(method: str, who: str | None, ident: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
            url = f"{server.url}/api/v1/customers/{ident}"
            return httpx.request(method, url, headers=headers, timeout=120)

        ann = call("GET", "analyst", EMAIL).json()["customer_id"]
        assert call("DELETE", None, EMAIL).status_code == 401
        assert call("DELETE", "viewer", EMAIL).status_code == 403
        assert call("DELETE", "analyst", EMAIL).status_code == 403
        missing = call("DELETE", "admin", "nobody")
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]

        erased = call("DELETE", "admin", "ann-anon-2")

        assert erased.status_code == 200, erased.text
        assert erased.json()["customer_id"] == ann
        assert erased.json()["rows_removed"]["events"] == 5
        assert _holding(tmp_path, (*ANN, ann), skip=(db.with_suffix(".log"),)) == []
        assert call("GET", "analyst", "ann-user-1").status_code == 404
        audit = httpx.get(
            f"{server.url}/api/v1/audit",
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        ).json()
        assert "customer.erase" in json.dumps(audit) and ann not in json.dumps(audit)

        # The server goes on: late events of Ann are dropped, others are stored and read.
        late = [{"type": "track", "event": "Page Viewed", "userId": "ann-user-1"}]
        assert _post(server, key, late).status_code == 200
        assert _metric(server, "troth_events_suppressed_total") == 1
        more = [{"type": "track", "event": "Page Viewed", "userId": "bob-user-2"}]
        assert _post(server, key, more).status_code == 200
        assert call("GET", "analyst", "bob-user-2").json()["event_count"] == 3
        assert call("GET", "analyst", "ann-user-1").status_code == 404

        grant = {
            "type": "track",
            "event": "Consent Updated",
            "userId": "ann-user-1",
            "properties": {"purpose": "analytics", "granted": True},
        }
        assert _post(server, key, [grant]).status_code == 200
        assert _post(server, key, late).status_code == 200
        assert call("GET", "analyst", "ann-user-1").json()["event_count"] == 2
    finally:
        server.stop()
