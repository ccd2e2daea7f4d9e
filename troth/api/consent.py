"""Consent under /api/v1: read a customer's consent, override it (admin), issue portal links."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StrictBool

from troth.api.read import Principal, admin, person_reader, principal

__all__ = ["ConsentOverride", "PortalLinkRequest", "router"]

router = APIRouter(prefix="/api/v1")


class ConsentOverride(BaseModel):
    """One purpose set for the customer, and why (kept in the audit log)."""

    purpose: str = Field(..., max_length=100, description="A purpose of [privacy] purposes.")
    granted: StrictBool = Field(..., description="true: consent given; false: withdrawn.")
    reason: str | None = Field(
        None, max_length=500, description="Why, e.g. 'customer asked by phone on 3 March'."
    )


class PortalLinkRequest(BaseModel):
    """How long the link stays valid."""

    hours: int | None = Field(
        None, ge=1, le=24 * 90, description="Hours (default [privacy] portal_link_hours)."
    )


@router.get("/customers/{identifier}/consent")
def get_consent(
    identifier: str,
    request: Request,
    _role: str = Depends(person_reader),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Return the customer's consent per purpose and its history, newest first."""
    return request.app.state.troth.engine.consent(identifier, who.token_id)


@router.post("/customers/{identifier}/consent")
def set_consent(
    identifier: str, body: ConsentOverride, request: Request, who: Principal = Depends(admin)
) -> dict[str, Any]:
    """Set one purpose for the customer (an admin override, recorded with source 'admin' and
    the token id); return the change made (none if it already held) and every purpose now."""
    return request.app.state.troth.engine.change_consent(
        identifier,
        body.purpose,
        body.granted,
        source="admin",
        actor=who.token_id,
        reason=body.reason,
    )


@router.post("/customers/{identifier}/portal-link")
def create_portal_link(
    identifier: str,
    request: Request,
    body: PortalLinkRequest | None = None,
    who: Principal = Depends(admin),
) -> dict[str, Any]:
    """Return a signed link to the customer's portal page: url, token, customer id, expiry."""
    hours = body.hours if body is not None else None
    return request.app.state.troth.engine.portal_link(
        identifier, who.token_id, hours, base_url=str(request.base_url)
    )
