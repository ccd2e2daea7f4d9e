"""Admin endpoints under /api/v1: a person's export, the audit log, bearer tokens and write keys."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from troth.access.keys import ROLES
from troth.api.read import Principal, admin
from troth.errors import TrothError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

# Exports up to this size stay in memory; larger ones spill to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class CredentialRequest(BaseModel):
    """What to create: a bearer token with `role`, or a write key for the source `source`."""

    role: str | None = Field(None, description=f"One of {', '.join(ROLES)}: a bearer token.")
    source: str | None = Field(None, max_length=200, description="A source name: a write key.")

    @model_validator(mode="after")
    def _one_of(self) -> CredentialRequest:
        if (self.role is None) == (self.source is None):
            raise ValueError("give exactly one of role (bearer token) or source (write key)")
        if self.role is not None and self.role not in ROLES:
            raise ValueError(f"unknown role '{self.role}'; choose one of {', '.join(ROLES)}")
        return self


class CredentialNotFound(TrothError):
    """No write key or token has the id given."""


@router.get("/customers/{identifier}/export")
def export_customer(
    identifier: str, request: Request, who: Principal = Depends(admin)
) -> StreamingResponse:
    """Return everything held about the person as one JSON document (GDPR Art. 15/20)."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - the answer closes it
    try:
        # Written in full before answering: a missing customer is a 404, not a broken stream,
        # and the database cursor stays on this thread.
        customer_id, size = request.app.state.troth.engine.export(identifier, spool, who.token_id)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return StreamingResponse(
        _chunks(spool),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="troth-export-{customer_id}.json"',
            "Content-Length": str(size),
        },
    )


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(_CHUNK_BYTES):
            yield chunk


@router.get("/audit")
def get_audit(
    request: Request,
    customer: str | None = Query(None, max_length=1000),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    _who: Principal = Depends(admin),
) -> dict[str, Any]:
    """Return audit entries (who read or changed what, when), newest first: total and entries."""
    return request.app.state.troth.engine.audit_log(customer, limit=limit, offset=offset)


@router.get("/tokens")
def list_tokens(request: Request, _who: Principal = Depends(admin)) -> list[dict[str, Any]]:
    """Return every bearer token and write key: id, kind, role or source, dates; no secrets."""
    return [
        {
            "id": c.id,
            "kind": c.kind,
            "role" if c.kind == "token" else "source": c.label,
            "prefix": c.prefix,
            "created_at": c.created_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        }
        for c in request.app.state.troth.engine.credentials()
    ]


@router.post("/tokens", status_code=201)
def create_token(
    body: CredentialRequest, request: Request, who: Principal = Depends(admin)
) -> dict[str, str]:
    """Create a bearer token (`role`) or write key (`source`); the secret is shown only here."""
    engine = request.app.state.troth.engine
    if body.role is not None:
        token_id, secret = engine.create_token(body.role, actor=who.token_id)
        return {"id": token_id, "kind": "token", "role": body.role, "key": secret}
    source_id, secret = engine.create_write_key(body.source, actor=who.token_id)
    return {"id": source_id, "kind": "write_key", "source": body.source, "key": secret}


@router.delete("/tokens/{credential_id}")
def revoke_token(
    credential_id: str, request: Request, who: Principal = Depends(admin)
) -> dict[str, Any]:
    """Revoke a bearer token or write key by id; requests using it get 401 from then on."""
    engine = request.app.state.troth.engine
    # Ids only: a secret in a URL ends up in logs.
    if not any(c.id == credential_id for c in engine.credentials()):
        raise CredentialNotFound(f"no token or write key has the id '{credential_id[:40]}'")
    credential = engine.revoke(credential_id, actor=who.token_id)
    return {
        "id": credential.id,
        "kind": credential.kind,
        "revoked_at": credential.revoked_at.isoformat() if credential.revoked_at else None,
    }
