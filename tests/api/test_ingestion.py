"""The Segment HTTP API in-process: every endpoint, good and bad input, auth and limits."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from fastapi.testclient import TestClient

from troth.api import create_app

SINGLE = ["identify", "track", "page", "screen", "group", "alias"]
GOOD = {
    "identify": {"userId": "u1", "traits": {"email": "ann@example.com"}},
    "track": {"userId": "u1", "event": "Order Completed", "properties": {"revenue": 10}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Basket"},
    "group": {"userId": "u1", "groupId": "g1", "traits": {"plan": "pro"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}


@pytest.fixture
def client(engine):
    _, key = engine.create_write_key("website")
    app = create_app(engine)
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        )
        test_client.write_key = key
        yield test_client


def stored(client, message_id: str) -> int:
    cur = client.app.state.troth.engine.db.cursor()
    return cur.execute("SELECT count(*) FROM events WHERE message_id = ?", [message_id]).fetchone()[
        0
    ]


@pytest.mark.parametrize("call", SINGLE)
def test_each_single_endpoint_stores_its_call(client, call: str) -> None:
    body = {**GOOD[call], "messageId": f"m-{call}"}
    answer = client.post(f"/v1/{call}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True}
    assert stored(client, f"m-{call}") == 1


@pytest.mark.parametrize("endpoint", ["batch", "import"])
def test_batch_and_import_store_every_call(client, endpoint: str) -> None:
    batch = [{**GOOD[c], "type": c, "messageId": f"{endpoint}-{c}"} for c in SINGLE]
    answer = client.post(f"/v1/{endpoint}", json={"batch": batch})
    assert answer.status_code == 200, answer.text
    assert all(stored(client, f"{endpoint}-{c}") == 1 for c in SINGLE)


def test_duplicate_message_ids_are_stored_once(client) -> None:
    body = {**GOOD["track"], "messageId": "dup-1"}
    for _ in range(3):
        assert client.post("/v1/track", json=body).status_code == 200
    batch = {"batch": [{**body, "type": "track"}, {**body, "type": "track"}]}
    assert client.post("/v1/batch", json=batch).status_code == 200
    assert stored(client, "dup-1") == 1


def test_write_key_in_the_body_is_accepted(client) -> None:
    body = {**GOOD["track"], "messageId": "wk-1", "writeKey": client.write_key}
    answer = client.post("/v1/track", json=body, headers={"Authorization": ""})
    assert answer.status_code == 200
    assert stored(client, "wk-1") == 1


@pytest.mark.parametrize("endpoint", [*SINGLE, "batch", "import"])
def test_missing_or_wrong_write_key_gets_401(client, endpoint: str) -> None:
    body = {"batch": [GOOD["track"]]} if endpoint in ("batch", "import") else GOOD[endpoint]
    answer = client.post(f"/v1/{endpoint}", json=body, headers={"Authorization": ""})
    assert answer.status_code == 401
    assert "write key" in answer.json()["error"]
    wrong = "Basic " + base64.b64encode(b"not-a-key:").decode()
    answer = client.post(f"/v1/{endpoint}", json=body, headers={"Authorization": wrong})
    assert answer.status_code == 401


def test_revoked_key_gets_401(client, engine) -> None:
    engine.revoke(client.write_key)
    client.app.state.troth._keys.clear()
    assert client.post("/v1/track", json=GOOD["track"]).status_code == 401


BAD_SINGLE = [
    (b"{not json", None, "malformed"),
    (b"[1, 2]", None, "object"),
    (b"", None, "empty"),
    (json.dumps({"event": "E"}).encode(), "userId", "userId or anonymousId"),
    (json.dumps({"userId": ["x"], "event": "E"}).encode(), "userId", "Expected"),
    (json.dumps({"userId": "u", "event": 5}).encode(), "event", "Expected"),
    (json.dumps({"userId": "u", "event": "E", "type": "page"}).encode(), "type", "endpoint"),
    (json.dumps({"userId": "u", "event": "E", "timestamp": "soon"}).encode(), "timestamp", "RFC"),
    (json.dumps({"userId": "u", "event": "E", "properties": "x"}).encode(), "properties", "object"),
    (
        json.dumps({"userId": "u", "event": "E", "messageId": "m" * 101}).encode(),
        "messageId",
        "100",
    ),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD_SINGLE)
def test_bad_single_calls_get_400_naming_the_problem(client, body, field, words) -> None:
    answer = client.post("/v1/track", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["success"] is False
    assert words.lower() in error["error"].lower()
    if field:
        assert error["field"] == field


@pytest.mark.parametrize("call", SINGLE)
def test_each_single_endpoint_rejects_a_call_without_ids(client, call: str) -> None:
    body = {k: v for k, v in GOOD[call].items() if k not in ("userId", "anonymousId")}
    assert client.post(f"/v1/{call}", json=body).status_code == 400


def test_unknown_type_in_a_batch_is_named(client) -> None:
    answer = client.post("/v1/batch", json={"batch": [{"type": "purchase", "userId": "u"}]})
    assert answer.status_code == 400
    assert answer.json()["rejected"][0]["field"] == "type"


def test_batch_with_some_bad_calls_stores_the_good_ones_and_says_so(client) -> None:
    batch = [
        {**GOOD["track"], "type": "track", "messageId": "ok-1"},
        {"type": "track", "event": "E", "messageId": "bad-1"},
        {**GOOD["page"], "type": "page", "messageId": "ok-2"},
    ]
    answer = client.post("/v1/batch", json={"batch": batch})
    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {
            "index": 1,
            "messageId": "bad-1",
            "field": "userId",
            "error": "userId or anonymousId is required",
        }
    ]
    assert stored(client, "ok-1") == stored(client, "ok-2") == 1
    cur = client.app.state.troth.engine.db.cursor()
    reject = cur.execute("SELECT message_id, field FROM rejects").fetchall()
    assert reject == [("bad-1", "userId")]


@pytest.mark.parametrize(
    "body",
    [{"batch": []}, {"batch": "x"}, {"nobatch": []}, [1], {"batch": [1]}],
)
def test_malformed_batches_get_400(client, body) -> None:
    answer = client.post("/v1/batch", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_event_over_32_kb_gets_400(client) -> None:
    body = {**GOOD["track"], "properties": {"blob": "x" * 33_000}}
    answer = client.post("/v1/track", json=body)
    assert answer.status_code == 400
    assert "32 KB" in answer.json()["error"]


def test_batch_over_500_kb_gets_400_and_stores_nothing(client) -> None:
    batch = [
        {
            **GOOD["track"],
            "type": "track",
            "messageId": f"big-{i}",
            "properties": {"blob": "x" * 20_000},
        }
        for i in range(30)
    ]
    answer = client.post("/v1/batch", json={"batch": batch})
    assert answer.status_code == 400
    assert "500 KB" in answer.json()["error"]
    assert stored(client, "big-0") == 0


def test_gzip_bodies_are_accepted(client) -> None:
    body = gzip.compress(
        json.dumps({"batch": [{**GOOD["track"], "type": "track", "messageId": "gz-1"}]}).encode()
    )
    answer = client.post(
        "/v1/batch",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert stored(client, "gz-1") == 1


def test_gzip_bomb_is_refused(client) -> None:
    body = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    answer = client.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400
    assert "decompressed" in answer.json()["error"]


def test_unknown_endpoint_gets_404_listing_the_real_ones(client) -> None:
    answer = client.post("/v1/purchase", json=GOOD["track"])
    assert answer.status_code == 404
    assert "track" in answer.json()["error"]


def test_full_queue_answers_429_with_retry_after(client) -> None:
    writer = client.app.state.troth.writer
    writer._queued = writer._max_queued  # as if other clients had filled the queue
    try:
        answer = client.post("/v1/track", json=GOOD["track"])
    finally:
        writer._queued = 0
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"


def test_health_and_metrics(client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    client.post("/v1/track", json={**GOOD["track"], "messageId": "met-1"})
    metrics = client.get("/metrics").text
    assert "troth_events_accepted_total 1" in metrics


def test_identical_calls_without_message_ids_are_all_stored(client) -> None:
    call = {"type": "track", "userId": "cart-u", "event": "Add To Cart"}
    assert client.post("/v1/batch", json={"batch": [call, call, call]}).status_code == 200
    assert client.post("/v1/batch", json={"batch": [call, call, call]}).status_code == 200
    cur = client.app.state.troth.engine.db.cursor()
    assert cur.execute("SELECT count(*) FROM events WHERE user_id = 'cart-u'").fetchone() == (3,)


def test_batch_level_sent_at_corrects_device_clock_skew(client) -> None:
    from datetime import UTC, datetime, timedelta

    device_now = datetime.now(UTC) + timedelta(hours=3)
    batch = {
        "sentAt": device_now.isoformat(),
        "batch": [
            {
                "type": "track",
                "userId": "skew-u",
                "event": "E",
                "messageId": "skew-1",
                "originalTimestamp": (device_now - timedelta(minutes=1)).isoformat(),
            }
        ],
    }
    assert client.post("/v1/batch", json=batch).status_code == 200
    cur = client.app.state.troth.engine.db.cursor()
    stored = cur.execute("SELECT timestamp FROM events WHERE message_id = 'skew-1'").fetchone()[0]
    assert abs((stored - (datetime.now(UTC) - timedelta(minutes=1))).total_seconds()) < 60


def test_browsers_may_post_from_another_origin(client) -> None:
    answer = client.options(
        "/v1/batch",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    posted = client.post(
        "/v1/track", json=GOOD["track"], headers={"Origin": "https://shop.example"}
    )
    assert posted.headers["access-control-allow-origin"] == "*"


def test_stages_and_customer_list_after_scoring(client, engine) -> None:
    from troth.engagement.stages import STAGES

    token = engine.create_token("analyst")[1]
    viewer = engine.create_token("viewer")[1]
    batch = [
        {
            "type": "track",
            "userId": f"s{i}",
            "event": "Order Completed",
            "properties": {"revenue": 10 * i},
        }
        for i in range(1, 4)
    ]
    assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
    engine.score()
    stages = client.get("/api/v1/stages", headers={"Authorization": f"Bearer {viewer}"}).json()
    assert stages["customers"] == 3
    assert set(stages["by_stage"]) == set(STAGES)
    listed = client.get(
        "/api/v1/customers?sort=revenue&limit=2", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert listed["total"] == 3
    assert [c["revenue"] for c in listed["customers"]] == [30, 20]
    denied = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403
    bad = client.get("/api/v1/customers?stage=bliss", headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400 and "bliss" in bad.json()["error"]
    moves = client.get("/api/v1/transitions", headers={"Authorization": f"Bearer {viewer}"})
    assert moves.status_code == 200
    body = moves.json()
    assert len(body["periods"]) == 12 and len(body["matrices"]) == 11
    last = body["matrices"][body["periods"][-1]]
    assert last["new"]["connection"] == 3  # all three first seen during the last period
    ladder = client.get("/api/v1/ladder", headers={"Authorization": f"Bearer {viewer}"}).json()
    assert ladder["overall"]["reached"]["activate"] == 3  # all three ordered
    shown = client.get("/api/v1/customers/s3", headers={"Authorization": f"Bearer {token}"}).json()
    assert shown["ladder"]["rung"] == "activate"
    assert shown["card"] == {
        "balance": 0,
        "earned": 0,
        "lost": 0,
        "trend": 0,
        "entries": 0,
        "recent": [],
    }
    assert shown["attributes"]["active"]["score"] > 0
