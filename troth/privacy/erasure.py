"""Erasure (GDPR Art. 17): everything held about a person removed from the database and files.

`erase_customer` finds the customer holding any of their identifiers, gathers every identifier
of theirs (each merged identity, and the emails and phones their traits gave), and plans the
erasure the store carries out in one transaction (`troth.store.erasure`): their events and
rejects, identity rows and every derived row go; other rows that mention them keep their place
with the mention replaced by `[erased]` (a referrer's `referred_user_id`, a free-text field);
audit entries about them keep their action, their customer id replaced by a keyed hash. Files
Troth recorded as written (`written_files`) lose the lines naming the person, and a file that
was only about them is deleted. Then the database file is rewritten, since deleted rows stay in
freed blocks of a DuckDB file, and a tombstone of each identifier stops late events from
bringing the person back unless they consent again (`troth.store.tombstones`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from troth.errors import CustomerNotFound
from troth.identity.profile import customer_events, find_customer
from troth.privacy.audit import audit
from troth.store import Database, Session
from troth.store.erasure import ErasurePlan, execute_erasure, mention_pattern
from troth.store.tombstones import event_nodes, node_hash, tombstone_filter, tombstone_key
from troth.store.written_files import written_files

__all__ = ["ErasureSummary", "erase_customer"]

# Files read line by line: a line naming the person is dropped. Any other file naming them
# (a JSON document, a binary file) is deleted whole.
_LINE_FILES = (".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".log")
_HEADER_FILES = (".csv", ".tsv")


@dataclass(frozen=True)
class ErasureSummary:
    """What an erasure removed: rows per table, scrubbed rows and files, and its duration."""

    customer_id: str
    identifiers: int
    rows_removed: dict[str, int]
    rows_scrubbed: dict[str, int]
    files_scrubbed: list[dict[str, Any]] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    tombstones: int = 0
    rewrite_seconds: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Person:
    """Everything that identifies one customer."""

    customer_ids: tuple[str, ...]
    nodes: tuple[str, ...]
    user_ids: tuple[str, ...]
    anonymous_ids: tuple[str, ...]
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    raw_traits: tuple[str, ...]


def _merged_ids(session: Session, customer_id: str) -> list[str]:
    """Return the customer's id and every id merged into it, transitively."""
    merges = session.table("identity_merges")
    ids, frontier = [customer_id], [customer_id]
    while frontier:
        rows = session.fetch(
            merges.filter(merges.into_customer_id.isin(frontier))
            .select("from_customer_id")
            .distinct()
        )
        frontier = [r[0] for r in rows if r[0] not in ids]
        ids += frontier
    return ids


def _person(db: Database, customer_id: str) -> _Person:
    """Return every identifier of the customer: graph nodes, ids, and emails/phones in traits."""
    with db.session() as session:
        ids = _merged_ids(session, customer_id)
        identifiers = session.table("identifiers")
        nodes = session.fetch(
            identifiers.filter(identifiers.customer_id.isin(ids)).select("node", "kind", "value")
        )
        users = sorted({v for _, k, v in nodes if k == "user_id"})
        anons = sorted({v for _, k, v in nodes if k == "anonymous_id"})
        events = customer_events(session.table("events"), users, anons)
        traits = [
            events.traits[name].str.coalesce(events.context["traits"][name].str)
            for name in ("email", "phone")
        ]
        found = events.select(email=traits[0], phone=traits[1])
        found = found.filter(found.email.notnull() | found.phone.notnull()).distinct()
        trait_rows = session.fetch(found) if users or anons else []
    emails = {v for _, k, v in nodes if k == "email"}
    phones = {v for _, k, v in nodes if k == "phone"}
    raw: set[str] = set()
    for email, phone in trait_rows:
        for node in event_nodes(None, None, None, {"email": email, "phone": phone}, {}):
            kind, value = node.split(":", 1)
            (emails if kind == "email" else phones).add(value)
        raw.update(v.strip() for v in (email, phone) if v and v.strip())
    return _Person(
        customer_ids=tuple(ids),
        nodes=tuple(sorted({n for n, _, _ in nodes})),
        user_ids=tuple(users),
        anonymous_ids=tuple(anons),
        emails=tuple(sorted(emails)),
        phones=tuple(sorted(phones)),
        raw_traits=tuple(sorted(raw)),
    )


