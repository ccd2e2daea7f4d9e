"""Write keys and bearer tokens: how they look, how they are hashed, which roles exist.

Only a SHA-256 hash of each secret is stored, so a copy of the database does not leak keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ROLES", "Credential", "hash_secret", "new_token", "new_write_key"]

ROLES = ("admin", "analyst", "viewer")
WRITE_KEY_PREFIX = "twk_"
TOKEN_PREFIX = "ttk_"


@dataclass(frozen=True)
class Credential:
    """A stored write key (kind 'write_key', with its source) or bearer token (kind 'token')."""

    id: str
    kind: str
    label: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Return True while the credential has not been revoked."""
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    """Return the hex SHA-256 of a key or token, as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_write_key() -> tuple[str, str]:
    """Return (id, secret) of a new source write key."""
    return "src_" + secrets.token_hex(6), WRITE_KEY_PREFIX + secrets.token_urlsafe(24)


def new_token(role: str) -> tuple[str, str]:
    """Return (id, secret) of a new bearer token for `role`; raise ValueError on unknown roles."""
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}'; choose one of {', '.join(ROLES)}")
    return "tok_" + secrets.token_hex(6), TOKEN_PREFIX + secrets.token_urlsafe(24)
