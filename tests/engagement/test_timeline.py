"""The timeline: newest first, who started each contact, details cut to what matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.engagement.test_features import add
from troth.engagement.timeline import customer_timeline
from troth.identity.runner import resolve_identities
from troth.store import Database

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _customer(db: Database) -> str:
    resolve_identities(db)
    with db.session() as session:
        ids = session.table("identifiers")
        return session.scalar(ids.filter(ids.value == "u1").customer_id.max())


def test_latest_first_limited_and_marked_by_who_started_it(db: Database) -> None:
    add(
        db,
        [
            {"event": "Product Viewed", "at": T0, "properties": {"category": "shoes"}},
            {
                "event": "Call Made",
                "at": T0 + timedelta(hours=1),
                "properties": {"purpose": "sales", "solicited": False, "duration_s": 60},
            },
            {
                "event": "Survey Responded",
                "at": T0 + timedelta(hours=2),
                "properties": {"nps": 3, "text": "x" * 200},
            },
        ],
    )
    timeline = customer_timeline(db, _customer(db), limit=2)
    assert [t["what"] for t in timeline] == ["Survey Responded", "Call Made"]
    assert timeline[1]["by"] == "company" and timeline[0]["by"] == "customer"
    assert timeline[1]["details"] == {"purpose": "sales", "solicited": False}
    assert timeline[0]["details"]["nps"] == 3
    assert len(timeline[0]["details"]["text"]) == 60 and timeline[0]["details"]["text"][-1] == "…"


def test_a_customer_without_properties_has_empty_details(db: Database) -> None:
    add(db, [{"type": "page", "event": None, "at": T0}])
    (only,) = customer_timeline(db, _customer(db))
    assert only["what"] == "page" and only["details"] == {}


def test_an_unknown_customer_has_an_empty_timeline(db: Database) -> None:
    add(db, [{"event": "Signed Up", "at": T0}])
    resolve_identities(db)
    assert customer_timeline(db, "c_nobody") == []
