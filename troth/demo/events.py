"""The demo's output rows: Segment-spec events as one Arrow record batch per chunk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences

__all__ = ["CHANNELS", "EVENT_SCHEMA", "Piece", "assemble_events"]

# The shape of a Segment call flattened to one row, with the JSON objects kept as text. This is
# the wire spelling (camelCase) `troth import` reads, not the store's snake_case columns.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("messageId", pa.string(), nullable=False),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("userId", pa.string()),
        ("anonymousId", pa.string()),
        ("previousId", pa.string()),
        ("groupId", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        ("channel", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
    ]
)
CHANNELS = (
    "web",
    "app",
    "email",
    "store",
    "call_centre",
    "support",
    "reviews",
    "surveys",
    "community",
    "referrals",
    "sms",
    "push",
)
WEB, APP = 1, 2  # devices: which of the customer's anonymousIds a client-side call carries


@dataclass(frozen=True)
class Piece:
    """Events of one kind from one generator, as parallel columns (one element per event).

    `code` is unique per generator and, with the customer and ordinal, makes the messageId.
    Calls are server-side (no anonymousId) unless `device` says which device sent them.
    """

    code: str
    type: str
    at: Occurrences
    event: str | None = None
    name: pa.Array | None = None
    channel: pa.Array | str = "web"
    device: np.ndarray | int = 0
    properties: pa.Array | None = None
    traits: pa.Array | None = None
    context: pa.Array | None = None
    user_id: pa.Array | None = None  # on behalf of another customer (referrals)
    previous_id: pa.Array | None = None
    group_id: pa.Array | None = None


def _column(pieces: Sequence[Piece], field: str) -> pa.Array:
    """Return one string column over all pieces, null where a piece lacks the field."""
    parts = []
    for piece in pieces:
        value = getattr(piece, field)
        size = len(piece.at)
        if value is None:
            parts.append(pa.nulls(size, pa.string()))
        elif isinstance(value, str):
            parts.append(pa.repeat(pa.scalar(value, pa.string()), size))
        else:
            if len(value) != size:
                raise ValueError(f"piece {piece.code}: {field} has {len(value)} rows, not {size}")
            parts.append(value.cast(pa.string()))
    return pa.concat_arrays(parts)


def assemble_events(cohort: Cohort, pieces: Sequence[Piece]) -> pa.RecordBatch:
    """Return the pieces' events as one batch in EVENT_SCHEMA, sorted by customer and time.

    Ids are filled in from the cohort: a call before the customer identified carries only the
    device's anonymousId; after, the userId (the legacy one before its migration).
    """
    codes = [piece.code for piece in pieces]
    if len(set(codes)) != len(codes):
        raise ValueError(f"piece codes must be unique, got {sorted(codes)}")
    sizes = np.array([len(piece.at) for piece in pieces], dtype=np.int64)
    which = np.repeat(np.arange(len(pieces)), sizes)
    customer = np.concatenate([piece.at.customer for piece in pieces]).astype(np.int64)
    time = np.concatenate([piece.at.time for piece in pieces]).astype(np.int64)
    n = np.concatenate([piece.at.n for piece in pieces]).astype(np.int64)
    device = np.concatenate(
        [np.broadcast_to(np.asarray(p.device, dtype=np.int64), len(p.at)) for p in pieces]
    )
    period = cohort.period
    inside = (time >= period.start) & (time < period.end)
    # Sorting by customer first makes a chunk's rows independent of the chunk size; the sort is
    # stable, so equal times keep the fixed piece order.
    order = np.lexsort((time, customer))
    order = order[inside[order]]
    customer, time, n, which, device = (a[order] for a in (customer, time, n, which, device))
    take = pa.array(order)

    population, names = cohort.population, cohort.names
    identified = time >= population.identified_at[customer]
    legacy = time < population.legacy_until[customer]
    own_user = pc.if_else(
        pa.array(legacy), names.legacy_id.take(customer), names.user_id.take(customer)
    )
    own_user = pc.if_else(pa.array(identified), own_user, pa.scalar(None, pa.string()))
    on_behalf = _column(pieces, "user_id").take(take)
    user_id = pc.coalesce(on_behalf, own_user)
    anonymous = pc.if_else(
        pa.array(device == APP),
        names.anonymous_app.take(customer),
        names.anonymous_web.take(customer),
    )
    anonymous = pc.if_else(pa.array(device > 0), anonymous, pa.scalar(None, pa.string()))
    if pc.any(pc.and_(pc.is_null(user_id), pc.is_null(anonymous))).as_py():
        # A generator scheduled a server-side call before the customer identified.
        raise RuntimeError("demo generator bug: an event has neither userId nor anonymousId")

    piece_of = pa.array(which)
    kinds = pa.array([piece.type for piece in pieces], pa.string())
    events = pa.array([piece.event for piece in pieces], pa.string())
    message_id = pc.binary_join_element_wise(
        f"demo-{cohort.seed}-",
        pc.cast(pa.array(population.index[customer]), pa.string()),
        "-",
        pa.array(codes, pa.string()).take(piece_of),
        "-",
        pc.cast(pa.array(n), pa.string()),
        "",
    )
    columns = [
        message_id,
        kinds.take(piece_of),
        events.take(piece_of),
        _column(pieces, "name").take(take),
        user_id,
        anonymous,
        _column(pieces, "previous_id").take(take),
        _column(pieces, "group_id").take(take),
        pa.array(time, pa.timestamp("us", tz="UTC")),
        _column(pieces, "channel").take(take),
        _column(pieces, "properties").take(take),
        _column(pieces, "traits").take(take),
        _column(pieces, "context").take(take),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA)
