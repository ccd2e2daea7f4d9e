"""The portal page and its JSON twin in-process: escaping, refused links, CSRF, choices."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.engagement.events import add_events
from troth.api import create_app
from troth.api.portal import CONTENT_SECURITY_POLICY
from troth.privacy.audit import audit_entries
from troth.privacy.portal import portal_token

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAK = '"><img src=x onerror=alert(1)>'
HOSTILE = (SCRIPT, ATTRIBUTE_BREAK, "</td></tr></table><iframe src=//evil>", "{{ 7*7 }}")


@pytest.fixture
def portal(engine):
    add_events(
        engine.db,
        [
            {
                "type": "identify",
                "user": "u1",
                "traits": {
                    "name": SCRIPT,
                    "company": ATTRIBUTE_BREAK,
                    SCRIPT: "a trait named like a tag",
                    "tags": list(HOSTILE),
                    "bio": HOSTILE[2],
                    "template": HOSTILE[3],
                },
            },
            {"event": ATTRIBUTE_BREAK, "user": "u1", "channel": SCRIPT},
            {"event": "Page Viewed", "user": None, "anonymous": SCRIPT + "u1", "at": T0},
            {"type": "alias", "user": "u1", "anonymous": SCRIPT + "u1", "at": T0},
        ],
        T0,
    )
    engine.resolve_identities()
    with TestClient(create_app(engine)) as client:
        link = engine.portal_link("u1", "cli")
        yield client, engine, link


def form_of(html: str) -> dict[str, str | list[str]]:
    return {
        "form_token": re.search(r'name="form_token" value="([^"]+)"', html).group(1),
        "shown": re.findall(r'name="shown" value="([^"]+)"', html),
        "granted": re.findall(r'name="granted" value="([^"]+)" checked', html),
    }


def test_the_page_escapes_everything_and_runs_nothing(portal) -> None:
    client, _engine, link = portal
    page = client.get(f"/portal/{link['token']}")
    assert page.status_code == 200
    html = page.text
    for raw in HOSTILE[:3]:
        assert raw not in html
    assert "<script" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "onerror=alert(1)&gt;" in html  # shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "{{ 7*7 }}" in html and ">49<" not in html  # data is never a template
    # The escaped forms are in the identifiers, traits, event kinds and channels.
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY  # default-src 'none' forbids scripts
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


def test_the_stylesheet_is_served_from_the_app_as_the_policy_allows(portal) -> None:
    client, _engine, link = portal
    html = client.get(f"/portal/{link['token']}").text
    hrefs = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert hrefs == ["/portal/assets/portal.css"]
    css = client.get(hrefs[0])
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".switch" in css.text
    # No inline style or script for the policy to block, and nothing fetched elsewhere.
    assert "style=" not in html and "<style" not in html
    assert not re.search(r'(src|href|action)="(https?:)?//', html)


@pytest.mark.parametrize("kind", ["forged", "expired", "tampered", "malformed", "rotated"])
def test_a_refused_link_gets_a_generic_page_and_a_json_reason(portal, kind: str) -> None:
    client, engine, link = portal
    token = link["token"]
    if kind == "forged":
        token = token.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
    elif kind == "expired":
        token = portal_token(engine.db, link["customer_id"], 1, now=T0)
    elif kind == "tampered":
        payload, mac = token.split(".")
        customer_id, _, expiry = base64.urlsafe_b64decode(payload + "==").decode().rpartition(".")
        later = f"{customer_id}.{int(expiry) + 86400}".encode()
        token = base64.urlsafe_b64encode(later).rstrip(b"=").decode() + "." + mac
    elif kind == "malformed":
        token = "not-a-token"
    else:
        engine.rotate_portal_key("cli")
    page = client.get(f"/portal/{token}")
    assert page.status_code == 403
    assert "This link is not valid or has expired" in page.text
    assert "Your activity" not in page.text and "u1" not in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    answer = client.get(f"/api/portal/{token}")
    assert answer.status_code == 403
    body = answer.json()
    assert body["error"] == "this link is not valid or has expired"
    expected = {
        "forged": "signature",
        "expired": "expired at",
        "tampered": "signature",
        "malformed": "malformed",
        "rotated": "signature",
    }[kind]
    assert body["reason"].startswith(expected)
    # Posting is refused the same way, and changes nothing.
    posted = client.post(f"/api/portal/{token}", json={"consents": {"marketing:email": True}})
    assert posted.status_code == 403
    form = client.post(f"/portal/{token}", data={"shown": "marketing:email", "granted": "x"})
    assert form.status_code == 403
    assert engine.consent("u1", "test")["history"] == []


def test_a_toggle_on_the_page_changes_the_consent_ledger(portal) -> None:
    client, engine, link = portal
    url = f"/portal/{link['token']}"
    form = form_of(client.get(url).text)
    assert form["granted"] == ["analytics", "personalisation", "profiling"]
    form["granted"] = ["analytics", "personalisation", "marketing:email"]  # profiling off
    saved = client.post(url, data=form)
    assert saved.status_code == 200
    assert "Saved." in saved.text
    assert "Profiling: <strong>off</strong>" in saved.text
    assert "Marketing by email: <strong>on</strong>" in saved.text
    shown = engine.consent("u1", "test")
    assert shown["purposes"]["profiling"]["granted"] is False
    assert shown["purposes"]["marketing:email"]["granted"] is True
    history = [(h["purpose"], h["granted"], h["source"], h["changed_by"]) for h in shown["history"]]
    assert history == [  # newest first; recorded in the order of [privacy] purposes
        ("marketing:email", True, "portal", "customer"),
        ("profiling", False, "portal", "customer"),
    ]
    # The page now shows the new state, and scores withheld.
    again = form_of(saved.text)
    assert again["granted"] == ["analytics", "personalisation", "marketing:email"]
    assert "Withheld: no consent." in saved.text
    # Saving the same again records nothing.
    assert "Nothing changed" in client.post(url, data=again).text
    assert len(engine.consent("u1", "test")["history"]) == 2
    actions = [e["action"] for e in audit_entries(engine.db, link["customer_id"])["entries"]]
    assert actions.count("consent.change") == 2
    assert actions.count("portal.view") >= 3


@pytest.mark.parametrize("form_token", [None, "", "wrong", "from-another-link"])
def test_a_form_without_the_pages_token_is_refused(portal, form_token) -> None:
    client, engine, link = portal
    url = f"/portal/{link['token']}"
    form = form_of(client.get(url).text)
    form["granted"] = [*form["granted"], "marketing:sms"]
    if form_token is None:
        del form["form_token"]
    elif form_token == "from-another-link":
        other = engine.portal_link("u1", "cli", hours=5)["token"]
        form["form_token"] = form_of(client.get(f"/portal/{other}").text)["form_token"]
    else:
        form["form_token"] = form_token
    refused = client.post(url, data=form)
    assert refused.status_code == 403
    assert "Not saved." in refused.text
    assert engine.consent("u1", "test")["purposes"]["marketing:sms"]["granted"] is False
    assert engine.consent("u1", "test")["history"] == []


def test_a_hand_made_form_naming_an_unknown_purpose_is_refused(portal) -> None:
    client, engine, link = portal
    url = f"/portal/{link['token']}"
    form = form_of(client.get(url).text)
    form["shown"] = [*form["shown"], "<b>sell-my-data</b>"]
    refused = client.post(url, data=form)
    assert refused.status_code == 400
    assert "&lt;b&gt;sell-my-data&lt;/b&gt;" in refused.text
    assert engine.consent("u1", "test")["history"] == []


def test_the_json_twin_shows_the_same_and_sets_purposes(portal) -> None:
    client, engine, link = portal
    url = f"/api/portal/{link['token']}"
    view = client.get(url).json()
    assert view["customer_id"] == link["customer_id"]
    assert view["traits"]["name"] == SCRIPT  # JSON carries the data as it is
    assert {i["value"] for i in view["identifiers"]} == {"u1", SCRIPT + "u1"}
    assert view["events"]["by_channel"][SCRIPT] == 1
    assert [p["purpose"] for p in view["purposes"]] == engine.settings.privacy.purposes
    answer = client.post(url, json={"consents": {"marketing:email": True, "marketing:sms": False}})
    assert answer.status_code == 200
    assert answer.json()["changed"] == [{"purpose": "marketing:email", "granted": True}]
    states = {p["purpose"]: p["granted"] for p in answer.json()["purposes"]}
    assert states["marketing:email"] is True
    assert engine.consent("u1", "test")["purposes"]["marketing:email"]["granted"] is True


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"consents": {"nope": True}}, "unknown purpose 'nope'; valid purposes: analytics, "),
        ({"consents": {"marketing:email": "yes"}}, "consents"),
        ({"consents": {"marketing:email": 1}}, "consents"),
        ({"consent": {"marketing:email": True}}, "consents"),
        ([], ""),
    ],
)
def test_the_json_twin_refuses_bad_choices(portal, body, error: str) -> None:
    client, engine, link = portal
    answer = client.post(f"/api/portal/{link['token']}", json=body)
    assert answer.status_code == 400
    assert error in answer.json()["error"]
    assert engine.consent("u1", "test")["history"] == []


def test_an_admin_overrides_consent_and_reads_it(portal) -> None:
    client, engine, link = portal
    token_id, token = engine.create_token("admin")
    headers = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/customers/u1/consent"
    answer = client.post(
        url,
        headers=headers,
        json={"purpose": "marketing:call", "granted": True, "reason": "asked by phone"},
    )
    assert answer.status_code == 200
    assert answer.json()["changed"] == [{"purpose": "marketing:call", "granted": True}]
    read = client.get(url, headers=headers).json()
    assert read["purposes"]["marketing:call"]["granted"] is True
    assert (read["history"][0]["source"], read["history"][0]["changed_by"]) == ("admin", token_id)
    entries = audit_entries(engine.db, link["customer_id"])["entries"]
    assert (entries[0]["actor"], entries[0]["action"], entries[0]["detail"]) == (
        token_id,
        "customer.read",
        "consent",
    )
    assert (entries[1]["action"], entries[1]["detail"]) == (
        "consent.change",
        "marketing:call on (admin): asked by phone",
    )
    bad = client.post(url, headers=headers, json={"purpose": "nope", "granted": False})
    assert bad.status_code == 400
    assert "valid purposes" in bad.json()["error"]
    assert client.post(url, headers=headers, json={"purpose": "marketing:call"}).status_code == 400


def test_an_admin_gets_a_portal_link_from_the_api(portal) -> None:
    client, engine, _link = portal
    _token_id, token = engine.create_token("admin")
    answer = client.post(
        "/api/v1/customers/u1/portal-link",
        headers={"Authorization": f"Bearer {token}"},
        json={"hours": 2},
    )
    assert answer.status_code == 200
    made = answer.json()
    # No base URL configured: the server's own address, as the client reached it.
    assert made["url"] == f"http://testserver/portal/{made['token']}"
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert client.get(f"/portal/{made['token']}").status_code == 200
