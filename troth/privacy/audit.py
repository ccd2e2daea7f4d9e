"""The audit log: who read or changed personal data, keys or consent, and when.

Each entry names the actor (a token id such as `tok_…` for the API, `cli` for the command
line, `customer` for the portal), the action, the customer concerned if any, and a short
detail. Entries are only appended; an erasure replaces the erased customer's id in earlier
entries by a keyed hash, so the log still shows that something happened to someone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from troth.errors import TrothError
from troth.store import Database

__all__ = ["ACTIONS", "audit", "audit_entries"]

ACTIONS = (
    "customer.read",
    "customer.list",
    "customer.export",
    "customer.erase",
    "consent.change",
    "key.create",
    "key.revoke",
    "portal.link",
    "portal.view",
    "portal.rotate",
    "contacts.export",
)


def audit(
    db: Database,
    actor: str,
    action: str,
    customer_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry to the audit log."""
    if action not in ACTIONS:
        raise TrothError(f"unknown audit action '{action}'")
    row = {
        "logged_at": datetime.now(UTC),
        "actor": actor,
        "action": action,
        "customer_id": customer_id,
        "detail": detail,
    }
    with db.session() as session:
        session.insert_rows("audit_log", [row])


def audit_entries(
    db: Database, customer_id: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """Return {"total", "entries"}: audit entries, newest first, optionally of one customer."""
    if limit < 1 or offset < 0:
        raise TrothError("limit must be at least 1 and offset at least 0")
    with db.session() as session:
        log = session.table("audit_log")
        if customer_id is not None:
            log = log.filter(log.customer_id == customer_id)
        total = int(session.scalar(log.count()))
        rows = session.fetch_dicts(
            log.order_by([log.logged_at.desc(), log.action]).limit(limit, offset=offset)
        )
    for row in rows:
        row["logged_at"] = row["logged_at"].isoformat()
    return {"total": total, "entries": rows}
