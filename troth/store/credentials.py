"""Stored write keys and bearer tokens (hashes only)."""

from __future__ import annotations

from datetime import UTC, datetime

from troth.access.keys import Credential, hash_secret, new_token, new_write_key
from troth.errors import AuthenticationError
from troth.store.database import Database

__all__ = [
    "authenticate_token",
    "authenticate_write_key",
    "create_token",
    "create_write_key",
    "list_credentials",
    "revoke_credential",
]


def create_write_key(db: Database, source_name: str) -> tuple[str, str]:
    """Store a new write key for source `source_name`; return (source id, the key)."""
    if not source_name.strip():
        raise ValueError("a source needs a name, e.g. --source website")
    source_id, key = new_write_key()
    db.connection.execute(
        "INSERT INTO sources VALUES (?, ?, ?, ?, ?, NULL)",
        [source_id, source_name, hash_secret(key), key[:8], datetime.now(UTC)],
    )
    return source_id, key


def create_token(db: Database, role: str) -> tuple[str, str]:
    """Store a new bearer token with `role`; return (token id, the token)."""
    token_id, token = new_token(role)
    db.connection.execute(
        "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL)",
        [token_id, role, hash_secret(token), token[:8], datetime.now(UTC)],
    )
    return token_id, token


def list_credentials(db: Database) -> list[Credential]:
    """Return every write key and token, oldest first (secrets are never stored or shown)."""
    rows = (
        db.cursor()
        .execute(
            "SELECT source_id, 'write_key', name, key_prefix, created_at, revoked_at FROM sources "
            "UNION ALL SELECT token_id, 'token', role, token_prefix, created_at, revoked_at "
            "FROM api_tokens ORDER BY created_at"
        )
        .fetchall()
    )
    return [Credential(*row) for row in rows]


def revoke_credential(db: Database, key_or_id: str) -> Credential:
    """Revoke the write key or token given by its id or its secret; return it, or raise KeyError."""
    cur = db.cursor()
    digest = hash_secret(key_or_id)
    for table, id_col, hash_col in _TABLES:
        row = cur.execute(
            f"SELECT {id_col} FROM {table} WHERE {id_col} = ? OR {hash_col} = ?",
            [key_or_id, digest],
        ).fetchone()
        if row is not None:
            cur.execute(
                f"UPDATE {table} SET revoked_at = coalesce(revoked_at, ?) WHERE {id_col} = ?",
                [datetime.now(UTC), row[0]],
            )
            return next(c for c in list_credentials(db) if c.id == row[0])
    raise KeyError(f"no write key or token has the id or value '{key_or_id[:12]}'")


_TABLES = (("sources", "source_id", "key_hash"), ("api_tokens", "token_id", "token_hash"))


def authenticate_write_key(db: Database, key: str | None) -> str:
    """Return the source id of an active write key, or raise AuthenticationError."""
    if not key:
        raise AuthenticationError(
            "missing write key: send it as the HTTP Basic user name or as writeKey in the body"
        )
    row = (
        db.cursor()
        .execute("SELECT source_id, revoked_at FROM sources WHERE key_hash = ?", [hash_secret(key)])
        .fetchone()
    )
    if row is None:
        raise AuthenticationError("unknown write key")
    if row[1] is not None:
        raise AuthenticationError("this write key has been revoked")
    return str(row[0])


def authenticate_token(db: Database, token: str | None) -> str:
    """Return the role of an active bearer token, or raise AuthenticationError."""
    if not token:
        raise AuthenticationError("missing bearer token: send 'Authorization: Bearer <token>'")
    row = (
        db.cursor()
        .execute(
            "SELECT role, revoked_at FROM api_tokens WHERE token_hash = ?", [hash_secret(token)]
        )
        .fetchone()
    )
    if row is None:
        raise AuthenticationError("unknown bearer token")
    if row[1] is not None:
        raise AuthenticationError("this bearer token has been revoked")
    return str(row[0])
