"""The dashboard's routes: sign-in, the overview, the customer list and the customer 360.

A page needs a bearer token, from the `Authorization` header or the HttpOnly `troth_token`
cookie the sign-in form sets; without one the browser is sent to /signin. A viewer sees the
overview's aggregates only; customer pages need analyst. Reads of people are audited as the
read API's are (customer.read, customer.list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from troth.dashboard import overview
from troth.dashboard.pages import CONTENT_SECURITY_POLICY, STATIC_FILES, render, static_file, why
from troth.engagement.attributes import ATTRIBUTES
from troth.engagement.ladder import RUNGS
from troth.engagement.listing import RANGES, SORTS
from troth.engagement.stages import PHASES, STAGES
from troth.engagement.transitions import MOVED_TO, STATES
from troth.errors import AuthenticationError, CustomerNotFound, TrothError
from troth.value.report import VALUE_SORTS

__all__ = ["COOKIE", "router"]

router = APIRouter(include_in_schema=False)
COOKIE = "troth_token"
_PERSON_ROLES = frozenset({"admin", "analyst"})
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    # Pages show people: no shared cache may keep them.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_MAX_FORM_BYTES = 16 * 1024
# Filters offered on the list page as from/below pairs (the list accepts every RANGES column).
_RANGE_FIELDS = (*ATTRIBUTES, "clv", "cev", "p_alive")
_PAGE_SIZES = (25, 50, 100, 200)
_YES = ("1", "true", "on")
# The list's filters when the query string cannot be read (an error page shows no customers).
_NO_FILTERS: dict[str, Any] = {
    "stage": None,
    "phase": None,
    "cognitive_loyalty": False,
    "rung": None,
    "moved_from": None,
    "moved_to": None,
    "at_risk": False,
    "sort": "revenue",
    "limit": 50,
    "offset": 0,
    "ranges": {},
}


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the token's id (the audit log's actor), role, and whether they may see
    people."""

    token_id: str
    role: str

    @property
    def personal(self) -> bool:
        """True if the role may see individual customers."""
        return self.role in _PERSON_ROLES


def _page(html: str, status: int = 200) -> HTMLResponse:
    """Return an HTML page with the dashboard's security headers."""
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _token(request: Request) -> str | None:
    """Return the bearer token of the header, else of the sign-in cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE)


def _viewer(request: Request) -> Viewer | None:
    """Return who the request's token belongs to, or None without a valid one."""
    try:
        token_id, role = request.app.state.troth.engine.principal_for_token(_token(request))
    except AuthenticationError:
        return None
    return Viewer(token_id, role)


