"""The consent ledger: latest answer per purpose, defaults, history, recording changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.engagement.events import add_events
from troth.config import PrivacySettings
from troth.errors import TrothError
from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, rows_to_table
from troth.identity import events_with_customer
from troth.privacy.audit import audit, audit_entries
from troth.privacy.consent import (
    ConsentError,
    consent_changes,
    consent_state,
    customer_consent,
    record_consent,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
PRIVACY = PrivacySettings()


def consent(purpose, granted, at, user="u1", **extra) -> dict:
    return {
        "event": "Consent Updated",
        "user": user,
        "at": at,
        "properties": {"purpose": purpose, "granted": granted, **extra},
    }


def state(engine) -> dict[str, dict]:
    engine.resolve_identities()
    with engine.db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        ids = session.table("identifiers")
        table = consent_state(
            consent_changes(events), ids, PRIVACY.purposes, PRIVACY.granted_by_default
        )
        rows = session.fetch_dicts(table)
        owners = dict(session.fetch(ids.select("value", "customer_id")))
    by_customer = {row.pop("customer_id"): row for row in rows}
    return {user: by_customer[owners[user]] for user in owners}


def test_latest_answer_wins_and_defaults_apply(engine) -> None:
    add_events(
        engine.db,
        [
            consent("marketing:email", True, T0),
            consent("marketing:email", False, T0 + timedelta(days=2)),
            consent("marketing:email", True, T0 + timedelta(days=1)),  # arrived late, older
            consent("profiling", False, T0),
            consent("marketing:sms", True, T0, user="u2"),
            {"event": "Page Viewed", "user": "u3", "at": T0},
        ],
        T0,
    )
    seen = state(engine)
    assert seen["u1"]["marketing_email"] is False
    assert seen["u1"]["profiling"] is False
    assert seen["u1"]["analytics"] is True  # opt-out default
    assert seen["u2"]["marketing_sms"] is True
    assert seen["u2"]["marketing_email"] is False  # opt-in default
    assert seen["u3"] == {
        "analytics": True,
        "personalisation": True,
        "profiling": True,
        "marketing_email": False,
        "marketing_sms": False,
        "marketing_call": False,
        "marketing_push": False,
    }


def test_malformed_changes_change_nothing(engine) -> None:
    add_events(
        engine.db,
        [
            consent("profiling", False, T0),
            consent("profiling", "yes", T0 + timedelta(days=1)),  # not a boolean
            consent("astrology", True, T0 + timedelta(days=1)),  # unknown purpose
            {"event": "Consent Updated", "at": T0 + timedelta(days=2), "properties": {}},
        ],
        T0,
    )
    assert state(engine)["u1"]["profiling"] is False


def test_purpose_names_are_normalised(engine) -> None:
    add_events(engine.db, [consent(" Marketing:Email ", True, T0)], T0)
    assert state(engine)["u1"]["marketing_email"] is True


def test_consent_follows_a_merge(engine) -> None:
    # Given anonymously, before the visitor signs in; the sign-in links the two identifiers.
    add_events(
        engine.db,
        [
            {**consent("marketing:push", True, T0), "user": None, "anonymous": "a9"},
            {"event": "Signed Up", "user": "u9", "anonymous": "a9", "at": T0 + timedelta(days=1)},
        ],
        T0,
    )
    assert state(engine)["u9"]["marketing_push"] is True


def test_history_and_recording_through_the_api_path(engine) -> None:
    add_events(engine.db, [consent("marketing:email", True, T0, user="ann")], T0)
    engine.resolve_identities()
    with engine.db.session() as session:
        ids = session.table("identifiers")
        customer = session.scalar(ids.filter(ids.value == "ann").customer_id.max())
    record_consent(
        engine.db,
        customer,
        "marketing:email",
        False,
        purposes=PRIVACY.purposes,
        source="portal",
        changed_by="customer",
        at=T0 + timedelta(days=3),
    )
    engine.resolve_identities()
    seen = customer_consent(engine.db, customer, PRIVACY.purposes, PRIVACY.granted_by_default)
    email = seen["purposes"]["marketing:email"]
    assert email["granted"] is False and email["by_default"] is False
    assert email["since"].startswith("2026-03-04")
    assert seen["purposes"]["profiling"] == {"granted": True, "since": None, "by_default": True}
    assert [(h["granted"], h["source"], h["changed_by"]) for h in seen["history"]] == [
        (False, "portal", "customer"),
        (True, "events", None),
    ]
    with pytest.raises(ConsentError, match="unknown purpose"):
        record_consent(
            engine.db,
            customer,
            "telepathy",
            True,
            purposes=PRIVACY.purposes,
            source="api",
            changed_by="tok_1",
        )
    with pytest.raises(ConsentError, match="no customer"):
        record_consent(
            engine.db,
            "c_nobody",
            "profiling",
            True,
            purposes=PRIVACY.purposes,
            source="api",
            changed_by="tok_1",
        )


def test_privacy_settings_refuse_bad_purposes() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        PrivacySettings(purposes=["Analytics; DROP TABLE events"])
    with pytest.raises(ValueError, match="unknown purposes"):
        PrivacySettings(purposes=["analytics"], granted_by_default=["profiling"])


def test_audit_log_appends_and_filters(engine) -> None:
    audit(engine.db, "cli", "customer.read", "c_1", "customers show")
    audit(engine.db, "tok_9", "customer.export", "c_2")
    audit(engine.db, "tok_9", "key.create", None, "role viewer")
    everything = audit_entries(engine.db)
    assert everything["total"] == 3
    assert {e["action"] for e in everything["entries"]} == {
        "customer.read",
        "customer.export",
        "key.create",
    }
    mine = audit_entries(engine.db, customer_id="c_2")
    assert [(e["actor"], e["action"]) for e in mine["entries"]] == [("tok_9", "customer.export")]
    with pytest.raises(TrothError, match="unknown audit action"):
        audit(engine.db, "cli", "customer.tickle")


def test_recording_consent_keeps_the_customer_id(engine) -> None:
    # An alias's previousId is also read as a user id never seen in an event; attributing the
    # consent event to that one would make it seen, rank first and rename the customer.
    row = {c: None for c in EVENT_COLUMNS}
    alias = {
        **row,
        "message_id": "alias-1",
        "type": "alias",
        "user_id": "zed",
        "previous_id": "a0",
        "timestamp": T0,
        "received_at": T0,
    }
    engine.db.insert_events(rows_to_table([tuple(alias[c] for c in EVENT_COLUMNS)], EVENT_SCHEMA))
    add_events(engine.db, [{"event": "Page Viewed", "user": None, "anonymous": "a0"}], T0)
    engine.resolve_identities()
    customer = engine.find_customer("zed")
    record_consent(
        engine.db,
        customer,
        "marketing:email",
        True,
        purposes=PRIVACY.purposes,
        source="portal",
        changed_by="customer",
    )
    engine.resolve_identities()
    assert engine.find_customer("zed") == customer
