"""The customer portal: the HTML page a signed link opens, and its JSON twin.

The link token in the path is the only credential, so the page is built to keep it and the
person's data in: no script at all, a Content-Security-Policy allowing only this app's own
stylesheet and form target, no Referer sent onwards, no caching. Every value is escaped by
the template engine (autoescape), whatever a trait holds.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader
from pydantic import BaseModel, Field, StrictBool

from troth.errors import TrothError
from troth.privacy.consent import ConsentError
from troth.privacy.portal import InvalidPortalForm, InvalidPortalLink

__all__ = ["CONTENT_SECURITY_POLICY", "PortalChoices", "router"]

router = APIRouter()

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The link is a credential: no page it leads to may see it, no cache may keep the page.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
# What the visitor is told about a refused link, whatever the reason (logged, not shown).
_INVALID = "this link is not valid or has expired"
_MAX_FORM_BYTES = 64 * 1024
_STYLESHEET = resources.files("troth.api").joinpath("static/portal.css").read_bytes()

_IDENTIFIER_KINDS = {
    "user_id": "Account id",
    "anonymous_id": "Device or browser id",
    "email": "Email address",
    "phone": "Phone number",
}


class PortalChoices(BaseModel):
    """The customer's choices: each purpose switched on (true) or off (false)."""

    consents: dict[str, StrictBool] = Field(
        ..., description='Purposes to set, e.g. {"marketing:email": false}.'
    )


def _day(value: str | None) -> str:
    """Return an ISO-8601 time as a date such as '1 March 2026'."""
    if not value:
        return "unknown"
    when = datetime.fromisoformat(value)
    return f"{when.day} {when:%B %Y}"


def _plain(value: Any) -> str:
    """Return a trait value as text: yes/no for booleans, JSON for lists and objects."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _money(value: Any) -> str:
    """Return an amount with two decimals and thousands separators."""
    return "unknown" if value is None else f"{float(value):,.2f}"


def purpose_label(purpose: str) -> str:
    """Return a purpose as a heading: 'marketing:email' → 'Marketing by email'."""
    area, _, channel = purpose.partition(":")
    label = area.replace("_", " ").capitalize()
    return f"{label} by {channel.replace('_', ' ')}" if channel else label


_templates = Environment(
    loader=PackageLoader("troth.api", "templates"), autoescape=True, auto_reload=False
)
_templates.filters.update(
    day=_day,
    plain=_plain,
    money=_money,
    identifier_kind=lambda kind: _IDENTIFIER_KINDS.get(kind, kind),
    purpose_label=purpose_label,
)


def _page(status: int = 200, **context: Any) -> HTMLResponse:
    """Return the portal page rendered with `context`, with the portal's security headers."""
    context.setdefault("invalid", False)
    context.setdefault("saved", None)
    context.setdefault("error", None)
    html = _templates.get_template("portal.html").render(**context)
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _refused() -> HTMLResponse:
    """Return the generic page for a refused link (the reason stays out of the page)."""
    return _page(403, invalid=True)


async def _form(request: Request) -> dict[str, list[str]]:
    """Return the posted form fields (application/x-www-form-urlencoded), each a list."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_FORM_BYTES:
        raise TrothError("the form is too large")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise TrothError("the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=500)


@router.get("/portal/assets/portal.css", include_in_schema=False)
def stylesheet() -> Response:
    """Return the portal's stylesheet."""
    return Response(
        _STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/portal/{token}", response_class=HTMLResponse, include_in_schema=False)
def portal_page(token: str, request: Request) -> HTMLResponse:
    """Return the portal page of a signed link: data held, scores, a switch per purpose."""
    engine = request.app.state.troth.engine
    try:
        view = engine.portal_view(token)
    except InvalidPortalLink:
        return _refused()
    return _page(view=view, token=token, form_token=engine.portal_form_token(token))


@router.post("/portal/{token}", response_class=HTMLResponse, include_in_schema=False)
def portal_save(
    token: str, request: Request, form: dict[str, list[str]] = Depends(_form)
) -> HTMLResponse:
    """Record the purposes switched on the page (a form post); return the page confirming it."""
    engine = request.app.state.troth.engine
    try:
        engine.portal_customer(token)
        try:
            engine.check_portal_form(token, (form.get("form_token") or [None])[0])
        except InvalidPortalForm as exc:
            form_token = engine.portal_form_token(token)
            view = engine.portal_view(token)
            return _page(403, view=view, token=token, error=str(exc), form_token=form_token)
        granted = set(form.get("granted", []))
        # Only the purposes the page showed: one added to the config since is not switched off.
        choices = {purpose: purpose in granted for purpose in form.get("shown", [])}
        try:
            changes = engine.portal_choose(token, choices)
        except ConsentError as exc:  # only a hand-made form names a purpose the page did not
            form_token = engine.portal_form_token(token)
            view = engine.portal_view(token)
            return _page(400, view=view, token=token, error=str(exc), form_token=form_token)
        view = engine.portal_view(token)
    except InvalidPortalLink:
        return _refused()
    saved = [{**c, "label": purpose_label(c["purpose"])} for c in changes]
    return _page(view=view, token=token, saved=saved, form_token=engine.portal_form_token(token))


def _refused_json(exc: InvalidPortalLink) -> JSONResponse:
    """Return the JSON answer to a refused link: the generic message and the reason."""
    return JSONResponse(
        {"success": False, "error": _INVALID, "reason": exc.reason},
        status_code=403,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/api/portal/{token}", tags=["portal"])
def portal_json(token: str, request: Request) -> Any:
    """Return what the portal page shows, as JSON: identifiers, traits, events, scores,
    purposes with their descriptions and state (403 for a refused link)."""
    try:
        view = request.app.state.troth.engine.portal_view(token)
    except InvalidPortalLink as exc:
        return _refused_json(exc)
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


@router.post("/api/portal/{token}", tags=["portal"])
def portal_json_save(token: str, body: PortalChoices, request: Request) -> Any:
    """Set the link's customer's purposes; return the changes made and every purpose now.

    400 names the valid purposes when one is unknown; 403 for a refused link.
    """
    engine = request.app.state.troth.engine
    try:
        changes = engine.portal_choose(token, dict(body.consents))
        view = engine.portal_view(token)
    except InvalidPortalLink as exc:
        return _refused_json(exc)
    return JSONResponse(
        {"success": True, "changed": changes, "purposes": view["purposes"]},
        headers={"Cache-Control": "no-store"},
    )
