"""Bodies of the Segment HTTP Tracking API (`/v1/track`, `/v1/batch`, …) into event rows."""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from troth.errors import EventValidationError
from troth.events.model import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    EventRow,
    error_field,
    normalize_call,
)
from troth.events.schema import reject_row

__all__ = [
    "NormalizedBody",
    "ParsedBody",
    "decode_body",
    "decompress",
    "normalize_body",
    "read_write_key",
]


class _Batch(msgspec.Struct, rename="camel", kw_only=True):
    """A batch body: the calls and, optionally, the write key."""

    batch: list[msgspec.Raw]
    write_key: str | None = None
    sent_at: datetime | None = None


class _WriteKeyOnly(msgspec.Struct, rename="camel", kw_only=True):
    """Only the write key of a single-call body."""

    write_key: str | None = None


@dataclass
class ParsedBody:
    """A request body split into its calls' raw JSON and its write key."""

    calls: list[bytes]
    write_key: str | None
    sent_at: datetime | None = None


@dataclass
class NormalizedBody:
    """The valid rows of a request, the rejects table rows, and a per-call error list."""

    rows: list[EventRow] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Return the request body with gzip/deflate undone, refusing more than `limit` bytes."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise EventValidationError(f"Content-Encoding '{encoding}' is not supported", None)
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise EventValidationError(f"body is not valid {encoding} data: {exc}", None) from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise EventValidationError(f"body is larger than {limit} bytes once decompressed", None)
    return data


def decode_body(body: bytes, batch: bool) -> ParsedBody:
    """Return the calls and write key of a body; raise EventValidationError when unreadable."""
    limit = MAX_BATCH_BYTES if batch else MAX_EVENT_BYTES
    if len(body) > limit:
        what = "batch" if batch else "event"
        raise EventValidationError(
            f"{what} is {len(body)} bytes; the limit is {limit} bytes ({limit // 1024} KB)", None
        )
    if not body.strip():
        raise EventValidationError("empty body: send a JSON object", None)
    try:
        if batch:
            parsed = msgspec.json.decode(body, type=_Batch)
            if not parsed.batch:
                raise EventValidationError("batch is empty: send at least one call", "batch")
            return ParsedBody(
                [bytes(raw) for raw in parsed.batch], parsed.write_key, parsed.sent_at
            )
        key = msgspec.json.decode(body, type=_WriteKeyOnly).write_key
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "Expected `object`" in text and "$." not in text:
            text = "body must be a JSON object"
        raise EventValidationError(text, error_field(text)) from exc
    except msgspec.DecodeError as exc:
        raise EventValidationError(f"malformed JSON: {exc}", None) from exc
    except RecursionError as exc:
        raise EventValidationError("body is nested too deeply", None) from exc
    return ParsedBody([body], key)


def normalize_body(
    parsed: ParsedBody,
    received_at: datetime,
    source_id: str,
    expected_type: str | None,
    origin: str,
) -> NormalizedBody:
    """Return the valid rows, rejects and errors of a decoded body."""
    out = NormalizedBody()
    for index, raw in enumerate(parsed.calls):
        try:
            out.rows.append(
                normalize_call(
                    raw,
                    received_at,
                    source_id,
                    expected_type,
                    batch_sent_at=parsed.sent_at,
                    position=index,
                )
            )
        except EventValidationError as exc:
            message_id = _message_id_of(raw)
            out.errors.append(
                {"index": index, "messageId": message_id, "field": exc.field, "error": exc.message}
            )
            out.rejects.append(
                reject_row(origin, message_id, exc.field, exc.message, _payload_text(raw))
            )
    return out


def read_write_key(authorization: str | None) -> str | None:
    """Return the write key from an HTTP Basic `Authorization` header (the user name), if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


class _MessageIdOnly(msgspec.Struct, rename="camel"):
    message_id: str | int | None = None


def _message_id_of(raw: bytes) -> str | None:
    """Return the messageId of a rejected call when one can be read, for the error list."""
    try:
        value = msgspec.json.decode(raw, type=_MessageIdOnly).message_id
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return None if value is None else str(value)[:200]


def _payload_text(raw: bytes) -> str:
    """Return a rejected call's bytes as text for the rejects table."""
    return raw.decode("utf-8", errors="replace")
