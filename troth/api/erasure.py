"""DELETE /api/v1/customers/{id}: erasure through the API, and the gate that makes it safe.

An erasure rewrites the database file and reopens it, so while it runs no request may use the
database: `ShareDatabase` gives every other request a share of the `DatabaseGate`, and an
erasure request takes the gate alone (its token check included) once those shares are back.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from troth.api.read import Principal, admin
from troth.api.state import DatabaseGate

__all__ = ["ShareDatabase", "router"]

router = APIRouter(prefix="/api/v1")


class ShareDatabase:
    """ASGI middleware: a DELETE has the database alone, any other request holds a share."""

    def __init__(self, app: ASGIApp, gate: DatabaseGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside the gate (HTTP only; lifespan passes straight through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hold = self.gate.exclusive if scope["method"] == "DELETE" else self.gate.shared
        async with hold():
            await self.app(scope, receive, send)


@router.delete("/customers/{identifier}", responses={401: {}, 403: {}, 404: {}})
async def delete_customer(
    identifier: str, request: Request, who: Principal = Depends(admin)
) -> dict[str, Any]:
    """Erase the customer holding `identifier` (admin only); return what was removed."""
    state = request.app.state.troth
    summary = await run_in_threadpool(state.erase, identifier, who.token_id)
    return dataclasses.asdict(summary)
