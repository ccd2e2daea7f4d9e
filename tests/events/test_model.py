"""The Segment call validator: one test per rule, and properties over generated calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth.errors import EventValidationError
from troth.events import EVENT_COLUMNS, normalize_call

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(call: dict, expected_type: str | None = None) -> dict:
    raw = json.dumps(call).encode()
    return dict(zip(EVENT_COLUMNS, normalize_call(raw, NOW, "src", expected_type), strict=True))


def rejected(call: dict | bytes, expected_type: str | None = None) -> EventValidationError:
    raw = call if isinstance(call, bytes) else json.dumps(call).encode()
    with pytest.raises(EventValidationError) as info:
        normalize_call(raw, NOW, "src", expected_type)
    return info.value


def test_track_call_is_stored_with_its_fields() -> None:
    out = row(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "messageId": "m-1",
            "properties": {"revenue": 12.5, "channel": "store"},
            "timestamp": "2025-12-31T23:00:00+01:00",
        }
    )
    assert out["message_id"] == "m-1"
    assert out["event"] == "Order Completed"
    assert out["timestamp"] == datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
    assert out["channel"] == "store"
    assert json.loads(out["properties"]) == {"revenue": 12.5, "channel": "store"}
    assert out["received_at"] == NOW
    assert out["source_id"] == "src"


def test_numeric_user_id_becomes_text() -> None:
    assert row({"type": "identify", "userId": 42})["user_id"] == "42"


def test_missing_ids_are_rejected_naming_user_id() -> None:
    assert rejected({"type": "track", "event": "X"}).field == "userId"


def test_empty_string_ids_count_as_missing() -> None:
    assert rejected({"type": "track", "event": "X", "userId": " ", "anonymousId": ""}).field == (
        "userId"
    )


def test_boolean_user_id_is_rejected() -> None:
    assert rejected({"type": "identify", "userId": True}).field == "userId"


def test_unknown_type_is_rejected() -> None:
    err = rejected({"type": "purchase", "userId": "u"})
    assert err.field == "type"
    assert "purchase" in err.message


def test_type_must_match_the_endpoint() -> None:
    assert rejected({"type": "page", "userId": "u"}, expected_type="track").field == "type"


def test_endpoint_supplies_a_missing_type() -> None:
    assert row({"userId": "u", "event": "E"}, expected_type="track")["type"] == "track"


def test_track_needs_an_event_name() -> None:
    assert rejected({"type": "track", "userId": "u", "event": ""}).field == "event"


def test_alias_needs_previous_id() -> None:
    assert rejected({"type": "alias", "userId": "u"}).field == "previousId"


def test_group_needs_group_id() -> None:
    assert rejected({"type": "group", "userId": "u"}).field == "groupId"


def test_properties_must_be_an_object() -> None:
    err = rejected({"type": "track", "userId": "u", "event": "E", "properties": [1]})
    assert err.field == "properties"


def test_null_properties_are_absent() -> None:
    assert (
        row({"type": "track", "userId": "u", "event": "E", "properties": None})["properties"]
        is None
    )


def test_bad_timestamp_is_rejected() -> None:
    assert rejected({"type": "identify", "userId": "u", "timestamp": "yesterday"}).field == (
        "timestamp"
    )


def test_message_id_over_100_characters_is_rejected() -> None:
    err = rejected({"type": "identify", "userId": "u", "messageId": "m" * 101})
    assert err.field == "messageId"


def test_message_id_of_100_characters_is_kept() -> None:
    assert row({"type": "identify", "userId": "u", "messageId": "m" * 100})["message_id"] == (
        "m" * 100
    )


def test_event_over_32_kb_is_rejected() -> None:
    err = rejected({"type": "identify", "userId": "u", "traits": {"blob": "x" * 33_000}})
    assert "32 KB" in err.message


def test_malformed_json_is_rejected() -> None:
    assert "malformed" in rejected(b'{"type": "track",').message


def test_missing_message_id_is_derived_from_the_bytes() -> None:
    call = {"type": "track", "userId": "u", "event": "E", "timestamp": "2025-01-01T00:00:00Z"}
    assert row(call)["message_id"] == row(call)["message_id"]
    assert row(call)["message_id"].startswith("troth-")


def test_clock_skew_is_corrected_from_sent_at() -> None:
    out = row(
        {
            "type": "identify",
            "userId": "u",
            "originalTimestamp": "2026-01-02T03:00:00Z",
            "sentAt": "2026-01-02T03:00:10Z",
        }
    )
    assert out["timestamp"] == NOW - timedelta(seconds=10)


def test_missing_timestamp_falls_back_to_received_at() -> None:
    assert row({"type": "identify", "userId": "u"})["timestamp"] == NOW


def test_naive_timestamp_is_taken_as_utc() -> None:
    out = row({"type": "identify", "userId": "u", "timestamp": "2025-06-01T10:00:00"})
    assert out["timestamp"] == datetime(2025, 6, 1, 10, tzinfo=UTC)


def test_channel_comes_from_properties_then_context_then_top_level() -> None:
    base = {"type": "track", "userId": "u", "event": "E", "channel": "server"}
    assert row(base)["channel"] == "server"
    assert row({**base, "context": {"channel": "app"}})["channel"] == "app"
    both = {**base, "context": {"channel": "app"}, "properties": {"channel": "email"}}
    assert row(both)["channel"] == "email"


def test_unknown_fields_are_ignored_as_segment_does() -> None:
    assert row({"type": "identify", "userId": "u", "_metadata": {"x": 1}})["user_id"] == "u"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "userId",
                "anonymousId",
                "event",
                "messageId",
                "timestamp",
                "properties",
                "traits",
                "previousId",
                "groupId",
                "context",
                "name",
            ]
        ),
        _json_values | st.sampled_from(["track", "identify", "alias", "group", "page", "x"]),
    )
)
def test_any_json_object_is_stored_or_rejected_with_a_reason(call: dict) -> None:
    raw = json.dumps(call).encode()
    try:
        out = normalize_call(raw, NOW, None)
    except EventValidationError as exc:
        assert exc.message
        return
    stored = dict(zip(EVENT_COLUMNS, out, strict=True))
    assert stored["user_id"] or stored["anonymous_id"]
    assert stored["type"] in {"identify", "track", "page", "screen", "group", "alias"}
    assert len(stored["message_id"]) <= 100
    for name in ("properties", "traits", "context", "integrations"):
        assert stored[name] is None or isinstance(json.loads(stored[name]), dict)


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_times_are_rejected_not_crashing(timestamp: str) -> None:
    assert (
        "out of range"
        in rejected({"type": "identify", "userId": "u", "timestamp": timestamp}).message
    )


def test_extreme_skew_is_rejected_not_crashing() -> None:
    call = {
        "type": "identify",
        "userId": "u",
        "originalTimestamp": "0001-01-01T00:00:00Z",
        "sentAt": "9999-12-31T00:00:00Z",
    }
    assert "out of range" in rejected(call).message


def test_invalid_utf8_inside_an_object_is_rejected() -> None:
    raw = b'{"type": "identify", "userId": "u", "traits": {"x": "\xff"}}'
    assert "UTF-8" in rejected(raw).message


def test_deep_nesting_is_rejected() -> None:
    raw = (
        b'{"type": "identify", "userId": "u", "traits": '
        + b'{"a":' * 2000
        + b"1"
        + (b"}" * 2000)
        + b"}"
    )
    err = rejected(raw)
    assert "nested" in err.message or "depth" in err.message.lower()


def test_a_channel_that_is_not_a_scalar_is_kept_as_data_but_names_no_touchpoint() -> None:
    call = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "properties": {"channel": {"id": 1}},
        "context": {"channel": ["web"]},
    }
    out = row(call)
    assert out["channel"] is None
    assert json.loads(out["properties"]) == {"channel": {"id": 1}}


def test_identical_calls_in_one_batch_get_different_generated_ids() -> None:
    raw = json.dumps({"type": "track", "userId": "u", "event": "Add To Cart"}).encode()
    ids = {normalize_call(raw, NOW, None, position=i)[0] for i in range(3)}
    assert len(ids) == 3
    assert normalize_call(raw, NOW, None, position=1)[0] in ids  # a retry finds the same ids


def test_batch_sent_at_corrects_the_original_timestamp() -> None:
    raw = json.dumps(
        {"type": "identify", "userId": "u", "originalTimestamp": "2026-01-02T06:00:00Z"}
    ).encode()
    sent = datetime(2026, 1, 2, 6, 0, 30, tzinfo=UTC)  # a device clock 3 h fast
    stored = dict(
        zip(EVENT_COLUMNS, normalize_call(raw, NOW, None, batch_sent_at=sent), strict=True)
    )
    assert stored["timestamp"] == NOW - timedelta(seconds=30)
    assert stored["sent_at"] == sent
