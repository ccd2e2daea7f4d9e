"""The data-access export: everything held about one person, nothing about anyone else."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.engagement.events import add_events
from troth.config import PrivacySettings
from troth.errors import CustomerNotFound
from troth.privacy.audit import audit
from troth.privacy.export import (
    EXPORT_FORMAT,
    EXPORT_SECTIONS,
    ExportFileError,
    export_customer,
    export_json,
    write_export_file,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
PRIVACY = PrivacySettings()


def merged_person(engine) -> None:
    """u1 browsed as anon a1 and a2 (linked by identify and alias), and u2 is someone else."""
    add_events(
        engine.db,
        [
            {"type": "page", "user": None, "anonymous": "a1", "context": {"ip": "10.0.0.1"}},
            {
                "type": "identify",
                "user": "u1",
                "anonymous": "a1",
                "at": T0 + timedelta(days=1),
                "traits": {"email": "ann@example.com", "plan": "free"},
            },
            {"type": "page", "user": None, "anonymous": "a2", "at": T0 + timedelta(days=2)},
            {"type": "alias", "user": "u1", "at": T0 + timedelta(days=3)},
            {
                "event": "Order Completed",
                "user": "u1",
                "at": T0 + timedelta(days=4),
                "properties": {"revenue": 42.5, "order_id": "o-1"},
            },
            {
                "type": "identify",
                "user": "u1",
                "at": T0 + timedelta(days=5),
                "traits": {"plan": "pro"},
            },
            {
                "event": "Consent Updated",
                "user": "u1",
                "at": T0 + timedelta(days=6),
                "properties": {"purpose": "marketing:email", "granted": True},
            },
            {"event": "Order Completed", "user": "u2", "properties": {"revenue": 7}},
            {"type": "identify", "user": "u2", "traits": {"email": "bob@example.com"}},
        ],
        T0,
    )
    # The alias call above names a2 as the previous id of u1.
    with engine.db.session() as session:
        session.update_where("events", {"previous_id": "a2"}, "type", "alias")
    engine.resolve_identities()


def test_a_merged_person_gets_every_identifier_and_every_event(engine) -> None:
    merged_person(engine)
    doc = export_customer(engine.db, "ann@example.com", PRIVACY)
    assert doc["format"] == EXPORT_FORMAT
    assert set(EXPORT_SECTIONS) <= set(doc)
    assert {(i["kind"], i["value"]) for i in doc["identifiers"]} >= {
        ("user_id", "u1"),
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
    }
    assert doc["event_count"] == len(doc["events"]) == 7
    assert {e["anonymous_id"] for e in doc["events"]} >= {"a1", "a2"}
    assert not any(e["user_id"] == "u2" for e in doc["events"])
    assert doc["identity_links"], "the links that joined a1 and a2 to u1 are explained"
    # Every column, JSON columns decoded, oldest first.
    order = next(e for e in doc["events"] if e["event"] == "Order Completed")
    assert order["properties"] == {"revenue": 42.5, "order_id": "o-1"}
    assert {"seq", "message_id", "received_at", "context", "integrations"} <= set(order)
    assert doc["events"][0]["context"] == {"ip": "10.0.0.1"}
    times = [e["timestamp"] for e in doc["events"]]
    assert times == sorted(times)
    json.dumps(doc)  # plain JSON types throughout


def test_traits_latest_and_history(engine) -> None:
    merged_person(engine)
    traits = export_customer(engine.db, "u1", PRIVACY)["traits"]
    assert traits["latest"] == {"email": "ann@example.com", "plan": "pro"}
    assert [h["traits"] for h in traits["history"]] == [
        {"email": "ann@example.com", "plan": "free"},
        {"plan": "pro"},
    ]


def test_consent_current_and_history(engine) -> None:
    merged_person(engine)
    consent = export_customer(engine.db, "u1", PRIVACY)["consent"]
    assert consent["purposes"]["marketing:email"]["granted"] is True
    assert consent["purposes"]["marketing:sms"] == {
        "granted": False,
        "since": None,
        "by_default": True,
    }
    assert [c["purpose"] for c in consent["history"]] == ["marketing:email"]


def test_every_derived_table_is_found_in_the_catalog(engine) -> None:
    merged_person(engine)
    add_events(engine.db, [{"event": "Unsubscribed", "at": T0 + timedelta(days=7)}], T0)
    engine.score(T0 + timedelta(days=10))
    # A table added later, by a future feature, is exported without changing the exporter.
    with engine.db.session() as session:
        ids = session.table("identifiers")
        session.replace_table(
            "customer_future_scores",
            ids.select("customer_id", score=ids.value.length()).distinct(),
        )
    doc = export_customer(engine.db, "u1", PRIVACY)
    customer_id = doc["customer_id"]
    derived = doc["derived"]
    for table in (
        "customer_features",
        "customer_stage",
        "customer_stage_history",
        "customer_attributes",
        "card_entries",
        "card_balance",
        "customer_ladder",
        "customer_value",
        "customer_future_scores",
    ):
        assert derived[table], f"{table} is missing from the export"
        assert {row["customer_id"] for row in derived[table]} == {customer_id}
    assert "identifiers" not in derived and "audit_log" not in derived
    # Stage evidence: the criterion columns come along with the stage.
    assert any(k.startswith("holds_") for k in derived["customer_stage"][0])
    assert derived["customer_value"][0]["revenue"] == 42.5


def test_audit_entries_and_rejects_about_them_only(engine) -> None:
    merged_person(engine)
    customer_id = export_customer(engine.db, "u1", PRIVACY)["customer_id"]
    audit(engine.db, "tok_1", "customer.read", customer_id)
    audit(engine.db, "tok_1", "customer.read", "c_someone_else")
    with engine.db.session() as session:
        session.insert_rows(
            "rejects",
            [
                {
                    "rejected_at": T0,
                    "origin": "http",
                    "field": "timestamp",
                    "reason": "bad",
                    "payload": json.dumps({"userId": who, "timestamp": "nope"}),
                }
                for who in ("u1", "u10")
            ],
        )
    doc = export_customer(engine.db, "u1", PRIVACY)
    assert [(a["actor"], a["customer_id"]) for a in doc["audit"]] == [("tok_1", customer_id)]
    assert [json.loads(r["payload"])["userId"] for r in doc["rejects"]] == ["u1"]


def test_large_histories_stream_in_batches_as_valid_json(engine) -> None:
    many = 12_001  # more than two batches
    add_events(
        engine.db,
        [
            {"event": "Page Viewed", "at": T0 + timedelta(seconds=n), "properties": {"n": n}}
            for n in range(many)
        ],
        T0,
    )
    engine.resolve_identities()
    chunks = list(export_json(engine.db, "u1", PRIVACY))
    assert len(chunks) > 3
    doc = json.loads(b"".join(chunks))
    assert doc["event_count"] == many
    assert [e["properties"]["n"] for e in doc["events"]] == list(range(many))


def test_unknown_person_is_not_found(engine) -> None:
    merged_person(engine)
    with pytest.raises(CustomerNotFound, match="no customer"):
        export_customer(engine.db, "nobody@example.com", PRIVACY)


def test_export_file_is_new_private_and_registered(engine, tmp_path: Path) -> None:
    merged_person(engine)
    path = tmp_path / "ann.json"
    customer_id, size = write_export_file(engine.db, "u1", path, PRIVACY)
    assert path.stat().st_size == size
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_bytes())["customer_id"] == customer_id
    with engine.db.session() as session:
        files = session.fetch(session.table("written_files").select("path", "kind"))
    assert files == [(str(path.resolve()), "export")]
    with pytest.raises(ExportFileError, match="already exists"):
        write_export_file(engine.db, "u1", path, PRIVACY)
    assert json.loads(path.read_bytes())["customer_id"] == customer_id  # untouched
    with pytest.raises(ExportFileError, match="does not exist"):
        write_export_file(engine.db, "u1", tmp_path / "no" / "such" / "x.json", PRIVACY)


def test_events_giving_their_email_or_phone_are_theirs_too(engine) -> None:
    merged_person(engine)
    add_events(
        engine.db,
        [
            {"type": "identify", "user": "u3", "traits": {"email": " ANN@example.com "}},
            {"type": "identify", "user": "u1", "traits": {"phone": "+44 20 7946 0000"}},
            {"type": "identify", "user": "u4", "traits": {"phone": "+44-20-7946-0000"}},
            {"type": "identify", "user": "u5", "traits": {"email": "carol@example.com"}},
        ],
        T0 + timedelta(days=8),
    )
    engine.resolve_identities()
    users = {e["user_id"] for e in export_customer(engine.db, "u1", PRIVACY)["events"]}
    assert users == {"u1", None, "u3", "u4"}
