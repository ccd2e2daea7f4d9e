"""The consent ledger: every customer's consent per purpose, with its history.

Consent is recorded as `Consent Updated` events (`properties.purpose`, `properties.granted` a
JSON boolean), whoever records it: the company's own systems through the Segment API, Troth's
API, or the customer on the portal (`context.source` says which, `context.changed_by` who). The
events are the ledger, so consent follows identity resolution (a merge carries it along), is
exported and erased with the person, and its history is the list of those events. A customer's
consent to a purpose is their latest answer for it; without one, the purpose's default applies
(`[privacy] granted_by_default`: opt-out for those, opt-in for the rest).

Events with an unknown purpose or a `granted` that is not true/false change nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from troth.errors import TrothError
from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, rows_to_table
from troth.identity import events_with_customer
from troth.store import Database, Session

__all__ = [
    "CONSENT_EVENT",
    "SCORING_PURPOSES",
    "ConsentError",
    "consent_changes",
    "consent_column",
    "consent_snapshot",
    "consent_state",
    "customer_consent",
    "personalised_only",
    "record_consent",
    "withheld_reason",
]

CONSENT_EVENT = "Consent Updated"
# What per-person scores need, where configured: the person's events used in computations
# (analytics) and a profile built of them (profiling). Without both, scores are withheld.
SCORING_PURPOSES = ("analytics", "profiling")
# Identifiers an event can carry (email and phone nodes come from traits).
_EVENT_ID_KINDS = ("user_id", "anonymous_id")


class ConsentError(TrothError, ValueError):
    """A consent change names an unknown purpose or customer."""


def consent_column(purpose: str) -> str:
    """Return a purpose's column name in consent tables ('marketing:email' → marketing_email)."""
    return purpose.replace(":", "_")


def consent_changes(events: ir.Table) -> ir.Table:
    """Return customer_id, purpose, granted, changed_at, source, changed_by, message_id, seq.

    `events` carry `customer_id`; only `Consent Updated` events with a purpose and a boolean
    `granted` are changes.
    """
    updates = events.filter(events.event == CONSENT_EVENT)
    changes = updates.select(
        customer_id=updates.customer_id,
        purpose=updates.properties["purpose"].str.strip().lower(),
        granted=updates.properties["granted"].bool,
        changed_at=updates.timestamp,
        source=updates.context["source"].str.coalesce(updates.channel, ibis.literal("events")),
        changed_by=updates.context["changed_by"].str,
        message_id=updates.message_id,
        seq=updates.seq,
    )
    return changes.filter(changes.purpose.notnull() & changes.granted.notnull())


def consent_state(
    changes: ir.Table,
    customers: ir.Table,
    purposes: Sequence[str],
    granted_by_default: Sequence[str],
) -> ir.Table:
    """Return customer_id and one boolean column per purpose (`consent_column`) per customer.

    `customers` has a `customer_id` column; each purpose holds the latest change, else its
    default.
    """
    known = changes.filter(changes.purpose.isin(list(purposes)))
    ranked = known.mutate(
        _rank=ibis.row_number().over(
            group_by=[known.customer_id, known.purpose],
            order_by=[known.changed_at.desc(), known.seq.desc()],
        )
    )
    latest = ranked.filter(ranked._rank == 0)
    answers = latest.group_by("customer_id").aggregate(
        **{f"_{consent_column(p)}": latest.granted.max(where=latest.purpose == p) for p in purposes}
    )
    ids = customers.select("customer_id").distinct()
    joined = ids.left_join(answers, ids.customer_id == answers.customer_id)
    return joined.select(
        customer_id=joined.customer_id,
        **{
            consent_column(p): joined[f"_{consent_column(p)}"].fill_null(p in granted_by_default)
            for p in purposes
        },
    )


def consent_snapshot(
    session: Session, purposes: Sequence[str], granted_by_default: Sequence[str]
) -> ir.Table:
    """Return every customer's consent now: one boolean column per purpose, and `withheld`.

    `withheld` is NULL for a customer who may be scored, else why not, e.g. "no consent:
    profiling". Consent is the latest in the ledger whatever date is scored: a withdrawal
    applies from the moment it is recorded.
    """
    stored, ids = session.table("events"), session.table("identifiers")
    events = events_with_customer(stored.filter(stored.event == CONSENT_EVENT), ids)
    state = consent_state(consent_changes(events), ids, purposes, granted_by_default)
    needed = [p for p in SCORING_PURPOSES if p in purposes]
    if not needed:
        return state.mutate(withheld=ibis.null("string"))
    missing = ibis.array(
        [ibis.ifelse(state[consent_column(p)], ibis.null("string"), p) for p in needed]
    )
    listed = missing.filter(lambda purpose: purpose.notnull()).join(", ")
    return state.mutate(
        withheld=ibis.ifelse(listed == "", ibis.null("string"), "no consent: " + listed)
    )


