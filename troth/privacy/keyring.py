"""Secret keys Troth keeps in its own database: created on first use, replaced on rotation.

A key lives in the `secrets` table under a name (e.g. `portal_key` signs customer portal
links). Keeping it in the database, not the config file, means a copied config never leaks
it and an erased database takes it along; rotating it invalidates everything it signed.
"""

from __future__ import annotations

import base64
import secrets
import threading
from datetime import UTC, datetime

from troth.store import Database, Session

__all__ = ["rotate_secret_key", "secret_key"]

_KEY_BYTES = 32
# Server threads may ask for a key that does not exist yet at the same moment: one creates it.
_creating = threading.Lock()


def _stored(session: Session, name: str) -> bytes | None:
    """Return the stored key `name`, or None."""
    table = session.table("secrets")
    value = session.scalar(table.filter(table.name == name).select("value"))
    return None if value is None else base64.urlsafe_b64decode(value)


def secret_key(db: Database, name: str) -> bytes:
    """Return the 32-byte key `name`, creating a random one the first time it is asked for."""
    with db.session() as session:
        key = _stored(session, name)
        if key is not None:
            return key
        with _creating:
            key = _stored(session, name)
            if key is None:
                key = secrets.token_bytes(_KEY_BYTES)
                session.insert_rows("secrets", [_row(name, key)])
    return key


def rotate_secret_key(db: Database, name: str) -> None:
    """Replace the key `name` by a new random one (whatever the old one signed stops verifying)."""
    key = secrets.token_bytes(_KEY_BYTES)
    with db.session() as session, _creating:
        if _stored(session, name) is None:
            session.insert_rows("secrets", [_row(name, key)])
        else:
            row = _row(name, key)
            session.update_where(
                "secrets", {"value": row["value"], "created_at": row["created_at"]}, "name", name
            )


def _row(name: str, key: bytes) -> dict[str, object]:
    """Return the `secrets` row holding `key`."""
    return {
        "name": name,
        "value": base64.urlsafe_b64encode(key).decode("ascii"),
        "created_at": datetime.now(UTC),
    }
