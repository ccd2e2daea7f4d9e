"""Data access (GDPR Art. 15 and 20): everything Troth holds about one person, as one JSON document.

The document is written section by section and the large sections (events, derived rows) a
batch at a time, so a customer with millions of events costs a batch of memory, not all of
them. Derived tables are found in the catalog (every stored table with a `customer_id`
column), so a table added later is exported without touching this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import ibis
import ibis.expr.types as ir
import msgspec

from troth.config import PrivacySettings
from troth.identity.profile import find_customer, latest_traits
from troth.privacy.consent import customer_consent
from troth.store import Database, Session
from troth.store.tombstones import event_nodes
from troth.store.written_files import NewFileError, create_private_file, record_written_file

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_SECTIONS",
    "EXPORT_VERSION",
    "ExportFileError",
    "export_customer",
    "export_json",
    "write_export_file",
]

EXPORT_FORMAT = "troth.customer-export"
EXPORT_VERSION = 1
EXPORT_SECTIONS = {
    "customer_id": "the id Troth gave the person; every derived row is keyed by it",
    "identifiers": "every identifier resolved to the person (user ids, anonymous ids, emails, "
    "phones), with when each was first and last seen",
    "identity_links": "why identifiers were joined into one person: the linking event and reason",
    "merges": "customers merged into or out of this one, when, and why",
    "traits": "the latest value of every trait, and every event that set traits, oldest first",
    "consent": "the current answer per purpose (or its default) and every change, newest first",
    "derived": "every row about the person in every table Troth computed, one key per table "
    "(features, stage with its evidence, stage history, attributes, card, ladder, value …)",
    "rejects": "rejected calls (not stored as events) that name one of their identifiers",
    "audit": "who read, exported or changed the person's data, newest first",
    "event_count": "how many events follow",
    "events": "every event under any of the person's identifiers, oldest first, every column; "
    "properties, traits and context as sent",
}
# Tables with a customer_id column that have a section of their own.
_OWN_SECTIONS = frozenset({"identifiers", "audit_log"})
_BATCH_ROWS = 5_000


# A refused export file name is the store's refusal of any new private file.
ExportFileError = NewFileError


@dataclass(frozen=True)
class _Rows:
    """A section whose rows are read and written a batch at a time."""

    session: Session
    expr: ir.Table

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        json_columns = [name for name, dtype in self.expr.schema().items() if dtype.is_json()]
        for batch in self.session.fetch_batches(self.expr, _BATCH_ROWS):
            if json_columns:
                # Stored JSON is valid JSON: passed through as it is, never decoded and re-encoded.
                for row in batch:
                    for name in json_columns:
                        if row[name] is not None:
                            row[name] = msgspec.Raw(row[name].encode())
            yield batch


def export_json(db: Database, identifier: str, settings: PrivacySettings) -> Iterator[bytes]:
    """Yield the export document of the person holding `identifier` as UTF-8 JSON chunks.

    Raises CustomerNotFound before the first chunk when no customer holds the identifier.
    """
    customer_id = find_customer(db, identifier)
    return _document(db, identifier, customer_id, settings)


def export_customer(db: Database, identifier: str, settings: PrivacySettings) -> dict[str, Any]:
    """Return everything held about the person holding `identifier` as a JSON-ready dict."""
    return msgspec.json.decode(b"".join(export_json(db, identifier, settings)))


def write_export_file(
    db: Database, identifier: str, path: Path, settings: PrivacySettings
) -> tuple[str, int]:
    """Write the export to a new file at `path` (owner-only); return (customer id, bytes)."""
    customer_id = find_customer(db, identifier)
    target = path.expanduser()
    fd = create_private_file(path)  # new and owner-only: the file holds one person's data
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _document(db, identifier, customer_id, settings):
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    # Recorded so an erasure of the person finds the file and deletes it too.
    record_written_file(db, target, "export")
    return customer_id, size


def write_export(
    db: Database, identifier: str, out: BinaryIO, settings: PrivacySettings
) -> tuple[str, int]:
    """Write the export to an open binary stream; return (customer id, bytes written)."""
    customer_id = find_customer(db, identifier)
    size = 0
    for chunk in _document(db, identifier, customer_id, settings):
        out.write(chunk)
        size += len(chunk)
    return customer_id, size


def _document(
    db: Database, identifier: str, customer_id: str, settings: PrivacySettings
) -> Iterator[bytes]:
    consent = customer_consent(db, customer_id, settings.purposes, settings.granted_by_default)
    with db.session() as session:
        ids = session.table("identifiers")
        theirs = ids.filter(ids.customer_id == customer_id)
        emails, phones = _contacts(session, theirs)
        events = _their_events(session.table("events"), theirs, emails, phones)
        traits = session.fetch_dicts(
            events.filter(events.traits.notnull())
            .order_by(["timestamp", "seq"])
            .select("timestamp", "message_id", "type", traits=events.traits.cast("string"))
        )
        document = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "generated_at": datetime.now(UTC),
            "requested_identifier": identifier,
            "sections": EXPORT_SECTIONS,
            "customer_id": customer_id,
            "identifiers": session.fetch_dicts(
                theirs.select("kind", "value", "node", "first_seen", "last_seen").order_by(
                    ["kind", "value"]
                )
            ),
            "identity_links": _Rows(session, _their_links(session.table("identity_links"), theirs)),
            "merges": session.fetch_dicts(
                _their_merges(session.table("identity_merges"), customer_id)
            ),
            "traits": {
                "latest": latest_traits(row["traits"] for row in traits),
                "history": [
                    {**row, "traits": msgspec.Raw(row["traits"].encode())} for row in traits
                ],
            },
            "consent": consent,
            "derived": {
                table: _Rows(session, _rows_of(session.table(table), customer_id))
                for table, columns in session.stored_tables().items()
                if "customer_id" in columns and table not in _OWN_SECTIONS
            },
            "rejects": _Rows(session, _their_rejects(session.table("rejects"), theirs)),
            "audit": _Rows(session, _their_audit(session.table("audit_log"), customer_id)),
            "event_count": int(session.scalar(events.count())),
            "events": _Rows(session, events.order_by(["timestamp", "seq"])),
        }
        yield from _encode(document)


def _encode(value: Any) -> Iterator[bytes]:
    """Yield `value` as JSON, streaming the row sections a batch at a time."""
    if isinstance(value, _Rows):
        yield b"["
        first = True
        for batch in value.batches():
            if batch:
                yield (b"" if first else b",") + msgspec.json.encode(batch)[1:-1]
                first = False
        yield b"]"
    elif isinstance(value, dict) and any(_streams(v) for v in value.values()):
        yield b"{"
        for n, (key, item) in enumerate(value.items()):
            yield (b"," if n else b"") + msgspec.json.encode(str(key)) + b":"
            yield from _encode(item)
        yield b"}"
    else:
        yield msgspec.json.encode(value)


def _streams(value: Any) -> bool:
    return isinstance(value, _Rows) or (
        isinstance(value, dict) and any(_streams(v) for v in value.values())
    )


def _values(theirs: ir.Table, kinds: Iterable[str]) -> ir.Column:
    return theirs.filter(theirs.kind.isin(list(kinds))).value


def _trait(events: ir.Table, name: str) -> ir.StringValue:
    return events.traits[name].str.coalesce(events.context["traits"][name].str)


def _contacts(session: Session, theirs: ir.Table) -> tuple[list[str], list[str]]:
    """Return their emails and phones (normalised as identity does): graph nodes and traits."""
    events = _their_events(session.table("events"), theirs, [], [])
    found = events.select(email=_trait(events, "email"), phone=_trait(events, "phone"))
    found = found.filter(found.email.notnull() | found.phone.notnull()).distinct()
    nodes = {f"{kind}:{value}" for kind, value in session.fetch(theirs.select("kind", "value"))}
    for email, phone in session.fetch(found):
        nodes.update(event_nodes(None, None, None, {"email": email, "phone": phone}, {}))
    emails = sorted(n.split(":", 1)[1] for n in nodes if n.startswith("email:"))
    phones = sorted(n.split(":", 1)[1] for n in nodes if n.startswith("phone:"))
    return emails, phones


def _their_events(
    events: ir.Table, theirs: ir.Table, emails: list[str], phones: list[str]
) -> ir.Table:
    """Return events carrying any of their ids (also as an alias's previousId), or whose traits
    give one of their emails or phones (what an erasure of them removes)."""
    users = _values(theirs, ["user_id"])
    anonymous = _values(theirs, ["anonymous_id"])
    either = _values(theirs, ["user_id", "anonymous_id"])
    condition = (
        events.user_id.isin(users)
        | events.anonymous_id.isin(anonymous)
        | events.previous_id.isin(either)
    )
    if emails:
        condition |= _trait(events, "email").strip().lower().isin(emails)
    if phones:
        condition |= _trait(events, "phone").re_replace("[^0-9+]", "").isin(phones)
    return events.filter(condition)


def _their_links(links: ir.Table, theirs: ir.Table) -> ir.Table:
    return links.filter(links.a.isin(theirs.node) | links.b.isin(theirs.node)).order_by(
        ["linked_at", "a", "b"]
    )


def _their_merges(merges: ir.Table, customer_id: str) -> ir.Table:
    return merges.filter(
        (merges.into_customer_id == customer_id) | (merges.from_customer_id == customer_id)
    ).order_by("merged_at")


def _rows_of(table: ir.Table, customer_id: str) -> ir.Table:
    return table.filter(table.customer_id == customer_id)


def _their_rejects(rejects: ir.Table, theirs: ir.Table) -> ir.Table:
    """Return rejects whose payload holds one of their identifiers as a JSON string."""
    quoted = theirs.select(needle=ibis.literal('"') + theirs.value + ibis.literal('"'))
    matched = rejects.join(quoted, rejects.payload.contains(quoted.needle)).select(*rejects.columns)
    return matched.distinct().order_by("rejected_at")


def _their_audit(log: ir.Table, customer_id: str) -> ir.Table:
    return log.filter(log.customer_id == customer_id).order_by(log.logged_at.desc())
