"""Contact lists: marketing consent per channel, read live from the ledger, and an address."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from tests.engagement.events import add_events
from troth.config import PrivacySettings, Settings
from troth.engine import Engine
from troth.privacy.consent import record_consent
from troth.privacy.contacts import ContactError
from troth.store.written_files import NewFileError, written_files

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def person(user: str, email: str | None = None, phone: str | None = None) -> dict:
    traits = {k: v for k, v in (("email", email), ("phone", phone)) if v}
    return {"type": "identify", "event": None, "user": user, "at": T0, "traits": traits}


def answer(user: str, purpose: str, granted: bool, days: int = 1) -> dict:
    return {
        "event": "Consent Updated",
        "user": user,
        "at": T0 + timedelta(days=days),
        "properties": {"purpose": purpose, "granted": granted},
    }


def listed(engine, channel: str, **options) -> dict[str, str]:
    page = engine.contacts(channel, "test", **options)
    assert page["total"] == len(page["contacts"])
    return {row["address"]: row["customer_id"] for row in page["contacts"]}


@pytest.fixture
def opt_in(tmp_path):
    # The default regime: marketing purposes need the customer's explicit grant.
    eng = Engine.open(Settings(), tmp_path / "contacts.duckdb")
    yield eng
    eng.close()


def test_only_customers_who_granted_the_channel_with_an_address_are_listed(opt_in) -> None:
    add_events(
        opt_in.db,
        [
            person("granted", email="a@example.com", phone="+100"),
            person("silent", email="b@example.com"),
            person("withdrew", email="c@example.com"),
            person("no_address"),
            person("sms_only", email="e@example.com", phone="+200"),
            answer("granted", "marketing:email", True),
            answer("granted", "marketing:sms", True),
            answer("withdrew", "marketing:email", True),
            answer("withdrew", "marketing:email", False, days=2),
            answer("no_address", "marketing:email", True),
            answer("sms_only", "marketing:sms", True),
        ],
        T0,
    )
    opt_in.resolve_identities()
    assert set(listed(opt_in, "email")) == {"a@example.com"}
    assert set(listed(opt_in, "sms")) == {"+100", "+200"}
    assert listed(opt_in, "call") == {}
    assert listed(opt_in, "push") == {}  # nobody granted marketing:push


def test_push_lists_the_signed_in_user_and_opt_out_regime_lists_the_silent(tmp_path) -> None:
    settings = Settings(
        privacy=PrivacySettings(granted_by_default=["analytics", "profiling", "marketing:push"])
    )
    engine = Engine.open(settings, tmp_path / "opt_out.duckdb")
    try:
        add_events(
            engine.db,
            [
                person("u1"),
                person("u2"),
                answer("u2", "marketing:push", False),
                {"event": "Page Viewed", "user": None, "anonymous": "anon-only", "at": T0},
            ],
            T0,
        )
        engine.resolve_identities()
        assert set(listed(engine, "push")) == {"u1"}  # anonymous visitors have no push address
    finally:
        engine.close()


def test_a_withdrawal_counts_at_once_without_scoring(opt_in) -> None:
    add_events(
        opt_in.db,
        [person("u1", email="a@example.com"), answer("u1", "marketing:email", True)],
        T0,
    )
    opt_in.resolve_identities()
    customer = listed(opt_in, "email")["a@example.com"]
    record_consent(
        opt_in.db,
        customer,
        "marketing:email",
        False,
        purposes=opt_in.settings.privacy.purposes,
        source="portal",
        changed_by="customer",
        at=T0 + timedelta(days=3),
    )
    assert listed(opt_in, "email") == {}


def test_latest_address_is_used(opt_in) -> None:
    later = person("u1", email="new@example.com")
    later["at"] = T0 + timedelta(days=5)
    add_events(
        opt_in.db,
        [person("u1", email="old@example.com"), later, answer("u1", "marketing:email", True)],
        T0,
    )
    opt_in.resolve_identities()
    assert set(listed(opt_in, "email")) == {"new@example.com"}


def test_stage_filter_and_unknown_channel(opt_in) -> None:
    add_events(
        opt_in.db,
        [person("u1", email="a@example.com"), answer("u1", "marketing:email", True)],
        T0,
    )
    opt_in.score(T0 + timedelta(days=10))
    stage = opt_in.customer("u1")["engagement"]["stage"]
    assert set(listed(opt_in, "email", stage=stage)) == {"a@example.com"}
    assert listed(opt_in, "email", stage="advocacy' OR 1=1 --") == {}
    with pytest.raises(ContactError, match="unknown channel 'fax'; choose one of email, sms"):
        opt_in.contacts("fax", "test")
    with pytest.raises(ContactError, match="unknown channel"):
        opt_in.contacts("email'; DROP TABLE events; --", "test")
    with opt_in.db.session() as session:
        assert session.scalar(session.table("events").count()) == 2


def test_the_file_is_new_private_recorded_and_audited(opt_in, tmp_path) -> None:
    add_events(
        opt_in.db,
        [
            person("u1", email="a@example.com"),
            person("u2", email="b@example.com"),
            answer("u1", "marketing:email", True),
        ],
        T0,
    )
    opt_in.resolve_identities()
    out = tmp_path / "email.csv"
    assert opt_in.contacts_file("email", out, "cli") == 1
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["address"] for r in rows] == ["a@example.com"]
    assert out.stat().st_mode & 0o777 == 0o600
    assert (str(out.resolve()), "contacts") in written_files(opt_in.db)
    with pytest.raises(NewFileError, match="already exists"):
        opt_in.contacts_file("email", out, "cli")
    actions = [e["action"] for e in opt_in.audit_log()["entries"]]
    assert actions.count("contacts.export") == 1
