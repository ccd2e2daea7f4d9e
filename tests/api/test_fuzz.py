"""Whatever bytes arrive, the ingestion API answers 200 or a 4xx JSON error — never a 500."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from troth.api import create_app

ENDPOINTS = ["identify", "track", "page", "screen", "group", "alias", "batch", "import"]

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)
_calls = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "alias", "group", "x"]) | _json,
        "userId": st.text(max_size=6) | _json,
        "anonymousId": st.text(max_size=6) | _json,
        "event": st.text(max_size=6) | _json,
        "messageId": st.text(max_size=120) | _json,
        "timestamp": st.sampled_from(
            [
                "2026-01-01T00:00:00Z",
                "nope",
                "",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
            ]
        )
        | _json,
        "originalTimestamp": st.sampled_from(["0001-01-01T00:00:00Z", "2026-01-01T00:00:00"]),
        "sentAt": st.sampled_from(["9999-12-31T00:00:00Z", "2026-01-01T00:00:01Z"]),
        "properties": _json,
        "traits": _json,
        "context": _json,
        "previousId": _json,
        "groupId": _json,
    },
)
_bodies = (
    _calls.map(lambda c: json.dumps(c).encode())
    | st.lists(_calls, max_size=4).map(lambda b: json.dumps({"batch": b}).encode())
    | _json.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.binary(max_size=8).map(
        lambda b: b'{"type":"identify","userId":"u","traits":{"x":"' + b + b'"}}'
    )
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from troth.config import Settings
    from troth.engine import Engine

    engine = Engine.open(Settings(), tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb")
    _, key = engine.create_write_key("fuzz")
    with TestClient(create_app(engine)) as test_client:
        test_client.headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        )
        yield test_client


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(endpoint=st.sampled_from(ENDPOINTS), body=_bodies)
def test_no_input_gets_a_server_error(client, endpoint: str, body: bytes) -> None:
    answer = client.post(
        f"/v1/{endpoint}", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code in (200, 400), answer.text
    payload = answer.json()
    if answer.status_code == 400:
        assert payload["success"] is False and payload["error"]
    else:
        assert payload == {"success": True}
