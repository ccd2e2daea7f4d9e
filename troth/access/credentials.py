"""Stored write keys and bearer tokens: create, list, revoke, authenticate (hashes only)."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis

from troth.access.keys import Credential, hash_secret, new_token, new_write_key
from troth.errors import AuthenticationError
from troth.store import Database

__all__ = [
    "authenticate_token",
    "authenticate_write_key",
    "create_token",
    "create_write_key",
    "list_credentials",
    "revoke_credential",
]

# (table, id column, hash column, label column, prefix column, kind)
_KINDS = (
    ("sources", "source_id", "key_hash", "name", "key_prefix", "write_key"),
    ("api_tokens", "token_id", "token_hash", "role", "token_prefix", "token"),
)


def create_write_key(db: Database, source_name: str) -> tuple[str, str]:
    """Store a new write key for source `source_name`; return (source id, the key)."""
    if not source_name.strip():
        raise ValueError("a source needs a name, e.g. --source website")
    source_id, key = new_write_key()
    row = {
        "source_id": source_id,
        "name": source_name,
        "key_hash": hash_secret(key),
        "key_prefix": key[:8],
        "created_at": datetime.now(UTC),
    }
    with db.session() as session:
        session.insert_rows("sources", [row])
    return source_id, key


def create_token(db: Database, role: str) -> tuple[str, str]:
    """Store a new bearer token with `role`; return (token id, the token)."""
    token_id, token = new_token(role)
    row = {
        "token_id": token_id,
        "role": role,
        "token_hash": hash_secret(token),
        "token_prefix": token[:8],
        "created_at": datetime.now(UTC),
    }
    with db.session() as session:
        session.insert_rows("api_tokens", [row])
    return token_id, token


def list_credentials(db: Database) -> list[Credential]:
    """Return every write key and token, oldest first (secrets are never stored or shown)."""
    with db.session() as session:
        parts = []
        for table, id_col, _hash, label, prefix, kind in _KINDS:
            t = session.table(table)
            parts.append(
                t.select(
                    id=t[id_col],
                    kind=ibis.literal(kind),
                    label=t[label],
                    prefix=t[prefix],
                    created_at=t.created_at,
                    revoked_at=t.revoked_at,
                )
            )
        rows = session.fetch(ibis.union(*parts).order_by(["created_at", "id"]))
    return [Credential(*row) for row in rows]


def revoke_credential(db: Database, key_or_id: str) -> Credential:
    """Revoke the write key or token given by its id or its secret; return it, or raise KeyError."""
    digest = hash_secret(key_or_id)
    with db.session() as session:
        for table, id_col, hash_col, *_ in _KINDS:
            t = session.table(table)
            match = t.filter((t[id_col] == key_or_id) | (t[hash_col] == digest))
            found = session.fetch(match.select(id_col, "revoked_at"))
            if found:
                credential_id, revoked_at = found[0]
                if revoked_at is None:
                    session.update_where(
                        table, {"revoked_at": datetime.now(UTC)}, id_col, credential_id
                    )
                break
        else:
            raise KeyError(f"no write key or token has the id or value '{key_or_id[:12]}'")
    return next(c for c in list_credentials(db) if c.id == credential_id)


def _authenticate(db: Database, secret: str, kind: int, what: str) -> tuple[str, str]:
    """Return (id, label) of an active write key or token, or raise AuthenticationError."""
    table, id_col, hash_col, label, *_ = _KINDS[kind]
    with db.session() as session:
        t = session.table(table)
        found = session.fetch(
            t.filter(t[hash_col] == hash_secret(secret)).select(t[id_col], t[label], t.revoked_at)
        )
    if not found:
        raise AuthenticationError(f"unknown {what}")
    if found[0][2] is not None:
        raise AuthenticationError(f"this {what} has been revoked")
    return str(found[0][0]), str(found[0][1])


def authenticate_write_key(db: Database, key: str | None) -> str:
    """Return the source id of an active write key, or raise AuthenticationError."""
    if not key:
        raise AuthenticationError(
            "missing write key: send it as the HTTP Basic user name or as writeKey in the body"
        )
    return _authenticate(db, key, 0, "write key")[0]


def authenticate_token(db: Database, token: str | None) -> tuple[str, str]:
    """Return (token id, role) of an active bearer token, or raise AuthenticationError."""
    if not token:
        raise AuthenticationError("missing bearer token: send 'Authorization: Bearer <token>'")
    return _authenticate(db, token, 1, "bearer token")
