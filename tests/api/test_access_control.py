"""Every /api/v1 endpoint: 401 without a valid token, 403 below its role (walked from the app)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.engagement.events import add_events
from troth.api import create_app

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ROLES = ("viewer", "analyst", "admin")  # each may do what the ones before it may

# The least role each endpoint needs. An endpoint missing here fails the test: decide who may
# call it before it ships. Viewer: aggregates only; analyst: customer-level reads; admin:
# export, erasure, keys, consent overrides, the audit log.
MIN_ROLE = {
    ("GET", "/api/v1/summary"): "viewer",
    ("GET", "/api/v1/stages"): "viewer",
    ("GET", "/api/v1/transitions"): "viewer",
    ("GET", "/api/v1/ladder"): "viewer",
    ("GET", "/api/v1/value"): "viewer",
    ("GET", "/api/v1/customers"): "analyst",
    ("GET", "/api/v1/customers/{identifier}"): "analyst",
    ("GET", "/api/v1/value/at-risk"): "analyst",
    ("GET", "/api/v1/contacts/{channel}"): "analyst",
    ("GET", "/api/v1/customers/{identifier}/consent"): "analyst",
    ("GET", "/api/v1/customers/{identifier}/export"): "admin",
    ("DELETE", "/api/v1/customers/{identifier}"): "admin",
    ("POST", "/api/v1/customers/{identifier}/consent"): "admin",
    ("POST", "/api/v1/customers/{identifier}/portal-link"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/api/v1/tokens"): "admin",
    ("POST", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/{credential_id}"): "admin",
}


def _routes(routes) -> list[tuple[set[str], str]]:
    """Return (methods, path) of every HTTP route, inside included routers and mounts too."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((route.methods, route.path))
        elif hasattr(
            route, "effective_route_contexts"
        ):  # FastAPI >= 0.165: routers included lazily
            found += [(c.methods or set(), c.path) for c in route.effective_route_contexts()]
        elif hasattr(route, "routes"):
            found += [(m, getattr(route, "path", "") + p) for m, p in _routes(route.routes)]
        elif getattr(route, "methods", None):
            found.append((route.methods, route.path))
    return found


def api_endpoints(app) -> list[tuple[str, str]]:
    """Return (method, path) of every route under /api/v1 of the real app."""
    return sorted(
        (method, path)
        for methods, path in _routes(app.routes)
        if path.startswith("/api/v1")
        for method in set(methods) - {"HEAD", "OPTIONS"}
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from troth.config import Settings
    from troth.engine import Engine

    engine = Engine.open(Settings(), tmp_path_factory.mktemp("acl") / "acl.duckdb")
    add_events(
        engine.db,
        [
            {"event": "Order Completed", "user": f"u{i}", "properties": {"revenue": 10 * i}}
            for i in range(1, 6)
        ]
        + [{"event": "Page Viewed", "user": "u1", "at": T0 + timedelta(days=9)}],
        T0,
    )
    engine.score(T0 + timedelta(days=10))
    tokens = {role: engine.create_token(role)[1] for role in ROLES}
    revoked = engine.create_token("admin")
    engine.revoke(revoked[0])
    with TestClient(create_app(engine)) as client:
        yield client, tokens, revoked[1]


def call(client: TestClient, method: str, path: str, token: str | None):
    url = path.replace("{identifier}", "nobody").replace("{credential_id}", "tok_nobody")
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, headers=headers, json=body)


def test_every_endpoint_has_a_minimum_role(served) -> None:
    client, *_ = served
    routes = api_endpoints(client.app)
    # The walk sees at least what the OpenAPI description lists (a hidden route would add more).
    described = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert described <= set(routes)
    missing = [r for r in routes if r not in MIN_ROLE]
    assert not missing, f"endpoints without a minimum role in MIN_ROLE: {missing}"
    gone = [r for r in MIN_ROLE if r not in routes]
    assert not gone, f"MIN_ROLE names endpoints the app no longer has: {gone}"


@pytest.mark.parametrize(("method", "path"), sorted(MIN_ROLE))
def test_without_a_valid_token_the_answer_is_401(served, method: str, path: str) -> None:
    client, _tokens, revoked = served
    for token in (None, "", "ttk_not-a-token", revoked, "' OR 1=1 --"):
        answer = call(client, method, path, token)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["success"] is False


@pytest.mark.parametrize(("method", "path"), sorted(MIN_ROLE))
def test_a_role_too_low_gets_403_and_enough_gets_through(served, method: str, path: str) -> None:
    client, tokens, _revoked = served
    needed = ROLES.index(MIN_ROLE[(method, path)])
    for rank, name in enumerate(ROLES):
        answer = call(client, method, path, tokens[name])
        if rank < needed:
            assert answer.status_code == 403, (name, answer.text)
            assert "role" in answer.json()["error"]
        else:
            # Past the gate: the answer is the endpoint's own (a placeholder id is not found,
            # an empty body is refused), never an authorisation error.
            assert answer.status_code in (200, 201, 400, 404), (name, answer.text)


def test_a_token_works_by_cookie_too_and_is_checked_the_same(served) -> None:
    client, tokens, revoked = served
    client.cookies.set("troth_token", tokens["viewer"])
    try:
        assert client.get("/api/v1/summary").status_code == 200
        assert client.get("/api/v1/customers").status_code == 403
        client.cookies.set("troth_token", revoked)
        assert client.get("/api/v1/summary").status_code == 401
    finally:
        client.cookies.clear()
