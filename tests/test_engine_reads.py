"""Remembered reads: computed once per scoring, forgotten at the next scoring or erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.engagement.events import add_events

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def visits(user: str, days: int = 4) -> list[dict]:
    return [
        {"event": "Page Viewed", "user": user, "at": T0 + timedelta(days=d), "channel": "web"}
        for d in range(days)
    ]


def test_reads_follow_scoring_and_erasure_and_are_copies(engine) -> None:
    add_events(engine.db, visits("u1") + visits("u2"), T0)
    engine.score(T0 + timedelta(days=30))
    first = engine.stage_distribution()
    assert first["customers"] == 2
    first["customers"] = 99  # a caller changing its copy changes nothing remembered
    assert engine.stage_distribution()["customers"] == 2
    listed = engine.customers(limit=10)
    assert listed["total"] == 2
    add_events(engine.db, visits("u3"), T0 + timedelta(days=1))
    engine.score(T0 + timedelta(days=30))
    assert engine.stage_distribution()["customers"] == 3
    assert engine.customers(limit=10)["total"] == 3
    engine.erase("u3", "test")
    assert engine.stage_distribution()["customers"] == 2
    assert engine.customers(limit=10)["total"] == 2
