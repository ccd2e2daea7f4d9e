"""Portal links (signed, expiring, revocable), the portal's view and the customer's choices."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from tests.engagement.events import add_events
from troth.config import PrivacySettings, ServerSettings
from troth.errors import CustomerNotFound, TrothError
from troth.privacy.audit import audit_entries
from troth.privacy.consent import ConsentError, customer_consent
from troth.privacy.keyring import rotate_secret_key, secret_key
from troth.privacy.portal import (
    PORTAL_KEY,
    InvalidPortalForm,
    InvalidPortalLink,
    apply_portal_choices,
    check_form_token,
    describe_purpose,
    form_token,
    held_data,
    portal_token,
    rotate_portal_key,
    verify_portal_token,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 9, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def customer(engine) -> str:
    add_events(
        engine.db,
        [
            {"type": "identify", "user": "u1", "traits": {"name": "Ada", "plan": "pro"}},
            {"event": "Order Completed", "user": "u1", "channel": "web", "at": T0},
            {"event": "Email Opened", "user": "u1", "channel": "email", "at": T0 + timedelta(1)},
            {"event": "Email Opened", "user": "u1", "channel": "email", "at": T0 + timedelta(2)},
            {"event": "Page Viewed", "user": "u2", "channel": "web", "at": T0},
        ],
        T0,
    )
    engine.resolve_identities()
    return engine.customer("u1")["customer_id"]


def refusal(db, token: str, now: datetime = NOW) -> str:
    with pytest.raises(InvalidPortalLink) as caught:
        verify_portal_token(db, token, now=now)
    return caught.value.reason


def test_a_link_opens_its_customer_until_it_expires(engine, customer) -> None:
    token = portal_token(engine.db, customer, 72, now=NOW)
    assert verify_portal_token(engine.db, token, now=NOW) == customer
    assert verify_portal_token(engine.db, token, now=NOW + timedelta(hours=71, minutes=59)) == (
        customer
    )
    assert refusal(engine.db, token, NOW + timedelta(hours=72)).startswith("expired at 2026-04-04")
    # Compact and URL-safe: no escaping needed in a path, short enough for an email.
    assert len(token) < 100
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_tampered_link_is_refused(engine, customer) -> None:
    other = engine.customer("u2")["customer_id"]
    token = portal_token(engine.db, customer, 1, now=NOW)
    payload, mac = token.split(".")
    customer_id, _, expiry = unb64(payload).decode().rpartition(".")
    for changed in (f"{other}.{expiry}", f"{customer_id}.{int(expiry) + 86400 * 365}"):
        assert refusal(engine.db, f"{b64(changed.encode())}.{mac}").startswith(
            "signature does not match"
        )
    flipped = bytearray(unb64(mac))
    flipped[0] ^= 1
    assert refusal(engine.db, f"{payload}.{b64(bytes(flipped))}").startswith("signature")


def test_a_link_forged_without_the_key_is_refused(engine, customer) -> None:
    payload = f"{customer}.{int((NOW + timedelta(hours=5)).timestamp())}".encode()
    for key in (b"", b"secret", secret_key(engine.db, "another_key")):
        mac = hmac.new(key, b"troth portal link\x00" + payload, hashlib.sha256).digest()[:16]
        assert refusal(engine.db, f"{b64(payload)}.{b64(mac)}").startswith("signature")
    # The form token of a link is no link (labels keep the two MACs apart).
    token = portal_token(engine.db, customer, 1, now=NOW)
    assert refusal(engine.db, f"{b64(token.encode())}.{form_token(engine.db, token)}").startswith(
        "signature"
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        ".",
        "a.",
        ".b",
        "a.b.c",
        "a b.c",
        "Y18x.!!!",
        "../../etc/passwd",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "A" * 600 + ".B",
        "Y",  # one base64 character cannot be decoded
        "Y.Y",
    ],
)
def test_malformed_links_are_refused(engine, customer, token: str) -> None:
    assert refusal(engine.db, token) == "malformed token"


def test_rotating_the_key_invalidates_every_earlier_link(engine, customer) -> None:
    old = portal_token(engine.db, customer, 24, now=NOW)
    key = secret_key(engine.db, PORTAL_KEY)
    rotate_portal_key(engine.db)
    assert secret_key(engine.db, PORTAL_KEY) != key
    assert refusal(engine.db, old).startswith("signature")
    new = portal_token(engine.db, customer, 24, now=NOW)
    assert verify_portal_token(engine.db, new, now=NOW) == customer


def test_the_key_is_random_made_once_and_kept_in_the_database(engine, tmp_path) -> None:
    key = secret_key(engine.db, PORTAL_KEY)
    assert len(key) == 32
    assert secret_key(engine.db, PORTAL_KEY) == key
    with engine.db.session() as session:
        stored = session.fetch(session.table("secrets").select("name"))
    assert stored == [(PORTAL_KEY,)]
    rotate_secret_key(engine.db, "fresh")  # rotating a key never made creates it
    assert len(secret_key(engine.db, "fresh")) == 32
    from troth.store import open_database

    other = open_database(tmp_path / "other.duckdb")
    try:
        assert secret_key(other, PORTAL_KEY) != key  # each database its own
    finally:
        other.close()


def test_a_link_for_an_unknown_customer_cannot_be_made(engine, customer) -> None:
    with pytest.raises(CustomerNotFound):
        portal_token(engine.db, "c_nobody", 1)
    with pytest.raises(TrothError, match="at least 1 hour"):
        portal_token(engine.db, customer, 0)


def test_a_link_of_an_erased_customer_is_refused(engine, customer) -> None:
    token = portal_token(engine.db, customer, 24, now=NOW)
    engine.erase("u1", "cli")
    assert refusal(engine.db, token) == f"customer '{customer}' no longer exists"


def test_a_link_follows_its_customer_into_a_merge(engine) -> None:
    # Anonymous first: the customer's id comes from the anonymousId until they sign in.
    add_events(engine.db, [{"event": "Page Viewed", "user": None, "anonymous": "a1"}], T0)
    engine.resolve_identities()
    before = engine.customer("a1")["customer_id"]
    token = portal_token(engine.db, before, 24, now=NOW)
    add_events(engine.db, [{"type": "identify", "user": "u9", "anonymous": "a1"}], T0)
    engine.resolve_identities()
    after = engine.customer("a1")["customer_id"]
    assert after != before
    assert verify_portal_token(engine.db, token, now=NOW) == after


def test_the_form_token_belongs_to_its_link(engine, customer) -> None:
    token = portal_token(engine.db, customer, 24, now=NOW)
    check_form_token(engine.db, token, form_token(engine.db, token))
    other_link = portal_token(engine.db, customer, 48, now=NOW)
    for wrong in (None, "", "x", form_token(engine.db, other_link), token.split(".")[1]):
        with pytest.raises(InvalidPortalForm, match="form token missing or wrong"):
            check_form_token(engine.db, token, wrong)


def test_held_data_counts_events_by_kind_and_channel(engine, customer) -> None:
    held = held_data(engine.db, customer)
    assert held["customer_id"] == customer
    assert [(i["kind"], i["value"]) for i in held["identifiers"]] == [("user_id", "u1")]
    assert held["traits"] == {"name": "Ada", "plan": "pro"}
    assert held["events"] == {
        "count": 4,
        "first": T0.isoformat(),
        "last": (T0 + timedelta(2)).isoformat(),
        "by_kind": {"Email Opened": 2, "Order Completed": 1, "identify": 1},
        "by_channel": {"email": 2, "unspecified": 1, "web": 1},
    }


def test_every_default_purpose_is_described_in_plain_words(engine) -> None:
    for purpose in engine.settings.privacy.purposes:
        assert purpose.split(":")[0] not in describe_purpose(purpose).lower() or purpose in (
            "analytics",
            "profiling",
        )
        assert describe_purpose(purpose).endswith(".")
    assert describe_purpose("marketing:whatsapp") == "Sending you offers and news by whatsapp."
    assert describe_purpose("research") == "Using your data for research."


def test_choices_record_only_what_changes(engine, customer) -> None:
    privacy = engine.settings.privacy
    args = (privacy.purposes, privacy.granted_by_default)
    changes = apply_portal_choices(
        engine.db,
        customer,
        {"marketing:email": True, "analytics": True, "profiling": False, "marketing:sms": False},
        *args,
    )
    # analytics (on by default) and marketing:sms (off by default) stay as they were.
    assert changes == [
        {"purpose": "profiling", "granted": False},
        {"purpose": "marketing:email", "granted": True},
    ]
    consent = customer_consent(engine.db, customer, *args)
    assert consent["purposes"]["profiling"]["granted"] is False
    assert consent["purposes"]["marketing:email"]["granted"] is True
    assert consent["purposes"]["analytics"]["by_default"] is True
    assert {(h["purpose"], h["source"], h["changed_by"]) for h in consent["history"]} == {
        ("profiling", "portal", "customer"),
        ("marketing:email", "portal", "customer"),
    }
    assert apply_portal_choices(engine.db, customer, {"profiling": False}, *args) == []


def test_an_unknown_purpose_refuses_every_choice(engine, customer) -> None:
    privacy = engine.settings.privacy
    args = (privacy.purposes, privacy.granted_by_default)
    with pytest.raises(ConsentError, match=r"unknown purpose 'nope'; valid purposes: analytics"):
        apply_portal_choices(engine.db, customer, {"marketing:email": True, "nope": True}, *args)
    assert customer_consent(engine.db, customer, *args)["history"] == []


def test_the_engine_audits_links_views_and_changes(engine, customer) -> None:
    link = engine.portal_link("u1", "cli", hours=2)
    assert link["url"] == f"http://127.0.0.1:8000/portal/{link['token']}"
    view = engine.portal_view(link["token"])
    assert view["customer_id"] == customer
    engine.portal_choose(link["token"], {"marketing:sms": True})
    engine.change_consent("u1", "marketing:sms", False, source="cli", actor="cli", reason="phone")
    entries = audit_entries(engine.db, customer)["entries"]
    assert [(e["actor"], e["action"], e["detail"]) for e in reversed(entries)] == [
        ("cli", "portal.link", "valid 2 h"),
        ("customer", "portal.view", None),
        ("customer", "consent.change", "marketing:sms on (portal)"),
        ("cli", "consent.change", "marketing:sms off (cli): phone"),
    ]


def test_scores_are_withheld_on_the_portal_as_soon_as_profiling_is_off(engine, customer) -> None:
    engine.score(T0 + timedelta(days=10))
    token = engine.portal_link("u1", "cli")["token"]
    scores = engine.portal_view(token)["scores"]
    assert scores["scored"] is True
    assert scores["stage"] == "interaction"  # three active days
    assert set(scores["attributes"]) == {"active", "emotional", "rational", "ethical"}
    engine.portal_choose(token, {"profiling": False})
    # Before any new scoring: the page shows nothing calculated from then on.
    assert engine.portal_view(token)["scores"] == {"withheld": "no consent: profiling"}


def test_the_base_url_comes_from_the_config_else_the_server_port(engine, customer) -> None:
    with pytest.raises(ValueError, match="must be an http"):
        PrivacySettings(portal_base_url="javascript:alert(1)")
    engine.settings = engine.settings.model_copy(update={"server": ServerSettings(port=8123)})
    assert engine.portal_base_url() == "http://127.0.0.1:8123"
    assert engine.portal_base_url("http://testserver/") == "http://testserver"
    privacy = PrivacySettings(portal_base_url="https://privacy.example.com/")
    engine.settings = engine.settings.model_copy(update={"privacy": privacy})
    assert engine.portal_link("u1", "cli")["url"].startswith("https://privacy.example.com/portal/")
