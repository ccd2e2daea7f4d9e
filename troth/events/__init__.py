"""The Segment-spec event model: parsing, validation and the stored row shape (no I/O)."""

from troth.events.model import (
    CALL_TYPES,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_ID_CHARS,
    normalize_call,
)
from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, REJECT_SCHEMA, rows_to_table

__all__ = [
    "CALL_TYPES",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_ID_CHARS",
    "REJECT_SCHEMA",
    "normalize_call",
    "rows_to_table",
]
