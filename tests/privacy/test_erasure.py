"""Erasure: every row, mention and file of a person gone, the file rewritten, tombstones hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.engagement.events import add_events
from troth.errors import CustomerNotFound
from troth.ingest.mapping import TableMapping, parse_map_options
from troth.privacy.audit import audit, audit_entries
from troth.store.erasure import mention_pattern, scrub_text
from troth.store.written_files import record_written_file, written_files

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
EMAIL = "ann.erasable@example.com"
SECRETS = (EMAIL, "ann-user-7", "anon-ann-1", "anon-ann-2")


def _person_events() -> list[dict]:
    """Ann browses anonymously on two devices, signs up, buys; Bob refers her; Cy buys."""
    return [
        {"type": "page", "user": None, "anonymous": "anon-ann-1", "at": T0},
        {"event": "Product Viewed", "user": None, "anonymous": "anon-ann-2", "at": T0},
        {
            "type": "identify",
            "user": "ann-user-7",
            "anonymous": "anon-ann-1",
            "traits": {"email": EMAIL, "name": "Ann"},
            "at": T0 + timedelta(hours=1),
        },
        {
            "type": "alias",
            "user": "ann-user-7",
            "anonymous": "anon-ann-2",
            "at": T0 + timedelta(hours=2),
        },
        {
            "event": "Order Completed",
            "user": "ann-user-7",
            "properties": {"revenue": 30.0, "note": f"gift wrap, mail {EMAIL}."},
            "at": T0 + timedelta(days=1),
        },
        {"type": "identify", "user": "bob-user-8", "traits": {"email": "bob@example.com"}},
        {
            "event": "Referral Converted",
            "user": "bob-user-8",
            "properties": {"referral_id": "ref-1", "referred_user_id": "ann-user-7"},
        },
        {"event": "Order Completed", "user": "cy-user-9", "properties": {"revenue": 12.0}},
    ]


@pytest.fixture
def populated(engine):
    rows = _person_events()
    # add_events gives every row a userId unless it says otherwise; alias keeps previousId.
    add_events(engine.db, rows, T0 + timedelta(days=2))
    cur = engine.db.cursor()
    cur.execute(
        "UPDATE events SET previous_id = 'anon-ann-2', anonymous_id = NULL WHERE type = 'alias'"
    )
    cur.close()
    engine.resolve_identities()
    return engine


def _counts(engine, table: str, where: str = "true") -> int:
    cur = engine.db.cursor()
    try:
        return cur.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
    finally:
        cur.close()


def _file_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def test_erasure_leaves_no_identifier_in_the_database_file(populated) -> None:
    engine = populated
    ann = engine.customer("anon-ann-2")["customer_id"]
    assert engine.customer(EMAIL)["customer_id"] == ann  # the email is found through traits
    others = _counts(engine, "events", "user_id IN ('bob-user-8', 'cy-user-9')")
    engine.db.checkpoint()
    before = _file_bytes(engine.db.path)
    assert EMAIL.encode() in before or b"ann-user-7" in before  # the test can see bytes at all

    summary = engine.erase(EMAIL, "cli")

    assert summary.customer_id == ann
    assert summary.rows_removed["events"] == 5
    assert summary.rows_removed["identifiers"] == 3 + 1  # user id, two anonymous ids, alias end
    assert summary.rows_scrubbed["events"] == 1  # Bob's referral names Ann
    engine.db.checkpoint()
    data = _file_bytes(engine.db.path)
    for secret in (*SECRETS, ann):
        assert data.count(secret.encode()) == 0, secret
    assert not Path(f"{engine.db.path}.wal").exists() or EMAIL.encode() not in _file_bytes(
        f"{engine.db.path}.wal"
    )
    # Everyone else is intact; the referral keeps its place without naming Ann.
    assert _counts(engine, "events", "user_id IN ('bob-user-8', 'cy-user-9')") == others
    cur = engine.db.cursor()
    referral = cur.execute(
        "SELECT properties FROM events WHERE event = 'Referral Converted'"
    ).fetchone()[0]
    cur.close()
    assert json.loads(referral) == {"referral_id": "ref-1", "referred_user_id": "[erased]"}
    assert engine.customer("bob-user-8")["event_count"] == 2
    with pytest.raises(CustomerNotFound):
        engine.customer("ann-user-7")


def test_every_derived_table_with_a_customer_id_loses_the_person(populated) -> None:
    engine = populated
    engine.score(as_of=T0 + timedelta(days=3))
    ann = engine.customer("ann-user-7")["customer_id"]
    cur = engine.db.cursor()
    # A table added later (here by hand) is found through the catalog.
    cur.execute("CREATE TABLE future_scores AS SELECT customer_id, 1 AS score FROM identifiers")
    derived = [
        row[0]
        for row in cur.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE column_name = 'customer_id' AND table_name NOT IN ('audit_log')"
        ).fetchall()
    ]
    held = [t for t in derived if _counts(engine, t, f"customer_id = '{ann}'")]
    cur.close()
    assert {"customer_features", "customer_stage", "future_scores"} <= set(held)

    summary = engine.erase("ann-user-7", "cli")

    for table in derived:
        assert _counts(engine, table, f"customer_id = '{ann}'") == 0, table
    assert set(held) <= set(summary.rows_removed)
    assert _counts(engine, "customer_stage") >= 2  # Bob and Cy keep their scores


def test_a_row_whose_message_id_names_the_person_goes(populated) -> None:
    engine = populated
    add_events(
        engine.db,
        [{"event": "Ticket Closed", "user": "cy-user-9"}],
        T0,
        message_id=lambda *_: "ticket:ann-user-7",
    )
    summary = engine.erase("ann-user-7", "cli")
    assert summary.rows_removed["events"] == 5 + 1
    assert _counts(engine, "events", "user_id = 'cy-user-9'") == 1


def test_audit_entries_keep_their_action_under_a_keyed_hash(populated) -> None:
    engine = populated
    ann = engine.customer("ann-user-7")["customer_id"]
    audit(engine.db, "tok_1", "customer.read", ann, "read ann-user-7")
    audit(engine.db, "tok_1", "customer.read", None, "a list")

    engine.erase("ann-user-7", "tok_admin")

    entries = audit_entries(engine.db)["entries"]
    assert [e["action"] for e in entries] == ["customer.erase", "customer.read", "customer.read"]
    erased = entries[0]
    (read,) = [e for e in entries if e["detail"] == "read [erased]"]
    assert erased["actor"] == "tok_admin"
    assert read["customer_id"] == erased["customer_id"]
    assert read["customer_id"].startswith("erased_") and ann not in json.dumps(entries)
    assert "ann-user-7" not in json.dumps(entries)


def test_unknown_and_already_erased_identifiers_are_clear_errors(populated) -> None:
    with pytest.raises(CustomerNotFound, match="no customer has the identifier 'nobody'"):
        populated.erase("nobody", "cli")
    populated.erase("ann-user-7", "cli")
    with pytest.raises(CustomerNotFound, match="was erased already"):
        populated.erase(EMAIL, "cli")


def test_written_files_are_scrubbed_or_deleted(populated, tmp_path: Path) -> None:
    engine = populated
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"email,name\n{EMAIL},Ann\nbob@example.com,Bob\n")
    export = tmp_path / "export-ann.json"
    export.write_text(json.dumps({"customer": {"user_id": "ann-user-7", "email": EMAIL}}))
    lines = tmp_path / "only-ann.jsonl"
    lines.write_text(json.dumps({"userId": "anon-ann-1"}) + "\n")
    gone = tmp_path / "gone.jsonl"
    for path, kind in ((contacts, "contacts"), (export, "export"), (lines, "rejects")):
        record_written_file(engine.db, path, kind)
    record_written_file(engine.db, gone, "rejects")  # never written, or removed since

    summary = engine.erase("ann-user-7", "cli")

    assert contacts.read_text() == "email,name\nbob@example.com,Bob\n"
    assert not export.exists() and not lines.exists()
    assert summary.files_scrubbed == [{"path": str(contacts.resolve()), "lines_removed": 1}]
    assert sorted(summary.files_deleted) == sorted(str(p.resolve()) for p in (export, lines))
    assert written_files(engine.db) == [(str(contacts.resolve()), "contacts")]


def _import_rows(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_import_suppresses_late_events_and_a_consent_grant_lifts_the_tombstone(
    populated, tmp_path: Path
) -> None:
    engine = populated
    bad = {"type": "track", "userId": "ann-user-7", "event": "", "messageId": "bad-1"}
    first = _import_rows(tmp_path, "first.jsonl", [bad])
    assert engine.import_file(first).rejected == 1
    rejects = tmp_path / "first.jsonl.rejects.jsonl"
    assert b"ann-user-7" in rejects.read_bytes()

    summary = engine.erase("ann-user-7", "cli")
    assert summary.rows_removed["rejects"] == 1
    assert not rejects.exists()  # it held only Ann's row

    late = [
        {"type": "track", "event": "Page Viewed", "anonymousId": "anon-ann-2", "messageId": "l1"},
        {"type": "identify", "userId": "new-1", "traits": {"email": EMAIL.upper()}},
        {"type": "track", "userId": "ann-user-7", "event": "", "messageId": "l3"},  # invalid
        {"type": "track", "event": "Page Viewed", "userId": "cy-user-9", "messageId": "l4"},
    ]
    result = engine.import_file(_import_rows(tmp_path, "late.jsonl", late))
    assert (result.inserted, result.rejected, result.suppressed) == (1, 0, 3)
    assert not (tmp_path / "late.jsonl.rejects.jsonl").exists()
    assert _counts(engine, "events", "user_id = 'ann-user-7' OR anonymous_id = 'anon-ann-2'") == 0

    grant = {
        "type": "track",
        "event": "Consent Updated",
        "userId": "ann-user-7",
        "properties": {"purpose": "analytics", "granted": True},
        "messageId": "c1",
    }
    again = [{"type": "track", "event": "Order Completed", "userId": "ann-user-7"}]
    assert engine.import_file(_import_rows(tmp_path, "grant.jsonl", [grant])).inserted == 1
    assert engine.import_file(_import_rows(tmp_path, "again.jsonl", again)).inserted == 1
    # Only the identifier that consented came back: the anonymous id stays tombstoned.
    still = [{"type": "page", "anonymousId": "anon-ann-1", "messageId": "p9"}]
    assert engine.import_file(_import_rows(tmp_path, "still.jsonl", still)).suppressed == 1


def test_table_import_suppresses_in_sql(populated, tmp_path: Path) -> None:
    engine = populated
    engine.erase("ann-user-7", "cli")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer,date,amount,email\n"
        "ann-user-7,2026-04-01,10,\n"
        "someone-new,2026-04-01,11,ANN.erasable@example.com\n"
        "ann-user-7,not a date,12,\n"  # invalid and Ann's: not kept as a reject either
        "cy-user-9,2026-04-02,13,\n"
        "cy-user-9,not a date,14,\n"
    )
    fields = parse_map_options(
        [
            "customer=userId",
            "date=timestamp",
            "amount=properties.revenue:number",
            "email=traits.email",
        ]
    )
    mapping = TableMapping(fields=fields, event="Order Completed")
    result = engine.import_file(orders, mapping=mapping)
    assert (result.inserted, result.rejected, result.suppressed) == (1, 1, 3)
    rejects = (tmp_path / "orders.csv.rejects.jsonl").read_text()
    assert "cy-user-9" in rejects and "ann-user-7" not in rejects
    assert str((tmp_path / "orders.csv.rejects.jsonl").resolve()) in dict(written_files(engine.db))


def test_mentions_stand_on_their_own() -> None:
    pattern = re.compile(mention_pattern(["u17", "ann@example.com"]))
    assert scrub_text(pattern, "u17 and u170, x-u17, mail ANN@example.com.") == (
        "[erased] and u170, x-u17, mail [erased]."
    )
    assert mention_pattern(["7", "ab"]) is None  # too short to find safely in free text


def test_rewrite_keeps_every_row_and_the_event_sequence(engine) -> None:
    add_events(engine.db, [{"event": "A"}, {"event": "B", "user": "u2"}], T0)
    cur = engine.db.cursor()
    before = cur.execute("SELECT max(seq), count(*) FROM events").fetchone()
    cur.close()
    engine.db.rewrite()
    add_events(engine.db, [{"event": "C", "user": "u3"}], T0)
    cur = engine.db.cursor()
    after = cur.execute("SELECT max(seq), count(*) FROM events").fetchone()
    cur.close()
    assert after == (before[0] + 1, before[1] + 1)
