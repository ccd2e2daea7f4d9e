"""Segment-spec calls: decode one event, check it against the spec, return the stored row.

The spec: https://segment.com/docs/connections/spec/common/ — `type`, `messageId`, `userId`
and/or `anonymousId`, `timestamp`, `sentAt`, `originalTimestamp`, `context`, `integrations`;
`track` has `event` + `properties`, `identify` has `traits`, `alias` has `previousId`, `group`
has `groupId` + `traits`, `page`/`screen` have `name` + `properties`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from troth.errors import EventValidationError

__all__ = [
    "CALL_TYPES",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_ID_CHARS",
    "EventRow",
    "error_field",
    "generated_message_id",
    "normalize_call",
]

CALL_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_MESSAGE_ID_CHARS = 100

# A stored event: a tuple in troth.events.schema.EVENT_COLUMNS order.
EventRow = tuple


class _Call(msgspec.Struct, rename="camel", kw_only=True):
    """The fields of a Segment call Troth reads; unknown fields are ignored, as Segment does."""

    type: str | None = None
    message_id: str | None = None
    user_id: str | int | None = None
    anonymous_id: str | int | None = None
    previous_id: str | int | None = None
    group_id: str | int | None = None
    event: str | None = None
    name: str | None = None
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    channel: str | None = None
    properties: msgspec.Raw = msgspec.Raw()
    traits: msgspec.Raw = msgspec.Raw()
    context: msgspec.Raw = msgspec.Raw()
    integrations: msgspec.Raw = msgspec.Raw()


class _Channel(msgspec.Struct):
    """Only the `channel` key of `properties` or `context` (everything else is skipped)."""

    channel: msgspec.Raw = msgspec.Raw()


_decode_call = msgspec.json.Decoder(_Call).decode
_decode_channel = msgspec.json.Decoder(_Channel).decode
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


def _as_utc(value: datetime | None) -> datetime | None:
    """Return `value` in UTC; a time without an offset is taken to be UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _identifier(value: str | int | None, field: str) -> str | None:
    """Return an identifier as text: numbers become strings, empty strings count as absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise EventValidationError(f"{field} must be a string, not a boolean", field)
    text = str(value)
    if not text.strip():
        return None
    if len(text) > 1000:
        raise EventValidationError(f"{field} is longer than 1000 characters", field)
    return text


def _json_object(raw: msgspec.Raw, field: str) -> tuple[bytes | None, str | None]:
    """Return (raw JSON object text, its `channel`), checking that the field holds an object."""
    data = bytes(raw)
    if not data or data == b"null":
        return None, None
    try:
        channel = msgspec.json.decode(_decode_channel(data).channel or b"null")
    except msgspec.ValidationError as exc:
        raise EventValidationError(f"{field} must be a JSON object", field) from exc
    # properties and context are free-form: a channel that is an object or a list is kept as
    # data but names no touchpoint.
    if channel is None or isinstance(channel, dict | list):
        return data, None
    return data, str(channel)


def generated_message_id(raw: bytes, position: int = 0) -> str:
    """Return the messageId given to a call sent without one: a hash of its bytes and position.

    The position within its batch keeps identical calls of one batch apart, while a retry of
    the same batch still finds the same ids.
    """
    salt = b"" if position == 0 else b"\x00" + str(position).encode()
    return "troth-" + hashlib.blake2b(raw + salt, digest_size=16).hexdigest()


def _message_id(call: _Call, raw: bytes, position: int) -> str:
    """Return the call's messageId, or a deterministic one made from the call's bytes."""
    if call.message_id is None or not call.message_id.strip():
        return generated_message_id(raw, position)
    if len(call.message_id) > MAX_MESSAGE_ID_CHARS:
        raise EventValidationError(
            f"messageId is {len(call.message_id)} characters; the limit is {MAX_MESSAGE_ID_CHARS}",
            "messageId",
        )
    return call.message_id


def _event_time(call: _Call, received_at: datetime, sent_at: datetime | None) -> datetime:
    """Return the event time as Segment computes it, correcting client clock skew via sentAt.

    A `timestamp` the client set is kept as it is (historical imports rely on that); a device's
    `originalTimestamp` is shifted by how far the device clock was off when it sent the call.
    """
    if call.timestamp is not None:
        return _as_utc(call.timestamp)
    original = _as_utc(call.original_timestamp)
    if original is not None:
        return received_at - (sent_at - original) if sent_at is not None else original
    return received_at


def _check_type(call: _Call, expected_type: str | None) -> str:
    """Return the call type, from the body or the endpoint, refusing unknown or conflicting ones."""
    call_type = call.type if call.type is not None else expected_type
    if call_type is None:
        raise EventValidationError("type is required (one of: " + _TYPES_TEXT + ")", "type")
    if call_type not in CALL_TYPES:
        raise EventValidationError(
            f"type '{call_type}' is unknown; expected one of: {_TYPES_TEXT}", "type"
        )
    if expected_type is not None and call_type != expected_type:
        raise EventValidationError(
            f"type '{call_type}' sent to the /v1/{expected_type} endpoint", "type"
        )
    return call_type


_TYPES_TEXT = ", ".join(sorted(CALL_TYPES))


def normalize_call(
    raw: bytes,
    received_at: datetime,
    source_id: str | None,
    expected_type: str | None = None,
    *,
    batch_sent_at: datetime | None = None,
    position: int = 0,
) -> EventRow:
    """Return the stored row of one Segment call given as JSON bytes, or raise EventValidationError.

    `expected_type` is the type implied by a single-call endpoint such as `/v1/track`;
    `batch_sent_at` is a batch's `sentAt`, which SDKs send once per batch rather than per call;
    `position` is the call's index in its batch.
    """
    try:
        return _normalize(raw, received_at, source_id, expected_type, batch_sent_at, position)
    except OverflowError as exc:
        raise EventValidationError(f"a time is out of range: {exc}", None) from exc
    except UnicodeDecodeError as exc:
        raise EventValidationError(f"the call is not valid UTF-8: {exc.reason}", None) from exc
    except RecursionError as exc:
        raise EventValidationError("the call is nested too deeply", None) from exc


def _normalize(
    raw: bytes,
    received_at: datetime,
    source_id: str | None,
    expected_type: str | None,
    batch_sent_at: datetime | None,
    position: int,
) -> EventRow:
    """Return the stored row of one call (see normalize_call)."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventValidationError(
            f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES} bytes (32 KB)", None
        )
    try:
        call = _decode_call(raw)
    except msgspec.ValidationError as exc:
        raise EventValidationError(str(exc), error_field(str(exc))) from exc
    except msgspec.DecodeError as exc:
        raise EventValidationError(f"malformed JSON: {exc}", None) from exc
    call_type = _check_type(call, expected_type)
    user_id = _identifier(call.user_id, "userId")
    anonymous_id = _identifier(call.anonymous_id, "anonymousId")
    previous_id = _identifier(call.previous_id, "previousId")
    group_id = _identifier(call.group_id, "groupId")
    if user_id is None and anonymous_id is None:
        raise EventValidationError("userId or anonymousId is required", "userId")
    if call_type == "track" and (call.event is None or not call.event.strip()):
        raise EventValidationError("a track call needs a non-empty event name", "event")
    if call_type == "alias":
        if previous_id is None:
            raise EventValidationError("an alias call needs previousId", "previousId")
        if user_id is None:
            raise EventValidationError("an alias call needs userId", "userId")
    if call_type == "group" and group_id is None:
        raise EventValidationError("a group call needs groupId", "groupId")
    objects = {name: _json_object(getattr(call, name), name) for name in _OBJECT_FIELDS}
    properties, property_channel = objects["properties"]
    context, context_channel = objects["context"]
    channel = property_channel or context_channel or call.channel
    sent_at = _as_utc(call.sent_at) or _as_utc(batch_sent_at)
    return (
        _message_id(call, raw, position),
        call_type,
        call.event if call_type == "track" else None,
        call.name if call_type in ("page", "screen") else None,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        _event_time(call, received_at, sent_at),
        _as_utc(call.original_timestamp),
        sent_at,
        received_at,
        channel,
        source_id,
        _text(properties),
        _text(objects["traits"][0]),
        _text(context),
        _text(objects["integrations"][0]),
    )


def _text(data: bytes | None) -> str | None:
    """Return JSON bytes as text for storage."""
    return None if data is None else data.decode("utf-8")


def error_field(message: str) -> str | None:
    """Return the field a msgspec error names (`... - at `$.userId``), in Segment's spelling."""
    marker = "at `$."
    if marker not in message:
        return None
    return message.split(marker, 1)[1].rstrip("`").split("[")[0].split(".")[0]
