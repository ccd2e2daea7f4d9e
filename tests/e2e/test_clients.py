"""Unmodified Segment and RudderStack SDKs deliver into a real `troth serve`."""

from __future__ import annotations

import httpx
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from tests.e2e.harness import troth


def _send(client) -> None:
    client.identify(
        "sdk-user-1", {"email": "sdk@example.com", "plan": "pro"}, anonymous_id="anon-1"
    )
    client.track("sdk-user-1", "Order Completed", {"revenue": 42.5, "order_id": "o-1"})
    client.page("sdk-user-1", "Docs", "Pricing", {"url": "https://example.com/pricing"})
    client.screen("sdk-user-1", "App", "Basket")
    client.group("sdk-user-1", "company-9", {"name": "Acme"})
    client.alias("sdk-user-1", "old-user-1")
    client.flush()


def _profile(server, token: str, identifier: str) -> dict:
    answer = httpx.get(
        f"{server.url}/api/v1/customers/{identifier}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_segment_sdk_events_arrive_and_form_one_customer(server, write_key, admin_token) -> None:
    errors: list = []
    client = SegmentClient(
        write_key, host=server.url, sync_mode=True, on_error=lambda e, batch: errors.append(e)
    )
    _send(client)
    assert errors == []
    profile = _profile(server, admin_token, "anon-1")
    assert profile["event_count"] == 6
    assert profile["events_by_name"]["Order Completed"] == 1
    kinds = {(i["kind"], i["value"]) for i in profile["identifiers"]}
    assert {("user_id", "sdk-user-1"), ("anonymous_id", "anon-1")} <= kinds
    assert profile["traits"]["email"] == "sdk@example.com"
    # The same customer, asked for by another identifier, and by their email.
    assert _profile(server, admin_token, "sdk-user-1")["customer_id"] == profile["customer_id"]
    assert _profile(server, admin_token, "sdk@example.com")["customer_id"] == profile["customer_id"]


def test_rudderstack_sdk_events_arrive_gzipped(server, write_key, admin_token) -> None:
    errors: list = []
    client = RudderClient(
        write_key,
        host=server.url,
        sync_mode=True,
        gzip=True,
        on_error=lambda e, batch: errors.append(e),
    )
    _send(client)
    assert errors == []
    assert _profile(server, admin_token, "sdk-user-1")["event_count"] == 6


def test_read_api_needs_a_token_with_a_person_role(server, db_path) -> None:
    url = f"{server.url}/api/v1/customers/anyone"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    server.stop()
    import json

    viewer = json.loads(troth("keys", "create", "--role", "viewer", "--json", db=db_path).stdout)
    server.start()
    answer = httpx.get(url, headers={"Authorization": f"Bearer {viewer['key']}"}, timeout=10)
    assert answer.status_code == 403


def test_unknown_customer_is_404(server, admin_token) -> None:
    answer = httpx.get(
        f"{server.url}/api/v1/customers/nobody",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert answer.status_code == 404
    assert "nobody" in answer.json()["error"]
