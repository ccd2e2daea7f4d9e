"""Tombstones of erased people: keyed hashes that stop late events from re-creating them.

An erasure stores sha256(key || node) for each identifier node of the person (`user_id:42`,
`anonymous_id:a-9`, `email:ann@example.com`, `phone:+4915…`), the key being the random secret
`tombstone_key` in the `secrets` table (kept as its base64 text). Incoming events that carry a
tombstoned node are neither stored nor written to rejects, which would re-create the data,
except a `Consent Updated` event granting consent: the person came back and said yes, so it is
stored and lifts the tombstone of its own nodes. The table is usually empty, and every check
starts by asking whether it is.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb
import msgspec

from troth.events.schema import EVENT_COLUMNS

if TYPE_CHECKING:
    from troth.store.database import Database

__all__ = [
    "TOMBSTONE_KEY",
    "TombstoneFilter",
    "event_nodes",
    "forget_tombstones",
    "lift_tombstones",
    "node_hash",
    "tombstone_filter",
    "tombstone_key",
]

TOMBSTONE_KEY = "tombstone_key"
# The consent ledger's event (troth.privacy.consent, a layer above the store, names it too).
_CONSENT_EVENT = "Consent Updated"
_COL = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_CACHE = "tombstones"


def node_hash(key: str, node: str) -> str:
    """Return the tombstone of an identifier node: hex sha256 of key text then node text."""
    return hashlib.sha256((key + node).encode()).hexdigest()


def _trait(traits: dict, context: dict, name: str) -> str | None:
    """Return a trait from traits or context.traits, trimmed and lower-cased, as identity does."""
    value = traits.get(name)
    if value is None and isinstance(context.get("traits"), dict):
        value = context["traits"].get(name)
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


def _object(text: str | bytes | None) -> dict:
    """Return a JSON object's text decoded, or {} when it is absent or not an object."""
    if not text:
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def event_nodes(
    user_id: str | None,
    anonymous_id: str | None,
    previous_id: str | None,
    traits: dict,
    context: dict,
) -> list[str]:
    """Return the identifier nodes an event carries (previousId may be either kind)."""
    nodes = []
    if user_id:
        nodes.append(f"user_id:{user_id}")
    if anonymous_id:
        nodes.append(f"anonymous_id:{anonymous_id}")
    if previous_id:
        nodes += [f"user_id:{previous_id}", f"anonymous_id:{previous_id}"]
    email = _trait(traits, context, "email")
    if email:
        nodes.append(f"email:{email}")
    phone = _trait(traits, context, "phone")
    if phone and (digits := re.sub(r"[^0-9+]", "", phone)):
        nodes.append(f"phone:{digits}")
    return nodes


def _is_consent_grant(event: str | None, properties: dict) -> bool:
    """Return True for a `Consent Updated` event that grants consent (granted is JSON true)."""
    return event == _CONSENT_EVENT and properties.get("granted") is True


@dataclass(frozen=True)
class TombstoneFilter:
    """The tombstones of one database and their key: what incoming events must be dropped."""

    key: str
    hashes: frozenset[str]

    def _hits(self, nodes: Iterable[str]) -> list[str]:
        """Return the hashes of `nodes` that are tombstoned."""
        return [h for h in (node_hash(self.key, n) for n in nodes) if h in self.hashes]

    def split(self, rows: Sequence[tuple]) -> tuple[list[tuple], int, set[str]]:
        """Return (rows to store, rows suppressed, tombstones the stored re-consents lift).

        Rows are EVENT_SCHEMA tuples.
        """
        kept, suppressed, lifted = [], 0, set()
        for row in rows:
            context = _object(row[_COL["context"]])
            nodes = event_nodes(
                row[_COL["user_id"]],
                row[_COL["anonymous_id"]],
                row[_COL["previous_id"]],
                _object(row[_COL["traits"]]),
                context,
            )
            hits = self._hits(nodes)
            if not hits:
                kept.append(row)
            elif _is_consent_grant(row[_COL["event"]], _object(row[_COL["properties"]])):
                kept.append(row)
                lifted.update(hits)
            else:
                suppressed += 1
        return kept, suppressed, lifted

    def suppresses_payload(self, payload: str | bytes | None) -> bool:
        """Return True if a refused call's text names a tombstoned identifier (not kept)."""
        call = _object(payload)
        if not call:
            return False

        def text(name: str) -> str | None:
            value = call.get(name)
            return str(value) if isinstance(value, str | int) and value != "" else None

        traits = call.get("traits") if isinstance(call.get("traits"), dict) else {}
        context = call.get("context") if isinstance(call.get("context"), dict) else {}
        nodes = event_nodes(
            text("userId"), text("anonymousId"), text("previousId"), traits, context
        )
        return bool(self._hits(nodes))


def tombstone_filter(db: Database, cursor: duckdb.DuckDBPyConnection) -> TombstoneFilter | None:
    """Return the database's tombstones (cached on `db`), or None when there are none."""
    cached = db.cache.get(_CACHE)
    if cached is None:
        hashes = frozenset(
            r[0] for r in cursor.execute("SELECT node_hash FROM tombstones").fetchall()
        )
        key_row = cursor.execute(
            "SELECT value FROM secrets WHERE name = ?", [TOMBSTONE_KEY]
        ).fetchone()
        cached = TombstoneFilter(key_row[0], hashes) if hashes and key_row else False
        db.cache[_CACHE] = cached
    return cached or None


def lift_tombstones(db: Database, cursor: duckdb.DuckDBPyConnection, hashes: Iterable[str]) -> None:
    """Delete tombstones (a re-consent brought the person back) and forget the cached set."""
    hashes = list(hashes)
    if hashes:
        cursor.execute("DELETE FROM tombstones WHERE node_hash IN (SELECT unnest(?))", [hashes])
        forget_tombstones(db)


def forget_tombstones(db: Database) -> None:
    """Drop the cached tombstones of `db` after they changed."""
    db.cache.pop(_CACHE, None)


def tombstone_key(db: Database) -> str:
    """Return the tombstone key's text, creating a random one (32 bytes, base64) the first time."""
    cur = db.cursor()
    try:
        cur.execute(
            "INSERT INTO secrets VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            [
                TOMBSTONE_KEY,
                base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii"),
                datetime.now(UTC),
            ],
        )
        row = cur.execute("SELECT value FROM secrets WHERE name = ?", [TOMBSTONE_KEY]).fetchone()
    finally:
        cur.close()
    return str(row[0])