def personalised_only(session: Session, rows: ir.Table) -> ir.Table:
    """Return the `rows` (with `customer_id`) of customers who consented to personalisation.

    For lists that single customers out for individual treatment (top value, at risk, movers).
    Consent is as of the last scoring (`consent_snapshot`), the scores the lists are made of.
    """
    try:
        snapshot = session.table("consent_snapshot")
    except TrothError:
        return rows
    column = consent_column("personalisation")
    if column not in snapshot.columns:
        return rows  # the purpose is not configured: nothing to withdraw
    # A subquery, not a join: `rows` may itself be a join's projection.
    return rows.filter(rows.customer_id.isin(snapshot.filter(snapshot[column]).customer_id))


def withheld_reason(db: Database, customer_id: str) -> str | None:
    """Return why the last scoring withheld the customer's scores, or None if it did not."""
    with db.session() as session:
        try:
            snapshot = session.table("consent_snapshot")
        except TrothError:
            return None
        found = session.fetch(
            snapshot.filter(snapshot.customer_id == customer_id).select("withheld")
        )
    return found[0][0] if found else None


def customer_consent(
    db: Database,
    customer_id: str,
    purposes: Sequence[str],
    granted_by_default: Sequence[str],
) -> dict[str, Any]:
    """Return one customer's consent per purpose and the history of changes, newest first."""
    with db.session() as session:
        stored = session.table("events")
        events = events_with_customer(
            stored.filter(stored.event == CONSENT_EVENT), session.table("identifiers")
        )
        changes = consent_changes(events.filter(events.customer_id == customer_id))
        history = session.fetch_dicts(
            changes.order_by([changes.changed_at.desc(), changes.seq.desc()]).drop("seq")
        )
    current: dict[str, dict[str, Any]] = {}
    for purpose in purposes:
        latest = next((h for h in history if h["purpose"] == purpose), None)
        current[purpose] = {
            "granted": latest["granted"] if latest else purpose in granted_by_default,
            "since": latest["changed_at"].isoformat() if latest else None,
            "by_default": latest is None,
        }
    for change in history:
        change["changed_at"] = change["changed_at"].isoformat()
        change["known_purpose"] = change["purpose"] in purposes
    return {"purposes": current, "history": history}


def record_consent(
    db: Database,
    customer_id: str,
    purpose: str,
    granted: bool,
    *,
    purposes: Sequence[str],
    source: str,
    changed_by: str,
    at: datetime | None = None,
) -> str:
    """Store a `Consent Updated` event for the customer; return its messageId.

    `source` says how (e.g. "api", "portal"), `changed_by` who (a token id, "customer").
    The event is attributed to one of the customer's own identifiers seen in an event, so it
    resolves to them without renaming them: an identifier never seen (an alias's previousId read
    as the other kind) would rank first once seen and change the customer id.
    """
    if purpose not in purposes:
        raise ConsentError(f"unknown purpose '{purpose}'; choose one of {', '.join(purposes)}")
    with db.session() as session:
        ids = session.table("identifiers")
        rows = session.fetch(
            ids.filter(
                (ids.customer_id == customer_id)
                & ids.kind.isin(_EVENT_ID_KINDS)
                & ids.first_seen.notnull()
            )
            .select("kind", "value")
            .order_by([(ids.kind != "user_id"), ids.value])
            .limit(1)
        )
    if not rows:
        raise ConsentError(f"no customer '{customer_id}'")
    kind, value = rows[0]
    when = at or datetime.now(UTC)
    message_id = f"consent-{uuid.uuid4()}"
    values = {
        "message_id": message_id,
        "type": "track",
        "event": CONSENT_EVENT,
        "user_id": value if kind == "user_id" else None,
        "anonymous_id": value if kind != "user_id" else None,
        "timestamp": when,
        "received_at": when,
        "channel": source,
        "properties": json.dumps({"purpose": purpose, "granted": bool(granted)}),
        "context": json.dumps({"source": source, "changed_by": changed_by}),
    }
    cursor = db.cursor()  # own cursor: the caller may be a server thread beside the writer
    try:
        db.insert_events(
            rows_to_table([tuple(values.get(c) for c in EVENT_COLUMNS)], EVENT_SCHEMA), cursor
        )
    finally:
        cursor.close()
    return message_id