def _was_erased(db: Database, identifier: str) -> bool:
    """Return True if `identifier` names a tombstoned (erased) identifier node."""
    cur = db.cursor()
    try:
        tombstones = tombstone_filter(db, cur)
    finally:
        cur.close()
    if tombstones is None:
        return False
    text = identifier.strip()
    nodes = event_nodes(text, text, None, {"email": text, "phone": text}, {})
    return any(node_hash(tombstones.key, n) in tombstones.hashes for n in nodes)


def _scrub_file(path: Path, pattern: re.Pattern[str]) -> int | None:
    """Remove the person from a file; return lines removed, or None if the file was deleted."""
    if pattern.search(path.name):
        path.unlink()
        return None
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    if path.suffix.lower() not in _LINE_FILES:
        if pattern.search(text):
            path.unlink()
            return None
        return 0
    lines = text.splitlines(keepends=True)
    header = lines[:1] if path.suffix.lower() in _HEADER_FILES else []
    body = lines[len(header) :]
    kept = [line for line in body if not pattern.search(line)]
    removed = len(body) - len(kept)
    if not removed:
        return 0
    if not any(line.strip() for line in kept):  # every record was theirs: an export of them
        path.unlink()
        return None
    staging = path.with_name(path.name + ".erasing")
    staging.write_bytes("".join(header + kept).encode("utf-8", errors="surrogateescape"))
    os.replace(staging, path)
    return removed


def _scrub_files(
    db: Database, mentions: list[str]
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Scrub every recorded file; return (files scrubbed, files deleted, records to forget)."""
    pattern_text = mention_pattern(mentions)
    scrubbed: list[dict[str, Any]] = []
    deleted: list[str] = []
    forget: list[str] = []
    for name, _kind in written_files(db):
        path = Path(name)
        if not path.is_file():
            forget.append(name)
            continue
        if pattern_text is None:
            continue
        removed = _scrub_file(path, re.compile(pattern_text))
        if removed is None:
            deleted.append(name)
            forget.append(name)
        elif removed:
            scrubbed.append({"path": name, "lines_removed": removed})
    return scrubbed, deleted, forget


def erase_customer(db: Database, identifier: str, actor: str) -> ErasureSummary:
    """Erase the customer holding `identifier` from the database and Troth's files.

    Returns what was removed; raises CustomerNotFound for an identifier no customer holds.
    Identities should be resolved first, so that every event of the person is attributed.
    """
    started = time.perf_counter()
    try:
        customer_id = find_customer(db, identifier)
    except CustomerNotFound:
        if _was_erased(db, identifier):
            raise CustomerNotFound(
                f"'{identifier}' was erased already; nothing is held about it"
            ) from None
        raise
    person = _person(db, customer_id)
    key = tombstone_key(db)
    mentions = [
        *person.customer_ids,
        *person.user_ids,
        *person.anonymous_ids,
        *person.emails,
        *person.phones,
        *person.raw_traits,
    ]
    tomb_nodes = {
        *person.nodes,
        *(f"email:{e}" for e in person.emails),
        *(f"phone:{p}" for p in person.phones),
    }
    files_scrubbed, files_deleted, forget = _scrub_files(db, mentions)
    plan = ErasurePlan(
        customer_ids=person.customer_ids,
        nodes=person.nodes,
        user_ids=person.user_ids,
        anonymous_ids=person.anonymous_ids,
        emails=person.emails,
        phones=person.phones,
        mentions=tuple(mentions),
        audit_id="erased_" + node_hash(key, f"customer:{customer_id}")[:16],
        tombstones=tuple(sorted(node_hash(key, n) for n in tomb_nodes)),
        forget_files=tuple(forget),
    )
    removed, scrubbed = execute_erasure(db, plan)
    detail = f"{sum(removed.values())} rows, {len(files_scrubbed) + len(files_deleted)} files"
    audit(db, actor, "customer.erase", plan.audit_id, detail)
    rewrite_seconds = db.rewrite()
    return ErasureSummary(
        customer_id=customer_id,
        identifiers=len(tomb_nodes),
        rows_removed=removed,
        rows_scrubbed=scrubbed,
        files_scrubbed=files_scrubbed,
        files_deleted=files_deleted,
        tombstones=len(plan.tombstones),
        rewrite_seconds=round(rewrite_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
    )
