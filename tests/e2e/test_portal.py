"""The customer portal as people use it: `troth portal-link`, a real `troth serve`, a browser's
form post, and `troth consent` to see what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAK = '"><img src=x onerror=alert(1)>'


def write_events(path: Path) -> Path:
    calls = [
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"name": SCRIPT, "company": ATTRIBUTE_BREAK, "email": "ada@example.com"},
            "timestamp": "2026-03-01T10:00:00Z",
        },
        *(
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "channel": "web",
                "properties": {"revenue": 20 + day},
                "timestamp": f"2026-03-{day:02d}T10:00:00Z",
            }
            for day in (2, 9, 16)
        ),
        {
            "type": "track",
            "userId": "u1",
            "event": "Email Opened",
            "channel": ATTRIBUTE_BREAK,
            "timestamp": "2026-03-10T08:00:00Z",
        },
        {"type": "page", "userId": "u2", "name": "Home", "timestamp": "2026-03-03T10:00:00Z"},
    ]
    path.write_text("".join(json.dumps(c) + "\n" for c in calls), encoding="utf-8")
    return path


def form_of(html: str) -> dict[str, str | list[str]]:
    return {
        "form_token": re.search(r'name="form_token" value="([^"]+)"', html).group(1),
        "shown": re.findall(r'name="shown" value="([^"]+)"', html),
        "granted": re.findall(r'name="granted" value="([^"]+)" checked', html),
    }


def test_a_customer_opens_their_link_and_switches_purposes(tmp_path: Path) -> None:
    db = tmp_path / "portal.duckdb"
    port = free_port()
    config = tmp_path / "troth.toml"
    config.write_text(f"[server]\nport = {port}\n", encoding="utf-8")
    troth("import", str(write_events(tmp_path / "events.jsonl")), db=db)
    troth("score", "--as-of", "2026-03-20", db=db)
    admin = json.loads(troth("keys", "create", "--role", "admin", "--json", db=db).stdout)

    printed = troth(
        "portal-link", "ada@example.com", "--hours", "2", "--config", str(config), db=db
    )
    url = printed.stdout.splitlines()[0]
    # No base URL configured: the local server on the configured port.
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/portal/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", url)
    assert "valid until" in printed.stdout
    made = json.loads(troth("portal-link", "u1", "--json", db=db).stdout)
    assert made["url"].startswith("http://127.0.0.1:8000/portal/")  # the default port
    token = url.rsplit("/", 1)[1]

    server = Server(db, port).start()
    try:
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert SCRIPT not in page.text and ATTRIBUTE_BREAK not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "ada@example.com" in page.text
        assert "We have recorded 5 interactions with you" in page.text
        assert "Where you stand with us: <strong>" in page.text
        assert httpx.get(f"{server.url}/portal/assets/portal.css", timeout=30).status_code == 200

        tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        refused = httpx.get(tampered, timeout=30)
        assert refused.status_code == 403
        assert "This link is not valid or has expired" in refused.text
        assert "ada@example.com" not in refused.text
        assert (
            httpx.get(f"{server.url}/api/portal/{tampered.rsplit('/', 1)[1]}")
            .json()["reason"]
            .startswith("signature does not match")
        )

        form = form_of(page.text)
        form["granted"] = ["analytics", "personalisation", "marketing:email"]  # profiling off
        forged = httpx.post(url, data={**form, "form_token": "forged"}, timeout=30)
        assert forged.status_code == 403
        saved = httpx.post(url, data=form, timeout=30)
        assert saved.status_code == 200
        assert "Saved." in saved.text and "Withheld: no consent." in saved.text

        twin = httpx.get(f"{server.url}/api/portal/{token}", timeout=30).json()
        states = {p["purpose"]: p["granted"] for p in twin["purposes"]}
        assert (states["profiling"], states["marketing:email"]) == (False, True)
        assert twin["scores"] == {"withheld": "no consent: profiling"}
        unknown = httpx.post(
            f"{server.url}/api/portal/{token}", json={"consents": {"selling": False}}, timeout=30
        )
        assert unknown.status_code == 400
        assert "valid purposes: analytics, personalisation, profiling" in unknown.json()["error"]

        bearer = {"Authorization": f"Bearer {admin['key']}"}
        override = httpx.post(
            f"{server.url}/api/v1/customers/u1/consent",
            headers=bearer,
            json={"purpose": "marketing:sms", "granted": True, "reason": "asked in store"},
            timeout=30,
        )
        assert override.status_code == 200
        assert override.json()["consent"]["marketing:sms"]["granted"] is True
        linked = httpx.post(
            f"{server.url}/api/v1/customers/u1/portal-link", headers=bearer, timeout=30
        )
        assert linked.json()["url"].startswith(f"{server.url}/portal/")
        assert httpx.get(linked.json()["url"], timeout=30).status_code == 200
    finally:
        server.stop()

    shown = json.loads(troth("consent", "u1", "--json", db=db).stdout)
    assert shown["purposes"]["profiling"]["granted"] is False
    assert [(h["purpose"], h["source"], h["changed_by"]) for h in shown["history"]] == [
        ("marketing:sms", "admin", admin["id"]),
        ("marketing:email", "portal", "customer"),
        ("profiling", "portal", "customer"),
    ]
    text = troth("consent", "u1", db=db).stdout
    assert "portal" in text and "customer" in text and "history" in text

    log = json.loads(troth("audit", "--customer", "u1", "--json", "--limit", "100", db=db).stdout)
    seen = {(e["actor"], e["action"]) for e in log["entries"]}
    assert {
        ("cli", "portal.link"),
        ("customer", "portal.view"),
        ("customer", "consent.change"),
        (admin["id"], "consent.change"),
        (admin["id"], "portal.link"),
        ("cli", "customer.read"),
    } <= seen
    assert any(e["detail"] == "marketing:sms on (admin): asked in store" for e in log["entries"])


def test_rotating_the_key_kills_every_link(tmp_path: Path) -> None:
    db = tmp_path / "rotate.duckdb"
    troth("import", str(write_events(tmp_path / "events.jsonl")), db=db)
    port = free_port()
    config = tmp_path / "troth.toml"
    config.write_text(f'[privacy]\nportal_base_url = "http://127.0.0.1:{port}/"\n')
    old = troth("portal-link", "u1", "--config", str(config), db=db).stdout.splitlines()[0]
    rotated = troth("portal-link", "--rotate", db=db)
    assert "every earlier link is now invalid" in rotated.stdout
    new = json.loads(
        troth("portal-link", "u2", "--rotate", "--json", "--config", str(config), db=db).stdout
    )
    assert new["rotated"] is True
    server = Server(db, port).start()
    try:
        assert httpx.get(old, timeout=30).status_code == 403
        assert httpx.get(new["url"], timeout=30).status_code == 200
    finally:
        server.stop()
    log = json.loads(troth("audit", "--json", db=db).stdout)
    assert sum(e["action"] == "portal.rotate" for e in log["entries"]) == 2


def test_consent_by_hand_and_clear_errors(tmp_path: Path) -> None:
    db = tmp_path / "consent.duckdb"
    troth("import", str(write_events(tmp_path / "events.jsonl")), db=db)
    first = troth("consent", "u1", "marketing:call", "on", "--reason", "asked by phone", db=db)
    assert "marketing:call switched on" in first.stdout
    again = troth("consent", "u1", "marketing:call", "on", db=db)
    assert "already on" in again.stdout
    shown = json.loads(troth("consent", "u1", "--json", db=db).stdout)
    assert shown["purposes"]["marketing:call"]["granted"] is True
    assert [(h["source"], h["changed_by"]) for h in shown["history"]] == [("cli", "cli")]

    unknown = troth("consent", "u1", "selling", "on", db=db, check=False)
    assert unknown.returncode == 1
    assert "unknown purpose 'selling'; valid purposes: analytics" in unknown.stderr
    vague = troth("consent", "u1", "marketing:sms", "maybe", db=db, check=False)
    assert vague.returncode == 2
    assert "on or off" in vague.stderr
    nobody = troth("consent", "nobody", db=db, check=False)
    assert nobody.returncode == 1
    assert "no customer has the identifier 'nobody'" in nobody.stderr
    bare = troth("portal-link", db=db, check=False)
    assert bare.returncode == 2
    assert "--rotate" in bare.stderr
    assert troth("portal-link", "nobody", db=db, check=False).returncode == 1
    assert troth("portal-link", "u1", "--hours", "0", db=db, check=False).returncode == 2