def _to_signin(request: Request) -> RedirectResponse:
    """Return a redirect to the sign-in page that comes back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)


def _forbidden(who: Viewer) -> HTMLResponse:
    """Return the 403 page of a role that may not see people."""
    html = render(
        "error.html",
        who=who,
        heading="Not allowed",
        message=f"Role '{who.role}' sees aggregates only; customer pages need an analyst token.",
    )
    return _page(html, 403)


def _safe_next(target: str | None) -> str:
    """Return a local path to go to after sign-in ('/' for anything else: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> HTMLResponse:
    """Return the sign-in form (a bearer token kept in an HttpOnly cookie)."""
    return _page(render("signin.html", next=_safe_next(next), error=None))


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the posted token; set the HttpOnly, SameSite=Strict cookie and go on, or refuse."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return _page(render("signin.html", next="/", error="The form is too large."), 400)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    try:
        request.app.state.troth.engine.principal_for_token(token)
    except AuthenticationError:
        html = render("signin.html", next=target, error="That token is unknown or revoked.")
        return _page(html, 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/signout")
def signout() -> Response:
    """Forget the sign-in cookie and show the sign-in form."""
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/dashboard/static/{name:path}")
def static(name: str) -> Response:
    """Return a packaged script or stylesheet (vendored vega included); no CDN is used."""
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        static_file(name),
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/")
@router.get("/overview")
def overview_page(request: Request) -> Response:
    """Return the overview: the cycle, flows, ladder, distributions, value and (for analysts)
    the customer lists."""
    who = _viewer(request)
    if who is None:
        return _to_signin(request)
    engine = request.app.state.troth.engine
    try:
        data = overview(engine, personal=who.personal, links=who.personal)
    except TrothError as exc:
        return _page(render("error.html", who=who, heading="Nothing to show", message=str(exc)))
    if who.personal:
        rows = len(data["top_cev"]) + len(data["at_risk_customers"])
        rows += len(data["cognitive_customers"])
        engine.audit(who.token_id, "customer.list", None, f"dashboard overview: {rows} rows")
    return _page(render("overview.html", who=who, o=data))


def _number(value: str | None) -> float | None:
    """Return a filter's number, None when blank; raise TrothError when it is not one."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise TrothError(f"'{value[:40]}' is not a number") from exc
    if number != number or number in (float("inf"), float("-inf")):
        raise TrothError(f"'{value[:40]}' is not a number")
    return number


def _filters(request: Request) -> dict[str, Any]:
    """Return the list's filters from the query string (validated by the list itself)."""
    q = request.query_params
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for column in (*RANGES, *VALUE_SORTS):
        low, high = _number(q.get(f"{column}_min")), _number(q.get(f"{column}_max"))
        if low is not None or high is not None:
            ranges[column] = (low, high)
    limit = int(_number(q.get("limit")) or 50)
    return {
        "stage": q.get("stage") or None,
        "phase": q.get("phase") or None,
        "cognitive_loyalty": q.get("cognitive_loyalty") in _YES,
        "rung": q.get("rung") or None,
        "moved_from": q.get("moved_from") or None,
        "moved_to": q.get("moved_to") or None,
        "at_risk": q.get("at_risk") in _YES,
        "sort": q.get("sort") or "revenue",
        "limit": limit if limit in _PAGE_SIZES else 50,
        "offset": max(int(_number(q.get("offset")) or 0), 0),
        "ranges": ranges,
    }


def _list_url(request: Request, offset: int) -> str:
    """Return this list's address at another offset."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "q")]
    return "/customers?" + urlencode([*params, ("offset", str(offset))])


@router.get("/customers")
def customers_page(request: Request, q: str | None = None) -> Response:
    """Return the customer list (filters, sort, paging), or a search's customer 360."""
    who = _viewer(request)
    if who is None:
        return _to_signin(request)
    if not who.personal:
        return _forbidden(who)
    engine = request.app.state.troth.engine
    not_found = None
    if q and q.strip():
        try:
            customer_id = engine.find_customer(q.strip()[:1000])
        except CustomerNotFound:
            not_found = q.strip()[:200]
        else:
            return RedirectResponse(f"/customers/{quote(customer_id, safe='')}", status_code=303)
    error, page = None, {"total": 0, "customers": []}
    filters = dict(_NO_FILTERS)
    try:
        filters = _filters(request)
        page = engine.customers(**filters)
    except TrothError as exc:
        error = str(exc)
    engine.audit(
        who.token_id,
        "customer.list",
        None,
        f"dashboard customers sort={filters['sort']} offset={filters['offset']}: "
        f"{len(page['customers'])} rows",
    )
    offset, limit = filters["offset"], filters["limit"]
    html = render(
        "customers.html",
        who=who,
        query=q,
        not_found=not_found,
        error=error,
        page=page,
        f=filters,
        stages=STAGES,
        phases=tuple(dict.fromkeys(PHASES.values())),
        rungs=RUNGS,
        moved_from_states=STATES,
        moved_to_states=MOVED_TO,
        sorts=(*SORTS, *VALUE_SORTS),
        attributes=ATTRIBUTES,
        range_columns=_RANGE_FIELDS,
        prev_url=_list_url(request, max(offset - limit, 0)) if offset > 0 else None,
        next_url=_list_url(request, offset + limit) if offset + limit < page["total"] else None,
    )
    return _page(html, 400 if error else 200)


@router.get("/customers/{identifier}")
def customer_page(identifier: str, request: Request) -> Response:
    """Return the customer 360: identifiers, traits, stage and why, attributes, card, value,
    consents and timeline."""
    who = _viewer(request)
    if who is None:
        return _to_signin(request)
    if not who.personal:
        return _forbidden(who)
    engine = request.app.state.troth.engine
    try:
        profile = engine.customer(identifier)
    except CustomerNotFound:
        html = render(
            "error.html",
            who=who,
            heading="No such customer",
            message="No customer holds this identifier.",
        )
        return _page(html, 404)
    engine.audit(who.token_id, "customer.read", profile["customer_id"], "dashboard")
    engagement = profile.get("engagement")
    html = render(
        "customer.html",
        who=who,
        c=profile,
        e=engagement,
        v=profile.get("value"),
        why=why(engagement),
    )
    return _page(html)
