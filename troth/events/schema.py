"""The stored shape of an event and of a rejected input, as Arrow schemas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa

__all__ = ["EVENT_COLUMNS", "EVENT_SCHEMA", "REJECT_SCHEMA", "reject_row", "rows_to_table"]

_TS = pa.timestamp("us", tz="UTC")

# Order matters: normalised rows are tuples in this order (everything but `seq`).
EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("previous_id", pa.string()),
        ("group_id", pa.string()),
        ("timestamp", _TS),
        ("original_timestamp", _TS),
        ("sent_at", _TS),
        ("received_at", _TS),
        ("channel", pa.string()),
        ("source_id", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
        ("integrations", pa.string()),
    ]
)
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

REJECT_SCHEMA = pa.schema(
    [
        ("rejected_at", _TS),
        ("origin", pa.string()),
        ("message_id", pa.string()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("payload", pa.string()),
    ]
)


def reject_row(
    origin: str, message_id: str | None, field: str | None, reason: str, payload: str | None
) -> tuple:
    """Return a rejects-table row (REJECT_SCHEMA order) for an input refused now."""
    return (datetime.now(UTC), origin, message_id, field, reason, payload)


def rows_to_table(rows: Sequence[tuple], schema: pa.Schema) -> pa.Table:
    """Return row tuples (in `schema` order) as an Arrow table of `schema`."""
    if not rows:
        return schema.empty_table()
    columns = zip(zip(*rows, strict=True), schema, strict=True)
    return pa.Table.from_arrays([pa.array(v, f.type) for v, f in columns], schema=schema)
