"""The read API under /api/v1: bearer tokens with roles, JSON answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["Forbidden", "Principal", "admin", "person_reader", "principal", "role", "router"]

router = APIRouter(prefix="/api/v1")
_bearer = HTTPBearer(auto_error=False)

# Roles that may read one person's data; a viewer sees aggregates only.
_PERSON_ROLES = frozenset({"admin", "analyst"})


class Forbidden(Exception):
    """The token is valid but its role may not do this."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the bearer token's id (the audit log's actor) and its role."""

    token_id: str
    role: str


def principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """Return the caller of the request's bearer token (also read from the sign-in cookie)."""
    token = credentials.credentials if credentials is not None else None
    if token is None:
        token = request.cookies.get("troth_token")
    return Principal(*request.app.state.troth.engine.principal_for_token(token))


def role(who: Principal = Depends(principal)) -> str:
    """Return the role of the request's bearer token."""
    return who.role


def person_reader(who: Principal = Depends(principal)) -> str:
    """Return the role if it may read individual customers, else raise Forbidden."""
    if who.role not in _PERSON_ROLES:
        raise Forbidden(f"role '{who.role}' sees aggregates only; customer data needs analyst")
    return who.role


def admin(who: Principal = Depends(principal)) -> Principal:
    """Return the caller if their role is admin (export, erase, keys, consent overrides)."""
    if who.role != "admin":
        raise Forbidden(f"role '{who.role}' may not do this; it needs an admin token")
    return who


@router.get("/customers/{identifier}")
def get_customer(
    identifier: str,
    request: Request,
    _role: str = Depends(person_reader),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Return the customer holding `identifier`: ids, traits, event counts, first/last seen."""
    engine = request.app.state.troth.engine
    profile = engine.customer(identifier)
    engine.audit(who.token_id, "customer.read", profile["customer_id"])
    return profile


@router.get("/customers")
def get_customers(
    request: Request,
    stage: str | None = None,
    phase: str | None = None,
    cognitive_loyalty: bool = False,
    rung: str | None = None,
    moved_from: str | None = None,
    moved_to: str | None = None,
    at_risk: bool = False,
    sort: str = "revenue",
    limit: int = 50,
    offset: int = 0,
    _role: str = Depends(person_reader),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Return one page of customers from the last scoring: total and rows.

    `rung` (reached at least), `moved_from`/`moved_to` (the last move) and `at_risk` select
    the customers behind the ladder's, the transitions' and the value's counts.
    """
    engine = request.app.state.troth.engine
    page = engine.customers(
        stage=stage,
        phase=phase,
        cognitive_loyalty=cognitive_loyalty,
        rung=rung,
        moved_from=moved_from,
        moved_to=moved_to,
        at_risk=at_risk,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    _audit_list(request, who, f"customers sort={sort} offset={offset}", len(page["customers"]))
    return page


@router.get("/stages")
def get_stages(request: Request, _role: str = Depends(role)) -> dict[str, Any]:
    """Return customers by stage and phase from the last scoring (aggregates: any role)."""
    return request.app.state.troth.engine.stage_distribution()


@router.get("/transitions")
def get_transitions(request: Request, _role: str = Depends(role)) -> dict[str, Any]:
    """Return stage transition matrices, inflow/outflow per stage and cohort flows per period."""
    return request.app.state.troth.engine.transitions()


@router.get("/ladder")
def get_ladder(request: Request, _role: str = Depends(role)) -> dict[str, Any]:
    """Return the ladder's counts per rung and conversions: overall, by segment, by channel."""
    return request.app.state.troth.engine.ladder()


@router.get("/value")
def get_value(
    request: Request, top: int = Query(10, ge=0, le=1000), who: Principal = Depends(principal)
) -> dict[str, Any]:
    """Return the value models' fits and the CLV/CEV distribution; with a role that may read
    customers, also the `top` customers by CEV and the `top` most valuable at-risk customers."""
    shown = top if who.role in _PERSON_ROLES else 0
    overview = request.app.state.troth.engine.value(shown)
    if shown:
        _audit_list(request, who, f"value top={shown}", shown)
    return overview


@router.get("/value/at-risk")
def get_at_risk(
    request: Request,
    limit: int = Query(50, ge=1, le=10_000),
    _role: str = Depends(person_reader),
    who: Principal = Depends(principal),
) -> list[dict[str, Any]]:
    """Return at-risk customers (low P(alive), high CLV if alive), most value at stake first."""
    rows = request.app.state.troth.engine.at_risk(limit)
    _audit_list(request, who, "at-risk", len(rows))
    return rows


@router.get("/contacts/{channel}")
def get_contacts(
    channel: str,
    request: Request,
    stage: str | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    _role: str = Depends(person_reader),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Return who may be contacted on `channel` now (consent to marketing:<channel> and an
    address), one page: channel, purpose, total and contacts (customer_id, address, stage)."""
    return request.app.state.troth.engine.contacts(
        channel, who.token_id, stage, limit=limit, offset=offset
    )


def _audit_list(request: Request, who: Principal, what: str, rows: int) -> None:
    """Record one audit entry for a list of customers (one per request, not per row)."""
    request.app.state.troth.engine.audit(
        who.token_id, "customer.list", None, f"{what}: {rows} rows"
    )


@router.get("/summary")
def get_summary(request: Request, _role: str = Depends(role)) -> dict[str, Any]:
    """Return store-wide counts: customers, events by name and channel, merges, rejects."""
    return request.app.state.troth.engine.summary()
