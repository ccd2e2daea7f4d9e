"""Contact lists per channel: who may be contacted for marketing on a channel, right now.

A customer is on the list for channel C only while their consent to `marketing:C` holds (their
latest answer, else the purpose's default, read from the ledger at the moment the list is
made, so a withdrawal counts at once) and Troth knows an address for C: the latest email trait
for `email`, the latest phone trait for `sms` and `call`, and a user id (the app's signed-in
user) for `push`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow.csv as pacsv

from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.privacy.consent import CONSENT_EVENT, consent_changes, consent_column, consent_state
from troth.store import Database, Session
from troth.store.written_files import create_private_file, record_written_file

__all__ = ["CHANNEL_ADDRESS", "ContactError", "contact_list", "write_contact_file"]

# Where each channel's address comes from: a trait of the customer's events, or an identifier.
CHANNEL_ADDRESS = {"email": "email", "sms": "phone", "call": "phone", "push": "user_id"}


class ContactError(TrothError, ValueError):
    """A contact list was asked for an unknown channel or stage."""


def contact_list(
    session: Session,
    channel: str,
    purposes: Sequence[str],
    granted_by_default: Sequence[str],
    stage: str | None = None,
) -> ir.Table:
    """Return customer_id, address and stage of the customers who may be contacted on `channel`.

    `stage` keeps those at that stage in the last scoring (customers without scores have none).
    Ordered by customer id, so pages are stable.
    """
    purpose = f"marketing:{channel}"
    if channel not in CHANNEL_ADDRESS or purpose not in purposes:
        known = [c for c in CHANNEL_ADDRESS if f"marketing:{c}" in purposes]
        raise ContactError(f"unknown channel '{channel}'; choose one of {', '.join(known)}")
    events, ids = session.table("events"), session.table("identifiers")
    updates = events_with_customer(events.filter(events.event == CONSENT_EVENT), ids)
    consent = consent_state(consent_changes(updates), ids, [purpose], granted_by_default)
    allowed = consent.filter(consent[consent_column(purpose)]).select("customer_id")
    addresses = _addresses(events, ids, CHANNEL_ADDRESS[channel])
    eligible = addresses.semi_join(allowed, "customer_id")
    stages = _stages(session)
    listed = eligible.left_join(stages, "customer_id").select(
        "customer_id", "address", stages.stage
    )
    if stage is not None:
        listed = listed.filter(listed.stage == stage)
    return listed.order_by("customer_id")


def _addresses(events: ir.Table, ids: ir.Table, field: str) -> ir.Table:
    """Return customer_id and their latest address of kind `field` (a trait or user_id)."""
    if field == "user_id":
        users = ids.filter(ids.kind == "user_id")
        ranked = users.mutate(
            _rank=ibis.row_number().over(
                group_by=users.customer_id,
                order_by=[users.last_seen.desc(nulls_first=False), users.value],
            )
        )
        return ranked.filter(ranked._rank == 0).select("customer_id", address=ranked.value)
    carrying = events.filter(events.traits[field].str.strip().nullif("").notnull())
    owned = events_with_customer(carrying, ids)
    ranked = owned.mutate(
        address=owned.traits[field].str.strip(),
        _rank=ibis.row_number().over(
            group_by=owned.customer_id, order_by=[owned.timestamp.desc(), owned.seq.desc()]
        ),
    )
    return ranked.filter(ranked._rank == 0).select("customer_id", "address")


def _stages(session: Session) -> ir.Table:
    """Return customer_id and stage of the last scoring (empty before any scoring)."""
    try:
        stages = session.table("customer_stage")
    except TrothError:
        return ibis.memtable(
            {"customer_id": [], "stage": []}, schema={"customer_id": "string", "stage": "string"}
        )
    return stages.select("customer_id", "stage")


def write_contact_file(
    db: Database,
    channel: str,
    path: Path,
    purposes: Sequence[str],
    granted_by_default: Sequence[str],
    stage: str | None = None,
) -> int:
    """Write the contact list of `channel` as CSV to a new owner-only file; return its rows.

    The file is recorded among the files Troth wrote, so erasing a person scrubs them from it.
    """
    with db.session() as session:
        rows = session.fetch_arrow(
            contact_list(session, channel, purposes, granted_by_default, stage)
        )
    fd = create_private_file(path)
    try:
        with os.fdopen(fd, "wb") as out:
            pacsv.write_csv(rows, out)
    except BaseException:
        path.expanduser().unlink(missing_ok=True)
        raise
    record_written_file(db, path, "contacts")
    return rows.num_rows
